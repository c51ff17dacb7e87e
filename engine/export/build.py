"""Export a run: build everything in a hidden sibling folder, then rename it into place.

A failed export removes its temporary folder, so nothing half-written looks like a
finished export, and an earlier export at the destination is replaced only by a
complete new one (with --force), never partly overwritten. A process killed part-way
(a cancelled export) leaves both behind: ``discard_unfinished`` tidies after it.

``progress(text, step, steps)`` is told each step as it starts: loading the checkpoint, the
Hugging Face folder, the ONNX export (tracing), the parity check, writing the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .manifest import FORMAT_VERSION, ONNX_NAME, ExportError, ParityError, write_manifest
from .tolerance import Tolerance

if TYPE_CHECKING:
    import torch

    from engine.config import RunConfig

FORMATS = ("hf", "onnx")
FORMAT_TITLES = {"hf": "Hugging Face folder (safetensors)", "onnx": "ONNX (parity checked)"}
PARITY_IMAGES = 64  # validation images the ONNX model is compared on
Progress = Callable[[str, int, int], None]


def parse_formats(text: str | Sequence[str]) -> list[str]:
    items = [f.strip() for f in (text.split(",") if isinstance(text, str) else text) if f.strip()]
    bad = [f for f in items if f not in FORMATS]
    if bad or not items:
        raise ExportError(f"unknown export format {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}")
    return items


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import engine

    out = {"lightbox": engine.__version__, "python": sys.version.split()[0]}
    for dist in ("torch", "transformers", "onnx", "onnxruntime", "onnxscript"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


def _preprocessing(config: RunConfig, task: str, val_dataset: Any, module: Any) -> dict[str, Any]:
    return {
        "transforms": list(val_dataset.transforms),
        "image_size": config.data.image_size,
        "mean": list(module.mean),
        "std": list(module.std),
        "channels": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        "scale": "x / 255, then (x - mean) / std",
        "pad_value": 0,
    }


def _postprocessing(task: str, model: torch.nn.Module, example: torch.Tensor, num_labels: int) -> dict[str, Any]:
    if task == "classification":
        return {"type": "softmax top-1"}
    if task == "detection":
        # The model's head says which, by the rule detections_from_outputs applies: one logit per class
        # (sigmoid: Conditional DETR, RT-DETR) or one more for "no object" (softmax: DETR).
        import torch

        with torch.no_grad():
            width = int(model(pixel_values=example[:1]).logits.shape[-1])
        sigmoid = width == num_labels
        if sigmoid:
            kind = (
                "sigmoid: every (query, class) pair scored on its own, the top-k pairs kept (a box may carry "
                "two classes), boxes cx,cy,w,h relative to the canvas mapped back to original pixels"
            )
        else:
            kind = (
                "softmax without the last (no-object) class, each query's best class, top-k queries, boxes "
                "cx,cy,w,h relative to the canvas mapped back to original pixels"
            )
        return {"type": kind, "activation": "sigmoid" if sigmoid else "softmax", "top_k": 100, "min_score": 0.05}
    return {
        "type": "logits at canvas size, crop to the image, resize to its original size, argmax; class 0 is background"
    }


def _partial(out: Path, pid: int) -> Path:
    """Where process ``pid`` builds the export of ``out`` before moving it into place."""
    return out.with_name(f".{out.name}.partial-{pid}")


def _replaced_prefix(out: Path, pid: int) -> str:
    return f".{out.name}.replaced-{pid}-"


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f"{_replaced_prefix(out, os.getpid())}{int(time.time())}")
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def discard_unfinished(out: str | Path, pid: int) -> None:
    """After process ``pid`` was killed exporting to ``out``: remove its unfinished folder and,
    where it was killed between the two renames of the swap, put the earlier export back.
    A swap that had completed is left alone (``out`` then holds the complete new export)."""
    out = Path(out)
    shutil.rmtree(_partial(out, pid), ignore_errors=True)
    for old in sorted(out.parent.glob(_replaced_prefix(out, pid) + "*")):
        if not out.exists():
            old.rename(out)
        else:
            shutil.rmtree(old, ignore_errors=True)


def _steps(formats: Sequence[str]) -> list[str]:
    """The steps ``export_run`` reports, in order (the parity step's image count comes later)."""
    steps = ["loading the checkpoint and the validation images"]
    if "hf" in formats:
        steps.append("writing the Hugging Face folder")
    if "onnx" in formats:
        steps += ["tracing the model and exporting ONNX", "checking parity"]
    return steps + ["writing the export folder"]


def export_run(
    run_id: str,
    out: str | Path,
    *,
    formats: str | Sequence[str] = ("hf", "onnx"),
    force: bool = False,
    tolerance: Tolerance | None = None,
    parity_images: int = PARITY_IMAGES,
    exporter: str = "auto",
    dynamic_size: bool = True,
    tracking_uri: str | None = None,
    workspace: str | None = None,
    say: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Export ``run_id`` to ``out``; return the manifest. Raises ExportError with a clear message
    (ParityError, with the figures, when the ONNX model differs beyond ``tolerance``)."""
    from engine.orchestration.builders import build_datamodule
    from engine.orchestration.errors import TrainingError
    from engine.orchestration.evaluate import load_module

    from .hf import write_hf_folder
    from .labels import checkpoint_labels
    from .onnx_export import describe_onnx, export_onnx
    from .parity import compare, describe
    from .runtime import TASKS, batches, collate_for
    from .source import resolve_run

    formats = parse_formats(formats)
    steps = _steps(formats)

    def step(name: str, detail: str = "") -> None:
        if progress is not None:
            progress(name + detail, steps.index(name), len(steps))

    out = Path(out)
    if out.exists() and not force:
        raise ExportError(
            f"{out} already exists; pass --force to replace it (it is replaced only once the new export is complete)"
        )
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    step(steps[0])
    source = resolve_run(run_id, tracking_uri=tracking_uri, workspace=workspace)
    if source.note:
        say(source.note)
    task = source.config.task.name
    if task not in TASKS:
        raise ExportError(f"run {run_id}: exporting a '{task}' run is not supported (only {', '.join(TASKS)})")
    try:
        datamodule = build_datamodule(source.config)
        datamodule.setup("fit")
    except (TrainingError, ValueError, OSError) as exc:
        raise ExportError(
            f"run {run_id}: its dataset {source.config.data.path} is needed for the parity "
            f"check and could not be opened: {exc}"
        ) from None
    module = load_module(source.config, source.checkpoint).eval()
    model = module.model.float().eval()
    preprocessing = _preprocessing(source.config, task, datamodule.val_dataset, module)
    labels = checkpoint_labels(task, module, datamodule.val_dataset.index)
    if labels.note:
        say(labels.note)
    id2label, label_map = labels.id2label, labels.label_to_category_id
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "lightbox_version": _versions()["lightbox"],
        "task": task,
        "id2label": {str(k): v for k, v in id2label.items()},
        "label_to_category_id": {str(k): v for k, v in label_map.items()},
        "categories": [{"id": c, "name": id2label[k]} for k, c in label_map.items()],
        "preprocessing": preprocessing,
        "postprocessing": None,
        "source": {
            "run_id": run_id,
            "run_status": source.status,
            "run_dir": str(source.run_dir),
            "checkpoint": str(source.checkpoint),
            "tracking_uri": source.tracking_uri,
            "dataset": str(source.config.data.path),
            "note": source.note,
            "labels_note": labels.note,
        },
        "versions": _versions(),
        "formats": formats,
        "files": {},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(out, os.getpid())
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        collate = collate_for(task, preprocessing)
        example = next(batches(datamodule.val_dataset, collate, 2, range(min(2, len(datamodule.val_dataset)))))
        manifest["postprocessing"] = _postprocessing(task, model, example["pixel_values"].float(), len(label_map))
        model.config.id2label = dict(id2label)  # the checkpoint's names, whatever the dataset says now
        if "hf" in formats:
            step("writing the Hugging Face folder")
            manifest["hf"] = write_hf_folder(model, tmp, task, label_map, preprocessing)
            manifest["files"]["hf"] = ["config.json", "model.safetensors", "preprocessor_config.json"]
        if "onnx" in formats:
            step("tracing the model and exporting ONNX")
            started = time.perf_counter()
            manifest["onnx"] = export_onnx(
                model,
                task,
                example["pixel_values"].float().contiguous(),
                tmp / ONNX_NAME,
                exporter=exporter,
                dynamic_size=dynamic_size,
            )
            manifest["onnx"]["export_seconds"] = round(time.perf_counter() - started, 2)
            manifest["files"]["onnx"] = sorted(p.name for p in tmp.glob(ONNX_NAME + "*"))
            say(describe_onnx(manifest["onnx"]))
            tolerance = tolerance or Tolerance()
            step("checking parity", f" on {min(parity_images, len(datamodule.val_dataset))} validation images")
            parity = compare(
                task,
                model,
                tmp / ONNX_NAME,
                datamodule.val_dataset,
                collate,
                manifest,
                tolerance,
                images=parity_images,
                truth_map=labels.truth_map,
                category_map=labels.category_map,
            )
            manifest["parity"] = parity
            say(describe(parity))
            if not parity["passed"]:
                worst = ", ".join(w["file_name"] + " " + w["what"] for w in parity["worst_images"]) or "none"
                raise ParityError(
                    f"run {run_id}: the ONNX model differs from the checkpoint beyond tolerance: "
                    f"{'; '.join(parity['failures'])} (most different images: {worst})"
                    f"; nothing was exported to {out}",
                    parity,
                )
        step(steps[-1])
        write_manifest(tmp, manifest)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
