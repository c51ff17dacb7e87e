"""The augmentation panel: editing a spec, inline validation, and a preview identical to training."""

import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool

from app.dataset.augment_panel import AugmentationPanel
from app.dataset.session import ImageRef
from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


@pytest.fixture
def panel(qtbot):
    widget = AugmentationPanel()
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    qtbot.waitUntil(widget.is_ready, timeout=30_000)
    yield widget
    # Let background previews finish before the widget goes away.
    QThreadPool.globalInstance().waitForDone(30_000)


def _wait_preview(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)


def _select(panel, name):
    names = [step["name"] for step in panel.spec()]
    panel.step_list.setCurrentRow(names.index(name))


def test_importing_the_panel_loads_no_albumentations_or_torch():
    code = (
        "import sys, app.dataset.augment_panel; "
        "print([m for m in ('torch', 'lightning', 'albumentations') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_preset_fills_the_steps_and_the_yaml_view_matches(panel):
    from engine.data.augment import preset, spec_to_yaml

    panel.size_spin.setValue(640)
    panel.load_preset()
    expected = preset("detection", "train", 640)
    assert panel.spec() == expected
    assert panel.step_list.count() == len(expected)
    assert panel.spec_yaml() == spec_to_yaml(expected)
    assert panel.yaml_view.toPlainText() == spec_to_yaml(expected)

    panel.set_split("val")
    assert panel.spec() == preset("detection", "val", 800)
    assert panel.yaml_view.toPlainText() == spec_to_yaml(preset("detection", "val", 800))
    assert panel.spec("train") == expected  # the other pipeline is kept


def test_add_remove_and_reorder_change_the_spec(qtbot, panel):
    panel.set_spec([{"name": "HorizontalFlip", "p": 0.5}])
    panel.step_list.setCurrentRow(0)
    with qtbot.waitSignal(panel.spec_changed) as changed:
        panel.add_combo.setEditText("Blur")
        panel.add_button.click()
    assert [s["name"] for s in changed.args[0]] == ["HorizontalFlip", "Blur"]
    assert [s["name"] for s in panel.spec()] == ["HorizontalFlip", "Blur"]

    panel.up_button.click()  # the new step is selected
    assert [s["name"] for s in panel.spec()] == ["Blur", "HorizontalFlip"]
    panel.down_button.click()
    assert [s["name"] for s in panel.spec()] == ["HorizontalFlip", "Blur"]
    panel.remove_button.click()
    assert panel.spec() == [{"name": "HorizontalFlip", "p": 0.5}]

    # Required parameters get working values from the image size.
    panel.size_spin.setValue(256)
    assert panel.add_step("RandomCrop")
    assert panel.spec()[-1] == {"name": "RandomCrop", "height": 256, "width": 256}
    # A misspelt name is refused with a suggestion, and nothing changes.
    before = panel.spec()
    assert not panel.add_step("HorizontalFlipp")
    assert "did you mean HorizontalFlip" in panel.list_error.text()
    assert panel.spec() == before


def test_invalid_parameter_shows_albumentations_message_and_keeps_the_valid_spec(panel):
    panel.set_spec([{"name": "HorizontalFlip", "p": 0.5}, {"name": "ColorJitter"}])
    _select(panel, "HorizontalFlip")
    good_yaml = panel.yaml_view.toPlainText()

    panel.param_editors["p"].setValue(2)
    error = panel.param_errors["p"]
    assert not error.isHidden()
    assert "HorizontalFlip" in error.text() and "p:" in error.text()
    assert "less than or equal to 1" in error.text()
    assert panel.spec()[0] == {"name": "HorizontalFlip", "p": 0.5}
    assert panel.yaml_view.toPlainText() == good_yaml

    panel.param_editors["p"].setValue(0.25)
    assert error.isHidden() and panel.current_error == ""
    assert panel.spec()[0] == {"name": "HorizontalFlip", "p": 0.25}

    # Tuple parameters are typed as YAML.
    _select(panel, "ColorJitter")
    field = panel.param_editors["brightness"]
    field.setText("[1.0, 0.5]")  # min above max
    field.editingFinished.emit()
    assert "brightness" in panel.param_errors["brightness"].text()
    assert "brightness" not in panel.spec()[1]
    field.setText("[0.7, 1.3]")
    field.editingFinished.emit()
    assert panel.spec()[1]["brightness"] == [0.7, 1.3]


def test_preview_is_exactly_what_the_training_dataset_produces(qtbot, panel, session):
    from engine.tasks.detection.datamodule import DetectionDataset

    panel.set_source(session, ImageRef("train", 3))
    _wait_preview(qtbot, panel)
    assert len(panel.last_samples) == 8 == len(panel.tiles)
    assert all(tile.tile is not None for tile in panel.tiles)
    assert any(tile.tile.boxes for tile in panel.tiles)  # detection boxes are drawn
    assert panel.stack.currentWidget() is panel.grid_host

    training = DetectionDataset(
        session.image_dir("train"),
        index=session.index("train"),
        transforms=panel.spec(),
        seed=panel.seed,
        check_files=False,
    )
    assert panel.last_index == 3
    for k, sample in enumerate(panel.last_samples):
        expected = training.augmented(panel.last_index, k)
        np.testing.assert_array_equal(sample["image"], expected["image"])
        np.testing.assert_array_equal(sample["boxes"], expected["boxes"])


def test_reseed_changes_seed_and_images_and_drops_stale_results(qtbot, panel, session):
    panel.set_source(session, ImageRef("train", 0))
    _wait_preview(qtbot, panel)
    seed, before = panel.seed, [s["image"] for s in panel.last_samples]

    panel.reseed_button.click()
    panel.reseed()  # a second request at once: only its result may land
    _wait_preview(qtbot, panel)
    assert panel.seed != seed
    assert str(panel.seed) in panel.seed_label.text()
    assert panel.last_seed == panel.seed
    after = [s["image"] for s in panel.last_samples]
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(before, after))


def test_a_failing_transform_shows_a_message_in_the_grid(qtbot, panel, session):
    panel.set_task("classification")
    panel.set_spec([{"name": "RandomCrop", "height": 1000, "width": 1000}])
    panel.set_source(session, ImageRef("train", 0))
    _wait_preview(qtbot, panel)
    assert panel.stack.currentWidget() is panel.message
    assert "Crop size" in panel.message.text()
    panel.set_spec([{"name": "HorizontalFlip"}])  # and it recovers
    _wait_preview(qtbot, panel)
    assert panel.stack.currentWidget() is panel.grid_host


def test_segmentation_preview_carries_masks(qtbot, panel, session):
    panel.set_task("segmentation")
    assert panel.spec()[0]["name"] == "LongestMaxSize"  # the detection preset was replaced
    panel.samples_spin.setValue(3)
    panel.set_source(session, ImageRef("val", 1))
    _wait_preview(qtbot, panel)
    assert len(panel.last_samples) == 3
    assert all(s["mask"] is not None and s["mask"].shape == s["image"].shape[:2] for s in panel.last_samples)


def test_apply_to_config_round_trips_through_yaml(panel):
    from engine.config import RunConfig
    from engine.data.augment import spec_to_yaml

    panel.set_spec(
        [
            {"name": "HorizontalFlip", "p": 0.5},
            {"name": "Affine", "rotate": [-10, 10], "p": 0.3},
            {"name": "LongestMaxSize", "max_size": 640},
        ]
    )
    panel.set_spec([{"name": "LongestMaxSize", "max_size": 640}], "val")
    config = panel.apply_to_config(RunConfig.from_dict({"task": "detection"}))
    back = RunConfig.from_yaml(config.to_yaml())
    assert back.augmentation.preset is False
    assert back.augmentation.train == panel.spec("train")
    assert back.augmentation.val == panel.spec("val")
    assert spec_to_yaml(back.augmentation.train) == panel.spec_yaml("train")
    with pytest.raises(ValueError, match="classification"):  # specs belong to their task
        panel.apply_to_config(RunConfig.from_dict({"task": "classification"}))

    fresh = AugmentationPanel()
    try:
        fresh.load_config(back)
        assert fresh.spec("train") == panel.spec("train")
    finally:
        fresh.deleteLater()


def test_screenshot(qtbot, panel, session, screenshot_dir):
    _select(panel, "RandomBrightnessContrast")  # a step with a fuller form
    panel.step_list.setFocus()
    panel.set_source(session, ImageRef("train", 5))
    _wait_preview(qtbot, panel)
    assert panel.grab().save(str(screenshot_dir / "augment.png"))


def test_labels_toggle_hides_box_names_in_the_preview(qtbot, panel, session):
    from PySide6.QtGui import QImage

    index = session.index("train")
    row = next(r for r in range(index.num_images) if len(index.annotation_rows(r)) >= 2)
    panel.set_source(session, ImageRef("train", row))
    _wait_preview(qtbot, panel)
    tile = panel.tiles[0]
    assert tile.tile is not None and tile.tile.boxes and tile.show_labels

    def grab() -> QImage:
        return tile.grab().toImage()

    with_labels = grab()
    panel.labels_check.setChecked(False)
    assert not any(t.show_labels for t in panel.tiles)
    assert grab() != with_labels  # the tags are gone
    panel.set_labels_visible(True)
    assert panel.labels_check.isChecked() and grab() == with_labels
