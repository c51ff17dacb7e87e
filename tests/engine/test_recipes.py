"""Recipes: automatic augmentation strength, whole-image val transforms, warm-up and schedule."""

import numpy as np
import pytest

from engine.config import RunConfig
from engine.data import augment
from engine.recipes import choose_schedule, choose_strength, choose_warmup, explain_recipe, recipe_spec, resolve_recipe


def _config(data=None, **overrides):
    base = {"model.checkpoint": "resnet-tiny", "data.num_workers": 0}
    if data is not None:
        base["data.path"] = str(data)
    base.update(overrides)
    return RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(base)


def test_runs_too_short_to_overfit_get_no_augmentation_and_tiny_images_light():
    assert choose_strength(224, 50_000, 5)[0] == "none"  # short run, however large
    assert choose_strength(32, 50_000, 5)[0] == "none"
    assert choose_strength(32, 50_000, 100)[0] == "light"  # tiny images, however long
    assert choose_strength(128, 500, 20)[0] == "medium"
    assert choose_strength(224, 5_000, 40)[0] == "full"
    assert choose_strength(224, 200, 40)[0] == "medium"  # long run but few images: no full preset


def test_short_runs_keep_the_peak_rate_longer():
    """A 5-epoch run still underfits: a cosine decay to zero cost 8 points of top-1 on digits, a
    wsd schedule (constant, then the last 20% decaying) keeps learning and still ends annealed."""
    assert choose_schedule(5)[0] == "wsd"
    assert choose_schedule(10)[0] == "cosine"


def test_warmup_is_a_small_share_and_absent_on_short_runs():
    assert choose_warmup(100, 20) == 0
    assert choose_warmup(10_000, 500) == 300
    assert choose_warmup(10_000, 100) == 100  # at most one epoch
    assert choose_warmup(1_000_000, 50_000) == 1000


@pytest.mark.parametrize("task", augment.TASKS)
@pytest.mark.parametrize("strength", ["light", "medium", "full"])
def test_val_keeps_the_whole_image(task, strength):
    spec = recipe_spec(task, "val", strength, 64)
    assert not any("Crop" in step["name"] for step in spec)
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :4] = 255  # marks at the far borders must survive
    image[:, -4:] = 255
    out = augment.apply(augment.build_pipeline(spec, task), image)["image"]
    assert out.shape[:2] == (64, 64)
    assert out[:, 0].max() == 255 and out[:, : out.shape[1]].max(axis=0)[-40:].max() == 255
    augment.validate_spec(recipe_spec(task, "train", strength, 64), task=task)


def test_auto_config_is_resolved_and_says_what_was_chosen(sample_dataset):
    config = _config(sample_dataset, **{"optim.epochs": 12, "data.image_size": 48})
    assert config.augmentation.strength == "auto" and config.optim.scheduler == "auto"
    recipe = explain_recipe(config)
    resolved = recipe.config
    assert resolved.augmentation.strength == "light"
    shrink = {"area_for_downscale": "image"}  # area averaging when shrinking: no aliasing
    assert resolved.augmentation.train[0] == {"name": "Resize", "height": 48, "width": 48, **shrink}
    assert [step["name"] for step in resolved.augmentation.train] == ["Resize", "Affine"]  # no flip, no crop
    assert resolved.augmentation.val == [{"name": "Resize", "height": 48, "width": 48, **shrink}]
    assert resolved.optim.scheduler == "cosine" and resolved.optim.warmup_steps == 0
    assert any("48 px" in line for line in recipe.reasons)
    text = resolved.to_yaml()
    assert "strength: light" in text and "scheduler: cosine" in text
    # Resolving again changes nothing: a saved run.yaml is already concrete.
    assert resolve_recipe(resolved, verbose=False) == resolved


def test_empty_image_size_uses_the_model_size(sample_dataset):
    resolved = resolve_recipe(_config(sample_dataset, **{"optim.epochs": 20}), verbose=False)
    assert resolved.data.image_size == 64  # resnet-tiny's own size
    assert resolved.augmentation.strength == "medium"
    assert resolved.augmentation.train[0]["size"] == [64, 64]


def test_every_part_can_be_overridden(sample_dataset):
    custom = [{"name": "Resize", "height": 40, "width": 40}]
    config = _config(
        sample_dataset,
        **{
            "augmentation.strength": "full",
            "augmentation.val": custom,
            "optim.scheduler": "step",
            "optim.warmup_steps": 7,
            "data.image_size": 40,
            "optim.epochs": 2,
        },
    )
    resolved = resolve_recipe(config, verbose=False)
    assert resolved.augmentation.strength == "full"
    assert resolved.augmentation.train == augment.preset("classification", "train", 40)
    assert resolved.augmentation.val == custom
    assert resolved.optim.scheduler == "step" and resolved.optim.warmup_steps == 7
    off = resolve_recipe(_config(sample_dataset, **{"augmentation.preset": False}), verbose=False)
    assert off.augmentation.train is None and off.augmentation.strength == "auto"


def test_training_saves_the_resolved_recipe_in_run_yaml(sample_dataset, tmp_path):
    from engine.orchestration.local import train

    config = _config(
        sample_dataset,
        **{"optim.epochs": 1, "optim.batch_size": 16, "data.image_size": 32, "workspace": str(tmp_path / "ws")},
    )
    result = train(config, progress=False)
    assert result.status == "FINISHED"
    saved = RunConfig.load(tmp_path / "ws" / "runs" / result.run_id / "run.yaml")
    assert saved.augmentation.strength == "none" and saved.optim.scheduler == "wsd"
    resize = {"name": "Resize", "height": 32, "width": 32, "area_for_downscale": "image"}
    assert saved.augmentation.train == saved.augmentation.val == [resize]


def test_conditional_detr_scores_with_sigmoid_and_trains_a_step(sample_dataset):
    import torch

    from engine.catalog.presets import get_preset
    from engine.models.loading import load_model
    from engine.tasks.detection.lightning_module import detections_from_outputs

    assert get_preset("conditional-detr-resnet-50").hub_id == "microsoft/conditional-detr-resnet-50"
    model = load_model("conditional-detr-tiny", "detection", num_labels=4, pretrained=False)
    x = torch.rand(1, 3, 64, 64)
    out = model(
        pixel_values=x, labels=[{"class_labels": torch.tensor([2]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}]
    )
    out.loss.backward()
    assert out.logits.shape[-1] == 4 and torch.isfinite(out.loss)
    # Four sigmoid classes, no "no object" column: a confident logit scores ~1 for its own category.
    logits = torch.full((1, 2, 4), -9.0)
    logits[0, 0, 3] = 9.0
    boxes = torch.tensor([[[0.5, 0.5, 0.5, 0.5], [0.2, 0.2, 0.1, 0.1]]])
    target = {
        "content_box": torch.tensor([0, 0, 64, 64]),
        "orig_size": torch.tensor([64, 64]),
        "image_id": torch.tensor(7),
    }
    found = detections_from_outputs(logits, boxes, [target], [1, 2, 3, 5], canvas=(64, 64))
    best = max(found, key=lambda d: d["score"])
    assert best["category_id"] == 5 and best["score"] > 0.99
    assert best["bbox"] == pytest.approx([16.0, 16.0, 32.0, 32.0])


def test_classification_shrinks_by_area_so_fine_stripes_do_not_alias():
    """Stripes one pixel in three, shrunk 3x: area averaging keeps their mean brightness (85);
    OpenCV's bilinear lands on the white columns only and makes the picture white (aliasing)."""
    from engine.data import augment

    stripes = np.zeros((96, 96, 3), np.uint8)
    stripes[:, 1::3] = 255
    for strength in ("none", "light"):
        spec = recipe_spec("classification", "train" if strength == "light" else "val", strength, 32)
        spec = [step for step in spec if step["name"] == "Resize"]  # the shift would move the stripes
        out = augment.apply(augment.build_pipeline(spec, "classification"), stripes)["image"].astype(float)
        assert abs(out.mean() - 85) < 2, (strength, out.mean())
    plain = augment.apply(
        augment.build_pipeline([{"name": "Resize", "height": 32, "width": 32}], "classification"), stripes
    )["image"].astype(float)
    assert plain.mean() > 200  # what the spec without area averaging did
