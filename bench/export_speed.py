"""ONNX (onnxruntime, CPU) against PyTorch eager on the same exported model and batches.

Builds each preset offline (random weights: speed does not depend on them), exports it
with Lightbox's exporter (dynamic batch and image size, checked at a second size; the
export time includes that check), checks the outputs agree, then times both backends on the same
batches after a warm-up. Prints one JSON line per preset, with the export time.

    .venv/bin/python bench/export_speed.py [--quick]
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
    return {"task": task, "preset": preset, "image_size": size, "batch_size": batch_size, "batches": rounds,
            "threads": torch.get_num_threads(), "exporter": info["exporter"], "dynamic_size": info["dynamic_size"],
            "export_s": round(export_s, 1),
            "max_abs_diff": diff, "torch_eager_img_s": round(torch_ips, 1), "onnxruntime_img_s": round(onnx_ips, 1),
            "speedup": round(onnx_ips / torch_ips, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="timed batches per backend")
    parser.add_argument("--quick", action="store_true", help="2 batches of 2 (a smoke run)")
    args = parser.parse_args()
    batch_size, rounds = (2, 2) if args.quick else (args.batch_size, args.rounds)
    for task, preset, size, labels in PRESETS:
        print(json.dumps(bench(task, preset, size, labels, batch_size, rounds)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
