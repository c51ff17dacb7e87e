"""Classification trains on smoothed labels by default and validates on hard ones."""

from __future__ import annotations

import pytest
import torch

from engine.config import ConfigError, RunConfig
from engine.orchestration.builders import build_datamodule, build_module
from engine.orchestration.speed import speed_settings
from engine.recipes import resolve_recipe
from engine.tasks.classification.lightning_module import ClassificationModule


def _batch(classes: int = 4, n: int = 6):
    torch.manual_seed(0)
    return {"pixel_values": torch.randn(n, 3, 32, 32), "labels": torch.arange(n) % classes}


def test_training_loss_is_smoothed_and_validation_loss_is_not():
    module = ClassificationModule("resnet-tiny", num_labels=4, label_smoothing=0.1)
    batch = _batch()
    module.eval()  # fixed batch-norm statistics, so both losses see the same logits
    logits = module(batch["pixel_values"])
    hard = torch.nn.functional.cross_entropy(logits, batch["labels"])
    smooth = torch.nn.functional.cross_entropy(logits, batch["labels"], label_smoothing=0.1)
    assert not torch.isclose(hard, smooth)
    val_loss, _ = module.compute_loss(batch)
    assert torch.isclose(val_loss, hard, atol=1e-6)
    module.training = True  # the flag alone: batch-norm modules stay in eval mode
    train_loss, _ = module.compute_loss(batch)
    assert torch.isclose(train_loss, smooth, atol=1e-6)


def test_the_config_default_reaches_the_classification_module(sample_dataset):
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "data.image_size": 32,
            "data.num_workers": 0,
        }
    )
    config = resolve_recipe(config, verbose=False)
    assert config.optim.label_smoothing == pytest.approx(0.1)
    speed = speed_settings(config)
    module = build_module(config, build_datamodule(config, speed), speed)
    assert module.label_smoothing == pytest.approx(0.1)
    off = config.with_overrides({"optim.label_smoothing": 0})
    assert build_module(off, build_datamodule(off, speed), speed).label_smoothing == 0.0


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_smoothing_outside_zero_to_one_is_refused(value):
    with pytest.raises(ConfigError, match="label_smoothing"):
        RunConfig.from_dict({"task": {"name": "classification"}, "optim": {"label_smoothing": value}})
