"""The Augment tab's spec model, without Qt: overrides, what auto resolves to, what a run gets."""

import subprocess
import sys

import pytest

from app.dataset.augment_model import AugmentSpecs, flow_yaml, step_text
from app.dataset.augment_recipe import RunRecipe
from engine.config import RunConfig
from engine.data import augment


def _run(task: str = "detection") -> RunConfig:
    if task == "multitask":
        return RunConfig.from_dict({"task": {"name": task, "tasks": ["detection", "segmentation"]}})
    return RunConfig.from_dict({"task": {"name": task}})


def _recipe(task: str = "detection", size: int = 320) -> RunRecipe:
    specs = {split: augment.preset(task, split, size) for split in ("train", "val")}
    return RunRecipe(task, size, specs, f"auto → light: {size} px images")


def test_the_model_imports_no_qt():
    code = "import sys, app.dataset.augment_model; print(any(m.startswith('PySide6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_standing_alone_it_holds_the_task_presets_and_writes_only_what_was_edited():
    model = AugmentSpecs("classification")
    assert not model.loaded
    model.load()
    assert model.image_size == augment.DEFAULT_IMAGE_SIZE["classification"]
    assert model.spec("train") == augment.preset("classification", "train", model.image_size)
    config = _run("classification")
    assert model.apply_to_config(config) is config  # nothing edited: the recipe decides
    assert model.commit([{"name": "HorizontalFlip", "p": 0.5}], "train")
    assert not model.commit([{"name": "VerticalFlip", "p": 0.5}], "train")  # already an override
    applied = model.apply_to_config(config)
    assert applied.augmentation.train == [{"name": "VerticalFlip", "p": 0.5}]
    assert applied.augmentation.val is None and applied.augmentation.preset
    with pytest.raises(ValueError, match="holds classification augmentations but the config trains detection"):
        model.apply_to_config(_run("detection"))


def test_a_new_task_drops_only_the_edits_it_cannot_use_and_says_why():
    model = AugmentSpecs("segmentation")
    model.load()
    model.commit(model.validate([{"name": "MaskDropout"}]), "train")
    model.commit(model.validate([{"name": "HorizontalFlip"}]), "val")
    notes = model.set_task("detection")
    assert len(notes) == 1 and notes[0].startswith("train: ")
    assert model.overridden_splits() == ("val",)
    assert model.spec("train") == augment.preset("detection", "train", augment.DEFAULT_IMAGE_SIZE["detection"])
    assert model.spec("val")[0]["name"] == "HorizontalFlip"
    assert model.set_task("detection") is None  # the same task: nothing redone
    with pytest.raises(ValueError, match="unknown task"):
        model.set_task("keypoints")


def test_before_loading_a_new_task_is_noted_and_nothing_is_built():
    model = AugmentSpecs("detection", augment=lambda: pytest.fail("the engine was imported"))
    assert model.set_task("classification") is None and model.task == "classification"


def test_following_a_run_the_recipe_fills_what_nobody_edited():
    model = AugmentSpecs("detection")
    model.set_run(_run("detection"))
    model.load()
    assert model.recipe_outdated()
    assert model.recipe_request() is not None and not model.recipe_outdated()
    assert "working out the recipe" in model.recipe_line().text
    model.commit(model.validate([{"name": "HorizontalFlip"}]), "val")
    assert model.recipe_resolved({"recipe": _recipe(size=320)}) is True
    assert model.image_size == 320
    assert model.spec("train") == augment.preset("detection", "train", 320)
    assert model.spec("val") == model.validate([{"name": "HorizontalFlip"}])  # the override stays
    line = model.recipe_line()
    assert line.overridden and "train follows the recipe (auto → light: 320 px images)" in line.text
    assert model.recipe_resolved({"recipe": _recipe(size=320)}) is False  # the same steps again
    assert model.recipe_resolved({"error": "OSError: gone"}) is None
    assert "could not work out the recipe: OSError: gone" in model.recipe_line().text
    assert model.use_recipe() and not model.use_recipe()
    assert model.spec("val") == augment.preset("detection", "val", 320)
    assert model.recipe_line().overridden is False


def test_a_run_of_another_task_kind_is_not_edited_here():
    model = AugmentSpecs("detection")
    model.load()
    model.commit(model.validate([{"name": "HorizontalFlip"}]), "train")
    with pytest.raises(ValueError, match="cannot be used by a multitask run"):
        model.apply_to_config(_run("multitask"))
    model.set_run(_run("multitask"))
    assert model.recipe_request() is None
    assert model.recipe_line() == type(model.recipe_line())(
        "The run is multitask: its augmentation is not edited here.", None
    )


def test_a_loaded_config_with_its_own_steps_becomes_the_overrides():
    model = AugmentSpecs("classification")
    model.load()
    config = RunConfig.from_dict(
        {
            "task": {"name": "classification"},
            "data": {"image_size": 96},
            "augmentation": {"train": [{"name": "HorizontalFlip"}]},
        }
    )
    model.load_config(config)
    assert model.overridden_splits() == ("train",) and model.image_size == 96
    assert model.spec("val") == augment.preset("classification", "val", 96)


def test_a_parameter_left_at_its_default_is_no_edit_and_a_bad_one_is_refused():
    model = AugmentSpecs("detection")
    model.load()
    model.commit(model.validate([{"name": "HorizontalFlip"}]), "train")
    default_p = next(p["default"] for p in model.describe("HorizontalFlip")["params"] if p["name"] == "p")
    assert model.with_param("train", 0, "p", default_p) is None
    assert model.with_param("train", 0, "p", 0.25)[0]["p"] == 0.25
    with pytest.raises(augment.AugmentationSpecError) as err:
        model.with_param("train", 0, "p", 3)
    assert err.value.param == "p"
    assert model.spec("train")[0].get("p", default_p) == default_p  # the stored spec is untouched


def test_an_added_step_gets_working_values_for_required_parameters():
    model = AugmentSpecs("detection")
    model.load()
    spec = model.with_step_added("train", "RandomCrop", 0)
    assert spec[0] == {"name": "RandomCrop", "height": 800, "width": 800}
    with pytest.raises(augment.AugmentationSpecError):
        model.with_step_added("train", "NoSuchTransform", 0)


def test_step_lines_read_like_the_yaml():
    assert flow_yaml([0.1, 0.3]) == "[0.1, 0.3]" and flow_yaml(None) == ""
    assert step_text({"name": "Blur", "blur_limit": [3, 7], "p": 0.5}, 2) == "2. Blur   blur_limit=[3, 7], p=0.5"
    assert step_text({"name": "HorizontalFlip"}, 1) == "1. HorizontalFlip"


def test_a_followed_run_shows_its_size_before_the_recipe_answers():
    """The first preview was built at the size box's minimum (16 px) while the recipe was worked out."""
    from engine.config import RunConfig

    specs = AugmentSpecs()
    specs.set_run(RunConfig.from_dict({"task": {"name": "classification"}}))
    assert specs.image_size == 224  # the task's usual size until the recipe says otherwise
    sized = AugmentSpecs()
    sized.set_run(RunConfig.from_dict({"task": {"name": "detection"}, "data": {"image_size": 96}}))
    assert sized.image_size == 96
