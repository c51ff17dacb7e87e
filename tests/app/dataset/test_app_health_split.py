"""The Health panel shows what keeps the dataset's train/validation split from training well."""

from __future__ import annotations

import json

from app.dataset.health_panel import HealthPanel
from app.dataset.session import open_dataset
from tests.conftest import tiny_coco_doc as _doc
from tests.conftest import tiny_images as _images
from tests.conftest import write_json as _write


def _two_images(tmp_path):
    root = tmp_path / "two"
    _write(root / "annotations.json", _doc(_images(root / "images", ["a.png", "b.png"]), [1, 2]))
    return root


def test_health_panel_shows_the_split_warnings_naming_file_and_categories(qtbot, tmp_path):
    root = _two_images(tmp_path)
    session = open_dataset(root, check_files=False)
    panel = HealthPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_problems(session.problems, checked_files=False)
    panel.set_session(session)
    qtbot.waitUntil(lambda: not panel.split_check_pending(), timeout=5000)

    assert panel.split_banner.isVisible()
    text = panel.split_banner.text()
    assert "annotations.json: only 1 training image (and 1 for validation)" in text
    assert "category 'triangle' (id 3) has no annotation in training or validation" in text
    # The held-out image's category never shows in training: named, with where validation comes from.
    assert "has 1 annotation in validation (the automatic 20% validation split (split_seed 0) of" in text
    codes = sorted(p.code for p in panel.visible_problems())
    assert codes == ["category_without_examples", "few_training_images", "unseen_validation_category"]
    assert all(p.file == str(root.absolute() / "annotations.json") for p in panel.visible_problems())
    assert "3 warnings" in panel.summary.text()

    # The file check finishing later replaces the dataset's problems, not the split's.
    panel.set_problems(session.problems, checked_files=True)
    assert len(panel.visible_problems()) == 3 and panel.split_banner.isVisible()


def test_health_panel_clears_the_split_warnings_for_a_healthy_dataset(qtbot, tmp_path, sample_dataset):
    panel = HealthPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_session(open_dataset(_two_images(tmp_path), check_files=False))
    qtbot.waitUntil(lambda: not panel.split_check_pending(), timeout=5000)
    assert panel.split_banner.isVisible()

    healthy = open_dataset(sample_dataset, check_files=False)
    panel.set_problems(healthy.problems, checked_files=False)
    panel.set_session(healthy)
    assert not panel.split_banner.isVisible()  # the old dataset's warnings go at once
    qtbot.waitUntil(lambda: not panel.split_check_pending(), timeout=5000)
    assert not panel.split_banner.isVisible() and panel.visible_problems() == []


def test_a_late_result_for_the_previous_dataset_is_dropped(qtbot, tmp_path, sample_dataset):
    panel = HealthPanel()
    qtbot.addWidget(panel)
    panel.set_session(open_dataset(_two_images(tmp_path), check_files=False))
    stale = panel._split_slot.task
    panel.set_session(open_dataset(sample_dataset, check_files=False))
    stale.join(5)
    qtbot.waitUntil(lambda: not panel.split_check_pending(), timeout=5000)
    qtbot.wait(50)  # let the stale task's queued signal arrive too
    assert panel.split_problems == [] and not panel.split_banner.isVisible()


def test_the_split_of_two_files_is_checked(qtbot, tmp_path):
    from tests.conftest import tiny_coco_folder as coco_folder

    root = coco_folder(tmp_path / "ds", train=[1] * 12, val=[1, 2])
    val_file = root / "annotations" / "instances_val.json"
    doc = json.loads(val_file.read_text())
    assert len(doc["images"]) == 2
    panel = HealthPanel()
    qtbot.addWidget(panel)
    panel.set_session(open_dataset(root, check_files=False))
    qtbot.waitUntil(lambda: not panel.split_check_pending(), timeout=5000)
    (unseen,) = [p for p in panel.split_problems if p.code == "unseen_validation_category"]
    assert unseen.file == str(val_file.absolute()) and "'square'" in unseen.message
