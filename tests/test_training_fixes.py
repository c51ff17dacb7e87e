"""Issue 7 fixes: what the engine trains, saves and reports is right."""

import json
from pathlib import Path

import pytest
import torch

from engine.config import RunConfig
from engine.models.loading import load_model


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _detection_batch(size=64):
    pixels = torch.rand(2, 3, size, size)
    labels = [{"class_labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])},
              {"class_labels": torch.tensor([1]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2]])}]
    return pixels, labels


def _backbone_tensors(model):
    return {n: p for n, p in model.model.backbone.model.named_parameters()}


def _step_changes(model):
    before = {n: p.detach().clone() for n, p in _backbone_tensors(model).items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    pixels, labels = _detection_batch()
    model.train()
    model(pixel_values=pixels, pixel_mask=torch.ones(2, 64, 64, dtype=torch.long), labels=labels).loss.backward()
    optimizer.step()
    return {n for n, p in _backbone_tensors(model).items() if not torch.equal(p.detach(), before[n])}


def test_detr_backbone_trains_on_random_weights_with_trainable_batch_norm():
    model = load_model("detr-tiny", "detection", num_labels=2)
    tensors = _backbone_tensors(model)
    assert tensors and all(p.requires_grad for p in tensors.values())
    norms = [m for m in model.model.backbone.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.weight.requires_grad for m in norms)
    changed = _step_changes(model)
    assert changed == set(tensors)  # every backbone tensor moved, stem and BatchNorm included


def test_detr_backbone_from_pretrained_folder_trains_all_but_the_stem(tmp_path):
    load_model("detr-tiny", "detection", num_labels=2).save_pretrained(tmp_path / "detr")
    model = load_model(str(tmp_path / "detr"), "detection", num_labels=2, pretrained=True)
    tensors = _backbone_tensors(model)
    frozen = {n for n, p in tensors.items() if not p.requires_grad}
    assert frozen and all("embedder" in n for n in frozen)
    trainable = set(tensors) - frozen
    assert trainable and _step_changes(model) == trainable
