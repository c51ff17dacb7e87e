"""The recipe's optimisation choices: learning rate, clipping, warm-up, epochs and schedule per model family."""

import json

import pytest

from engine.config import RunConfig
from engine.recipes import explain_recipe
from engine.tasks.common.lr_schedule import lr_factor


def _resolved(task: str, data, **overrides):
    base = {"data.path": str(data), "data.num_workers": 0}
    base.update(overrides)
    return explain_recipe(RunConfig.from_dict({"task": {"name": task}}).with_overrides(base)).config


def test_the_default_detector_gets_its_familys_rate_clipping_warm_up_and_enough_steps(sample_dataset):
    """With nothing set, rt-detr-v2-tiny used lr 1e-4, no clipping, 10 epochs (30 steps on the demo
    set): it learned nothing. Its family trains at 1e-3 with clipping 0.1 and needs hundreds of steps."""
    optim = _resolved("detection", sample_dataset).optim
    assert optim.lr == pytest.approx(1e-3) and optim.grad_clip == pytest.approx(0.1)
    steps_per_epoch = -(-48 // optim.batch_size)  # the demo set: 48 training images
    assert optim.epochs * steps_per_epoch >= 300
    assert optim.warmup_steps >= 20  # transformers warm up even when an epoch is 3 steps


@pytest.mark.parametrize(
    "preset, lr, clip",
    [
        ("detr-tiny", 1e-4, 0.1),
        ("conditional-detr-tiny", 1e-4, 0.1),
        ("resnet-tiny", 1e-3, 0.0),
        ("vit-tiny", 5e-4, 1.0),
    ],
)
def test_each_family_gets_its_own_rate_and_clipping(sample_dataset, preset, lr, clip):
    task = "detection" if "detr" in preset else "classification"
    optim = _resolved(task, sample_dataset, **{"model.checkpoint": preset}).optim
    assert (optim.lr, optim.grad_clip) == (pytest.approx(lr), pytest.approx(clip))


def test_trained_weights_are_fine_tuned_at_a_tenth_of_the_rate(sample_dataset, tmp_path):
    folder = tmp_path / "my-resnet"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "resnet"}))
    assert _resolved("classification", sample_dataset, **{"model.checkpoint": str(folder)}).optim.lr == 1e-4
    scratch = _resolved(
        "classification", sample_dataset, **{"model.checkpoint": str(folder), "model.pretrained": False}
    )
    assert scratch.optim.lr == 1e-3
    # An architecture the recipe does not know keeps the cautious rate.
    (folder / "config.json").write_text(json.dumps({"model_type": "swin"}))
    assert _resolved("classification", sample_dataset, **{"model.checkpoint": str(folder)}).optim.lr == 1e-4


def test_what_the_user_set_is_kept(sample_dataset):
    optim = _resolved(
        "detection",
        sample_dataset,
        **{
            "optim.lr": 3e-4,
            "optim.grad_clip": 0,
            "optim.epochs": 4,
            "optim.warmup_steps": 2,
            "optim.scheduler": "cosine",
        },
    ).optim
    assert (optim.lr, optim.grad_clip, optim.epochs, optim.warmup_steps, optim.scheduler) == (3e-4, 0, 4, 2, "cosine")


def test_a_step_limit_decides_the_epochs(sample_dataset):
    optim = _resolved("detection", sample_dataset, **{"optim.max_steps": 7}).optim
    assert optim.epochs == 3  # 3 steps an epoch: 3 epochs reach the 7th step


def test_large_sets_keep_ten_epochs(sample_dataset):
    recipe = explain_recipe(
        RunConfig.from_dict({"task": {"name": "detection"}}).with_overrides({"data.path": str(sample_dataset)}),
        train_images=100_000,
    )
    assert recipe.config.optim.epochs == 10
    assert any("10 epochs" in line for line in recipe.reasons)


def test_the_chosen_values_are_written_into_the_config_and_explained(sample_dataset):
    recipe = explain_recipe(
        RunConfig.from_dict({"task": {"name": "detection"}}).with_overrides({"data.path": str(sample_dataset)})
    )
    text = recipe.config.to_yaml()
    assert "lr: 0.001" in text and "grad_clip: 0.1" in text
    assert any("learning rate 0.001: rt_detr_v2 from random weights" in line for line in recipe.reasons)
    assert any("gradient clipping 0.1" in line for line in recipe.reasons)


def test_wsd_keeps_the_peak_rate_then_decays_linearly_to_zero():
    factors = [lr_factor("wsd", s, total=110, warmup=10) for s in range(110)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])  # warm-up
    assert set(factors[10:90]) == {1.0}  # stable for 80% of the 100 steps after the warm-up
    assert factors[90] == pytest.approx(1.0) and factors[109] == pytest.approx(0.05)
    assert all(a > b for a, b in zip(factors[90:], factors[91:]))  # decaying in the last 20%
    assert lr_factor("wsd", 500, total=110, warmup=10) == 0.0  # past the end


def test_cosine_and_constant_schedules_are_unchanged():
    assert lr_factor("cosine", 0, total=100, warmup=0) == pytest.approx(1.0)
    assert lr_factor("cosine", 50, total=100, warmup=0) == pytest.approx(0.5)
    assert lr_factor("none", 99, total=100, warmup=0) == 1.0
    assert lr_factor("step", 25, total=100, warmup=0, steps_per_epoch=5, step_size=2, gamma=0.5) == 0.25
