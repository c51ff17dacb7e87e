"""Predict with an export folder: its own pre/post-processing, ONNX or the HF folder, COCO results."""

from __future__ import annotations

import glob
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .manifest import ONNX_NAME, ExportError, read_manifest

if TYPE_CHECKING:
    from .runtime import OnnxBackend, TorchBackend


def expand_images(items: Sequence[str | Path]) -> list[Path]:
    """Files, folders (searched recursively) and glob patterns -> image files, in a stable order."""
    from engine.orchestration.evaluate import IMAGE_SUFFIXES

    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(str(item)):
            matches = sorted(Path(p) for p in glob.glob(str(item), recursive=True))
            found.extend(p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise ExportError(f"{item}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ExportError(f"no images found in {', '.join(map(str, items))}")
    return unique


def load_backend(export_dir: Path, manifest: dict[str, Any], backend: str) -> OnnxBackend | TorchBackend:
    from .runtime import OnnxBackend, TorchBackend

    if backend == "onnx":
        if not (export_dir / ONNX_NAME).is_file():
            raise ExportError(
                f"{export_dir}: no {ONNX_NAME} (exported with --format {','.join(manifest['formats'])}); "
                "use --backend torch"
            )
        return OnnxBackend(export_dir / ONNX_NAME)
    if backend == "torch":
        import transformers

        if "hf" not in manifest:
            raise ExportError(f"{export_dir}: no Hugging Face folder; use --backend onnx")
        auto = getattr(transformers, manifest["hf"]["auto_class"])
        return TorchBackend(auto.from_pretrained(str(export_dir)).eval(), manifest["task"])
    raise ExportError(f"unknown backend '{backend}'; choose onnx or torch")


def _readable(paths: list[Path]) -> tuple[list[tuple[int, Path]], list[tuple[str, str]]]:
    from engine.data.images import verify_image

    good, skipped = [], []
    for image_id, path in enumerate(paths, start=1):
        try:
            problem = verify_image(path)
        except Exception as exc:  # any decoder error: name it and go on
            problem = str(exc) or type(exc).__name__
        if problem:
            skipped.append((str(path), problem))
        else:
            good.append((image_id, path))
    return good, skipped


def predict_images(
    export_dir: str | Path,
    images: Sequence[str | Path],
    out: str | Path,
    *,
    backend: str = "onnx",
    batch_size: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """Write COCO results (a JSON list, as pycocotools' ``loadRes`` reads) for ``images`` to ``out``.

    Image ids are 1.. in the order of the expanded image list (folders sorted), as for
    ``lightbox predict RUN_ID``; each result also names its ``file_name``. Unreadable images
    are skipped and listed in the returned summary. A program that asked for progress events
    (``engine.tracking.progress_events``) gets one per batch on stderr instead of a bar.
    """
    import sys

    from tqdm import tqdm

    from engine.tracking.progress_events import encode_event, events_wanted

    from .runtime import batches, collate_for, dataset_for, fit_to_input, image_index, postprocess

    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    task = manifest["task"]
    paths = expand_images(images)
    run = load_backend(export_dir, manifest, backend)
    good, skipped = _readable(paths)
    results: list[dict[str, Any]] = []
    if good:
        root, index = image_index([p for _, p in good])
        index_ids = dict(zip(index.image_ids.tolist(), (i for i, _ in good)))
        dataset = dataset_for(task, root, index, manifest["preprocessing"])
        collate = collate_for(task, manifest["preprocessing"])
        names = {i: str(p) for i, p in good}
        events = events_wanted()
        bar = tqdm(total=len(good), unit="img", disable=not progress or events, desc="predict")
        done = 0
        for batch in batches(dataset, collate, batch_size, range(len(good))):
            batch["image_ids"] = batch["image_ids"].apply_(lambda k: index_ids[k])
            if task == "detection":
                for target in batch["labels"]:
                    target["image_id"] = target["image_id"].clone().fill_(index_ids[int(target["image_id"])])
            batch = fit_to_input(batch, task, manifest, names)
            results.extend(postprocess(task, run(batch["pixel_values"]), batch, manifest, names))
            done += int(batch["pixel_values"].shape[0])
            bar.update(int(batch["pixel_values"].shape[0]))
            if events:
                print(encode_event("step", step=done, steps=len(good)), file=sys.stderr, flush=True)
        bar.close()
    for k, record in enumerate(results, start=1):
        record["id"] = k  # pycocotools indexes results by id (it sets its own for boxes and masks)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text(json.dumps(results))
    tmp.replace(out)
    return {"images": len(good), "results": len(results), "skipped": skipped, "task": task, "out": str(out)}
