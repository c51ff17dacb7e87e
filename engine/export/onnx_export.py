"""``model.onnx`` with a dynamic batch axis: the dynamo exporter, else the TorchScript one."""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import torch

from .manifest import ExportError
from .runtime import OUTPUT_NAMES, RawOutputs

OPSET = 18


def _dynamo(net: RawOutputs, example: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.onnx.export(net, (example,), dynamo=True, input_names=["pixel_values"],
                                output_names=OUTPUT_NAMES[net.task], opset_version=OPSET,
                                dynamic_shapes={"pixel_values": {0: batch}}, verbose=False)
    program.save(str(path))


def _torchscript(net: RawOutputs, example: torch.Tensor, path: Path) -> None:
    names = OUTPUT_NAMES[net.task]
    axes = {"pixel_values": {0: "batch"}, **{n: {0: "batch"} for n in names}}
    torch.onnx.export(net, (example,), str(path), dynamo=False, input_names=["pixel_values"],
                      output_names=names, dynamic_axes=axes, opset_version=OPSET)


def _has_dynamic_batch(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return bool(dim.dim_param) and not dim.HasField("dim_value")


def export_onnx(model, task: str, example: torch.Tensor, path: Path, *, exporter: str = "auto") -> dict[str, Any]:
    """Write ``path``; return the exporter used, why the first one failed (if it did), and the opset."""
    net = RawOutputs(model, task).eval()
    example = example[:2] if example.shape[0] > 1 else torch.cat([example, example])
    failure = None
    order = {"auto": ["dynamo", "torchscript"], "dynamo": ["dynamo"], "torchscript": ["torchscript"]}[exporter]
    for name in order:
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        try:
            with warnings.catch_warnings(), redirect_stdout(io.StringIO()), torch.no_grad():
                warnings.simplefilter("ignore")
                (_dynamo if name == "dynamo" else _torchscript)(net, example, path)
            if not _has_dynamic_batch(path):
                raise ExportError("the batch axis came out fixed")
        except Exception as exc:  # each exporter fails in its own way; the next one is tried
            failure = f"{name}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            continue
        return {"exporter": name, "fallback_reason": failure if name != order[0] else None, "opset": OPSET,
                "dynamic_axes": {"pixel_values": [0]}, "input_shape": [None, *example.shape[1:]]}
    raise ExportError(f"ONNX export failed with every exporter ({failure})")
