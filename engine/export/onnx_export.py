"""``model.onnx``: dynamic batch axis, and dynamic height/width where the model allows it.

The dynamo exporter is tried first, the TorchScript one where it fails. Whether a size
axis is really dynamic is not taken from the graph's declaration alone: the exported
model is run with onnxruntime at a second image size and compared with PyTorch there.
A model that cannot take another size (ViT's fixed position embeddings) or whose graph
baked the size in is exported again with a fixed height/width, and the manifest says why.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import torch

from .manifest import ExportError
from .runtime import OUTPUT_NAMES, RawOutputs

OPSET = 18
#: Largest difference between PyTorch and onnxruntime at the second size that still counts as dynamic.
SIZE_CHECK_ATOL = 1e-3


@contextmanager
def _no_traced_asserts() -> Iterator[None]:
    """transformers turns its shape checks into ``torch._check_tensor_all`` while tracing, which
    the ONNX translator cannot lower (``aten._is_all_true``: RT-DETR's ConversionError); its own
    switch leaves them out of the graph for the export only."""
    previous = os.environ.get("TRANSFORMERS_DISABLE_TORCH_CHECK")
    os.environ["TRANSFORMERS_DISABLE_TORCH_CHECK"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TRANSFORMERS_DISABLE_TORCH_CHECK", None)
        else:
            os.environ["TRANSFORMERS_DISABLE_TORCH_CHECK"] = previous


def _symbolic_axes(program: torch.export.ExportedProgram) -> list[int]:
    """Which axes of the program's image input stayed symbolic."""
    from torch.fx.experimental.symbolic_shapes import is_concrete_int

    user = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == user)
    return [k for k, size in enumerate(node.meta["val"].shape) if not is_concrete_int(size)]


def _capture(net: RawOutputs, example: torch.Tensor, axes: list[int]) -> torch.export.ExportedProgram:
    """The model as an ExportedProgram whose ``axes`` of the image input stay dynamic.

    Non-strict tracing first (it copes with most Python); where it turns an axis into a
    constant (RT-DETR's ``len(tensor)`` makes the batch size 2), TorchDynamo's strict tracing,
    which keeps it symbolic. ``Dim.AUTO`` lets either add the guards a model needs (sizes a
    multiple of 32); whether the graph really takes another size is checked afterwards.
    """
    shapes = {"pixel_values": {k: torch.export.Dim.AUTO for k in axes}}
    problems = []
    for strict in (False, True):
        mode = "strict" if strict else "non-strict"
        try:
            program = torch.export.export(net, (example,), dynamic_shapes=shapes, strict=strict)
        except Exception as exc:
            problems.append(f"{mode} tracing: {_first_line(exc)}")
            continue
        fixed = [k for k in axes if k not in _symbolic_axes(program)]
        if not fixed:
            return program
        names = {0: "batch", 2: "height", 3: "width"}
        problems.append(f"{mode} tracing fixed the {', '.join(names[k] for k in fixed)} axis")
    raise ExportError("; ".join(problems))


def _dynamo(net: RawOutputs, example: torch.Tensor, path: Path, dynamic_size: bool) -> None:
    with _no_traced_asserts():
        program = _capture(net, example, [0, 2, 3] if dynamic_size else [0])
        onnx_program = torch.onnx.export(
            program,
            (example,),
            dynamo=True,
            input_names=["pixel_values"],
            output_names=OUTPUT_NAMES[net.task],
            opset_version=OPSET,
            verbose=False,
        )
    assert onnx_program is not None  # dynamo=True always returns the program
    onnx_program.save(str(path))


def _torchscript(net: RawOutputs, example: torch.Tensor, path: Path, dynamic_size: bool) -> None:
    names = OUTPUT_NAMES[net.task]
    size = {2: "height", 3: "width"} if dynamic_size else {}
    axes = {
        "pixel_values": {0: "batch", **size},
        **{n: {0: "batch", **(size if net.task == "segmentation" else {})} for n in names},
    }
    torch.onnx.export(
        net,
        (example,),
        str(path),
        dynamo=False,
        input_names=["pixel_values"],
        output_names=names,
        dynamic_axes=axes,
        opset_version=OPSET,
    )


def input_axes(path: Path) -> list[int | str]:
    """The declared shape of model.onnx's input: an int per fixed axis, the axis name per dynamic one."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def second_size(example: torch.Tensor) -> tuple[int, int]:
    """Another image size to prove the size axes dynamic: taller and wider, kept a multiple of 32."""
    h, w = (int(v) for v in example.shape[-2:])
    return h + 32, w + 64


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _size_problem(net: RawOutputs, path: Path, probe: torch.Tensor) -> tuple[str | None, float | None]:
    """Why model.onnx is not usable at the probe's size (None when it matches PyTorch there)."""
    from .runtime import OnnxBackend

    axes = input_axes(path)
    if isinstance(axes[2], int) or isinstance(axes[3], int):
        return f"the exporter fixed height/width at {axes[2]}x{axes[3]}", None
    with torch.no_grad():
        reference = net(probe)
    try:
        got = OnnxBackend(path)(probe)
    except Exception as exc:  # onnxruntime rejects the shape inside the graph
        return f"onnxruntime at {probe.shape[2]}x{probe.shape[3]}: {_first_line(exc)}", None
    diff = max(float((a.float() - b).abs().max()) for a, b in zip(reference, got))
    if diff > SIZE_CHECK_ATOL:
        return (
            f"at {probe.shape[2]}x{probe.shape[3]} onnxruntime differs from PyTorch by {diff:.2e} "
            "(the graph baked in the export size)"
        ), diff
    return None, diff


def export_onnx(
    model: torch.nn.Module,
    task: str,
    example: torch.Tensor,
    path: Path,
    *,
    exporter: str = "auto",
    dynamic_size: bool = True,
) -> dict[str, Any]:
    """Write ``path``; return the exporter used, the dynamic axes (and why the size is fixed), the opset."""
    net = RawOutputs(model, task).eval()
    example = example[:2] if example.shape[0] > 1 else torch.cat([example, example])
    order = {"auto": ["dynamo", "torchscript"], "dynamo": ["dynamo"], "torchscript": ["torchscript"]}[exporter]
    probe = torch.randn(1, example.shape[1], *second_size(example), generator=torch.Generator().manual_seed(0))
    fixed_reason = None if dynamic_size else "dynamic image size was not asked for"
    if dynamic_size:
        try:  # the model itself may refuse another size (ViT without position-embedding interpolation)
            with torch.no_grad():
                net(probe)
        except Exception as exc:
            fixed_reason = f"the PyTorch model refuses {probe.shape[2]}x{probe.shape[3]} input: {_first_line(exc)}"
    attempts = [(name, True) for name in order] if fixed_reason is None else []
    attempts += [(name, False) for name in order]
    failures: list[str] = []
    for name, dynamic in attempts:
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        try:
            with warnings.catch_warnings(), redirect_stdout(io.StringIO()), torch.no_grad():
                warnings.simplefilter("ignore")
                (_dynamo if name == "dynamo" else _torchscript)(net, example, path, dynamic)
            if isinstance(input_axes(path)[0], int):
                raise ExportError("the batch axis came out fixed")
            size_check = None
            if dynamic:
                problem, diff = _size_problem(net, path, probe)
                if problem:
                    failures.append(f"{name} with dynamic height/width: {problem}")
                    continue
                size_check = {"height": int(probe.shape[2]), "width": int(probe.shape[3]), "max_abs_diff": diff}
        except Exception as exc:  # each exporter fails in its own way; the next attempt is tried
            failures.append(f"{name}{' with dynamic height/width' if dynamic else ''}: {_first_line(exc)}")
            continue
        if not dynamic and fixed_reason is None:
            fixed_reason = "; ".join(failures)
        h, w = (None, None) if dynamic else (int(example.shape[2]), int(example.shape[3]))
        return {
            "exporter": name,
            "fallback_reason": "; ".join(failures) if name != order[0] else None,
            "opset": OPSET,
            "dynamic_axes": {"pixel_values": [0, 2, 3] if dynamic else [0]},
            "axis_names": {"0": "batch", "2": "height", "3": "width"} if dynamic else {"0": "batch"},
            "dynamic_size": dynamic,
            "fixed_size_reason": None if dynamic else fixed_reason,
            "size_check": size_check,
            "input_shape": [None, int(example.shape[1]), h, w],
        }
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    raise ExportError(f"ONNX export failed with every exporter ({'; '.join(failures)})")


def describe_onnx(info: dict[str, Any]) -> str:
    """One line for the user: which exporter, and whether the image size is dynamic (and why not)."""
    text = f"ONNX written with the {info['exporter']} exporter"
    if info["fallback_reason"]:
        text += f" ({info['fallback_reason']})"
    if info["dynamic_size"]:
        return text + "; dynamic batch, height and width"
    _, _, h, w = info["input_shape"]
    return text + f"; dynamic batch, image size fixed at {h}x{w} ({info['fixed_size_reason']})"
