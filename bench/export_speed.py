"""Export: speed of ONNX against PyTorch, and parity in task metrics for one preset per model family.

Part 1, speed: builds each preset offline (random weights: speed does not depend on them),
exports it with Lightbox's exporter (dynamic batch and image size where the model allows,
checked at a second size; the export time includes that check), checks the outputs agree,
then times both backends (onnxruntime CPU, PyTorch eager) on the same batches after a
warm-up. One JSON line per preset.

Part 2, parity: trains one tiny preset per model family (resnet, vit, detr, conditional-detr,
rt-detr-v2, segformer) for a few epochs on the generated sample dataset, exports each run
(``export_run``: HF folder + ONNX + the parity check on the validation images) and prints a
table: export seconds, exporter, raw max abs diff, the task metric of the checkpoint and of
the ONNX model, and their difference. CPU only.

    .venv/bin/python bench/export_speed.py [--quick] [--epochs 3] [--only speed|parity]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from engine.export.onnx_export import export_onnx  # noqa: E402
from engine.export.runtime import OnnxBackend, TorchBackend  # noqa: E402
from engine.models.loading import load_model  # noqa: E402

PRESETS = [("classification", "resnet-18", 224, 10), ("detection", "detr-tiny", 320, 4)]


def images_per_second(run, batches) -> float:
    run(batches[0])  # warm-up
    started = time.perf_counter()
    for batch in batches:
        run(batch)
    return sum(b.shape[0] for b in batches) / (time.perf_counter() - started)


def bench(task: str, preset: str, size: int, labels: int, batch_size: int, rounds: int) -> dict:
    torch.manual_seed(0)
    model = load_model(preset, task, num_labels=labels).eval()
    batches = [torch.randn(batch_size, 3, size, size) for _ in range(rounds)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        started = time.perf_counter()
        info = export_onnx(model, task, batches[0], path)
        export_s = time.perf_counter() - started
        eager, onnx = TorchBackend(model, task), OnnxBackend(path, threads=torch.get_num_threads())
        diff = max(float((a - b).abs().max()) for a, b in zip(eager(batches[0]), onnx(batches[0])))
        torch_ips = images_per_second(eager, batches)
        onnx_ips = images_per_second(onnx, batches)
    return {
        "task": task,
        "preset": preset,
        "image_size": size,
        "batch_size": batch_size,
        "batches": rounds,
        "threads": torch.get_num_threads(),
        "exporter": info["exporter"],
        "dynamic_size": info["dynamic_size"],
        "export_s": round(export_s, 1),
        "max_abs_diff": diff,
        "torch_eager_img_s": round(torch_ips, 1),
        "onnxruntime_img_s": round(onnx_ips, 1),
        "speedup": round(onnx_ips / torch_ips, 2),
    }


#: One tiny preset per model family: (family, task, preset, image size).
FAMILIES = [
    ("resnet", "classification", "resnet-tiny", 64),
    ("vit", "classification", "vit-tiny", 32),
    ("detr", "detection", "detr-tiny", 128),
    ("conditional-detr", "detection", "conditional-detr-tiny", 128),
    ("rt-detr-v2", "detection", "rt-detr-v2-tiny", 128),
    ("segformer", "segmentation", "segformer-tiny", 64),
]


def parity_row(family: str, task: str, preset: str, size: int, data: Path, workspace: Path, epochs: int) -> dict:
    """Train ``preset`` briefly, export it, and return the figures of its export and parity check."""
    from engine.config import RunConfig
    from engine.export.build import export_run
    from engine.orchestration.local import train

    config = RunConfig.from_dict({"task": {"name": task}}).with_overrides(
        {
            "data.path": str(data),
            "model.checkpoint": preset,
            "optim.epochs": epochs,
            "optim.batch_size": 8,
            "optim.lr": 1e-3,
            "data.image_size": size,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )
    started = time.perf_counter()
    result = train(config, progress=False)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    manifest = export_run(result.run_id, workspace / f"export-{preset}", workspace=str(workspace), say=lambda _: None)
    export_s = time.perf_counter() - started
    parity, onnx = manifest["parity"], manifest["onnx"]
    metric = parity["metric"]
    return {
        "family": family,
        "task": task,
        "preset": preset,
        "image_size": size,
        "epochs": epochs,
        "train_s": round(train_s, 1),
        "export_s": round(export_s, 1),
        "exporter": onnx["exporter"],
        "dynamic_size": onnx["dynamic_size"],
        "images": parity["images"],
        "max_abs_diff": parity["max_abs_diff"],
        "metric": metric["name"],
        "checkpoint": metric["checkpoint"],
        "onnx": metric["onnx"],
        "difference": metric["difference"],
        "max_class_difference": max((abs(v["difference"]) for v in metric["per_class"].values()), default=0.0),
        "agreement": parity["agreement"],
        "passed": parity["passed"],
    }


def parity_table(rows: list[dict]) -> str:
    head = (
        "| family | preset | export s | exporter | dynamic size | raw max abs diff | metric | checkpoint | ONNX "
        "| ONNX - checkpoint | worst class diff | decisions matched |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['preset']} | {r['export_s']:.1f} | {r['exporter']} | "
            f"{'yes' if r['dynamic_size'] else 'no'} | {r['max_abs_diff']:.2e} | {r['metric']} | "
            f"{r['checkpoint']:.4f} | {r['onnx']:.4f} | {r['difference']:+.4f} | "
            f"{r['max_class_difference']:.4f} | {r['agreement']:.4f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="timed batches per backend")
    parser.add_argument("--quick", action="store_true", help="speed: 2 batches of 2; parity: 1 epoch (a smoke run)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of each parity run")
    parser.add_argument("--only", choices=["speed", "parity"], help="run one part only (default both)")
    args = parser.parse_args()
    batch_size, rounds = (2, 2) if args.quick else (args.batch_size, args.rounds)
    if args.only != "parity":
        for task, preset, size, labels in PRESETS:
            print(json.dumps(bench(task, preset, size, labels, batch_size, rounds)), flush=True)
    if args.only != "speed":
        from engine.data.sample import write_sample_dataset

        epochs = 1 if args.quick else args.epochs
        with tempfile.TemporaryDirectory() as tmp:
            data = write_sample_dataset(Path(tmp) / "shapes")
            rows = []
            for family, task, preset, size in FAMILIES:
                rows.append(parity_row(family, task, preset, size, data, Path(tmp) / "ws", epochs))
                print(json.dumps(rows[-1]), flush=True)
        print(parity_table(rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
