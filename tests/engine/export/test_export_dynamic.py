"""model.onnx's image size: dynamic where the model allows it, fixed (and said why) where not."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
from torch import nn

from engine.export.manifest import ExportError
from engine.export.onnx_export import describe_onnx, export_onnx, input_axes
from engine.export.runtime import OnnxBackend, fit_to_input
from engine.models.loading import load_model

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def test_vit_with_fixed_position_embeddings_keeps_a_fixed_size_and_says_why(tmp_path):
    model = load_model("vit-tiny", "classification", num_labels=3).eval()
    size = model.config.image_size
    info = export_onnx(
        model, "classification", torch.randn(2, 3, size, size), tmp_path / "model.onnx", exporter="torchscript"
    )
    assert not info["dynamic_size"] and info["dynamic_axes"] == {"pixel_values": [0]}
    assert info["input_shape"] == [None, 3, size, size]
    assert "refuses" in info["fixed_size_reason"] and f"({size}*{size})" in info["fixed_size_reason"]
    assert f"fixed at {size}x{size}" in describe_onnx(info)
    assert isinstance(input_axes(tmp_path / "model.onnx")[0], str)  # the batch stays dynamic
    onnx = OnnxBackend(tmp_path / "model.onnx")
    assert onnx(torch.randn(3, 3, size, size))[0].shape == (3, 3)
    with pytest.raises(InvalidArgument):  # onnxruntime's refusal of an input of another size
        onnx(torch.randn(1, 3, size * 2, size))


class _SizeBakingNet(nn.Module):
    """Averages the top half of the image: tracing turns that half-height into a constant."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 2)
        self.config = SimpleNamespace()

    def forward(self, pixel_values):
        half = int(pixel_values.shape[2]) // 2
        return SimpleNamespace(logits=self.head(pixel_values[:, :, :half].mean((2, 3))))


def test_a_graph_that_baked_the_size_in_is_caught_and_exported_fixed(tmp_path):
    torch.manual_seed(0)
    info = export_onnx(
        _SizeBakingNet().eval(),
        "classification",
        torch.rand(2, 3, 32, 32),
        tmp_path / "model.onnx",
        exporter="torchscript",
    )
    assert not info["dynamic_size"] and info["input_shape"] == [None, 3, 32, 32]
    assert "differs from PyTorch" in info["fixed_size_reason"]
    assert input_axes(tmp_path / "model.onnx")[2:] == [32, 32]


def test_fixed_size_on_request(tmp_path):
    model = load_model("resnet-tiny", "classification", num_labels=3).eval()
    info = export_onnx(
        model,
        "classification",
        torch.randn(2, 3, 48, 48),
        tmp_path / "model.onnx",
        exporter="torchscript",
        dynamic_size=False,
    )
    assert not info["dynamic_size"] and input_axes(tmp_path / "model.onnx")[2:] == [48, 48]
    assert info["fixed_size_reason"] == "dynamic image size was not asked for"


def _manifest(dynamic: bool, size: int = 64) -> dict:
    shape = [None, 3, None, None] if dynamic else [None, 3, size, size]
    return {
        "onnx": {"dynamic_size": dynamic, "input_shape": shape, "fixed_size_reason": "ViT position embeddings"},
        "preprocessing": {"mean": MEAN, "std": STD, "pad_value": 0},
    }


def _batch(h: int, w: int) -> dict:
    return {"pixel_values": torch.randn(2, 3, h, w), "image_ids": torch.tensor([1, 2])}


NAMES = {1: "a.jpg", 2: "b.jpg"}


def test_a_dynamic_size_export_takes_the_batch_as_it_is():
    batch = _batch(48, 80)
    assert fit_to_input(batch, "detection", _manifest(True), NAMES)["pixel_values"] is batch["pixel_values"]


def test_a_fixed_size_export_gets_smaller_batches_padded_bottom_right_with_black():
    batch = _batch(48, 64)
    padded = fit_to_input(batch, "segmentation", _manifest(False), NAMES)["pixel_values"]
    assert padded.shape == (2, 3, 64, 64)
    assert torch.equal(padded[..., :48, :], batch["pixel_values"])
    black = torch.tensor([-m / s for m, s in zip(MEAN, STD)])
    np.testing.assert_allclose(padded[0, :, 60, 10].numpy(), black.numpy(), rtol=1e-6)


@pytest.mark.parametrize(("task", "h", "w"), [("classification", 48, 64), ("detection", 80, 64)])
def test_a_fixed_size_export_refuses_what_it_cannot_pad_naming_the_images(task, h, w):
    refusal = rf"takes 64x64 images only \(ViT position embeddings\).*{h}x{w}.*a\.jpg, b\.jpg"
    with pytest.raises(ExportError, match=refusal):
        fit_to_input(_batch(h, w), task, _manifest(False), NAMES)


@pytest.mark.slow
def test_the_dynamo_exporter_takes_rt_detr_with_a_dynamic_batch(tmp_path):
    """RT-DETR failed to convert (transformers' traced shape checks: aten._is_all_true) and its batch came out
    fixed (``len(tensor)`` under non-strict tracing); both are handled, with no fallback to TorchScript."""
    torch.manual_seed(0)
    model = load_model("rt-detr-v2-tiny", "detection", num_labels=3).eval()
    info = export_onnx(
        model, "detection", torch.randn(2, 3, 64, 64), tmp_path / "model.onnx", exporter="dynamo", dynamic_size=False
    )
    assert info["exporter"] == "dynamo" and isinstance(input_axes(tmp_path / "model.onnx")[0], str)
    onnx = OnnxBackend(tmp_path / "model.onnx")
    for batch in (1, 3):
        logits, boxes = onnx(torch.randn(batch, 3, 64, 64))
        assert logits.shape == (batch, model.config.num_queries, 3) and boxes.shape[:2] == logits.shape[:2]
