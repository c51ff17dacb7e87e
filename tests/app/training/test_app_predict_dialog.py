"""Predict on images from the app: a real tiny export (and its run) predicts in a child process,
and the main window draws the results file's predictions in the Image view."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("pytestqt")

import shiboken6  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from tests.conftest import wait_until  # noqa: E402

PREDICT_S = 120  # a child process that imports torch and runs a tiny model on 16 images


@pytest.fixture(scope="module")
def export(sample_dataset, tmp_path_factory):
    """(workspace, run id, export folder): detr-tiny trained 1 epoch at 64 px, exported to HF + ONNX."""
    from engine.cli import main
    from engine.config import RunConfig
    from engine.orchestration.local import train

    workspace = tmp_path_factory.mktemp("predict-ws")
    config = RunConfig.from_dict({"task": {"name": "detection"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "detr-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 64,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )
    result = train(config, progress=False)
    assert result.status == "FINISHED"
    folder = workspace / "export-detr"
    code = main(["export", result.run_id, "--out", str(folder), "--workspace", str(workspace), "--parity-images", "8"])
    assert code == 0
    return workspace, result.run_id, folder


@pytest.fixture
def window(qtbot, export):
    win = MainWindow(export[0])
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    return win


def _open(qtbot, window, folder):
    window.open_folder(folder)
    wait_until(qtbot, lambda: window.session is not None and not window.is_busy(), 60, "the dataset to open")


def _predict(qtbot, dialog, window):
    """Start the dialog's prediction; its result once drawn (the dialog closes itself unless it skipped files)."""
    with qtbot.waitSignal(dialog.predicted, timeout=PREDICT_S * 1000) as done:
        assert dialog.start() is not None, dialog.message.text()
    wait_until(qtbot, lambda: window.viewer.state.has_predictions, 30, "the predictions to be drawn")
    return done.args[0]


def _results_of(result, file_name):
    return [r for r in json.loads(result.results.read_text()) if r["file_name"] == str(file_name)]


def test_an_exports_predictions_are_drawn_dashed_over_the_dataset_images(qtbot, window, export, sample_dataset):
    _open(qtbot, window, sample_dataset)
    dialog = window.open_predict_dialog(export_dir=export[2])
    assert [dialog.backend.itemData(i) for i in range(dialog.backend.count())] == ["onnx", "torch"]
    assert dialog.images.text() == str(sample_dataset / "val")  # the open dataset's validation images
    steps = []
    shown_progress = dialog._progressed
    dialog._progressed = lambda text, done, total: (steps.append((done, total)), shown_progress(text, done, total))
    result = _predict(qtbot, dialog, window)
    assert "results for 16 images written to" in result.summary
    assert steps[-1] == (16, 16)  # the predictor's progress events reached the dialog
    qtbot.waitUntil(lambda: not shiboken6.isValid(dialog) or not dialog.isVisible())  # the Image view shows it
    assert f"on 16 images from {result.results}" in window.status_text.text()

    viewer = window.viewer
    assert window.tabs.currentWidget() is viewer
    assert viewer.session is window.session and viewer.ref.split == "val"
    shown_file = window.session.image_path(viewer.ref)
    expected = _results_of(result, shown_file)
    assert expected, "the tiny model found nothing to draw"
    viewer.set_min_score(0.0)
    boxes = viewer.prediction_items("pred_box")
    assert len(boxes) == len(expected)
    assert all(b.isVisible() and b.pen().style() == Qt.PenStyle.DashLine for b in boxes)
    drawn = sorted((round(b.rect().x(), 3), round(b.rect().width(), 3)) for b in boxes)
    assert drawn == sorted((round(r["bbox"][0], 3), round(r["bbox"][2], 3)) for r in expected)
    assert len(viewer.overlay_items("box")) > 0  # the ground truth is drawn beside them

    viewer.next()  # the next predicted image has its own predictions
    assert len(viewer.prediction_items("pred_box")) == len(_results_of(result, window.session.image_path(viewer.ref)))


def test_images_outside_the_dataset_open_as_an_image_list_and_a_bad_one_is_named(
    qtbot, window, export, sample_dataset, tmp_path
):
    _open(qtbot, window, sample_dataset)
    folder = tmp_path / "new images"
    folder.mkdir()
    good = [shutil.copy(p, folder) for p in sorted((sample_dataset / "val").glob("*.jpg"))[:2]]
    broken = folder / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    dialog = window.open_predict_dialog(export_dir=export[2])
    dialog.backend.setCurrentIndex(dialog.backend.findData("torch"))
    dialog.images.setText(";".join(str(p) for p in [*good, broken]))
    result = _predict(qtbot, dialog, window)
    assert str(broken) in dialog.message.text() and "Skipped 1 unreadable" in dialog.message.text()

    assert window.session.folder.layout == "image list" and window.session.num_images == 2  # not the broken one
    assert "not in" in window.banner.text() and str(sample_dataset) in window.banner.text()
    viewer = window.viewer
    viewer.set_min_score(0.0)
    assert viewer.overlay_items() == []  # no ground truth: a plain list of images
    assert len(viewer.prediction_items("pred_box")) == len(_results_of(result, good[0]))


def test_a_finished_runs_checkpoint_predicts_a_folder(qtbot, window, export, sample_dataset):
    _open(qtbot, window, sample_dataset)
    dialog = window.open_predict_dialog(run_id=export[1])
    assert dialog.backend.currentData() == "torch"
    result = _predict(qtbot, dialog, window)
    assert window.viewer.session is window.session and window.session.folder.layout != "image list"
    window.viewer.set_min_score(0.0)
    doc = json.loads(result.results.read_text())
    name = window.session.index("val").file_names[window.viewer.ref.row]
    assert len(window.viewer.prediction_items("pred_box")) == sum(p["file_name"] == name for p in doc["predictions"])


def test_bad_input_is_named_and_nothing_starts(qtbot, window, export, tmp_path):
    from app.training.predict_dialog import PredictDialog

    not_export = tmp_path / "just a folder"
    not_export.mkdir()
    dialog = PredictDialog(export[0], export_dir=not_export, images=tmp_path)
    qtbot.addWidget(dialog)
    assert "not a Lightbox export" in dialog.message.text() and str(not_export) in dialog.message.text()
    assert dialog.start() is None

    multitask = tmp_path / "multitask-export"
    shutil.copytree(export[2], multitask)
    manifest = json.loads((multitask / "lightbox-export.json").read_text())
    (multitask / "lightbox-export.json").write_text(json.dumps({**manifest, "task": "multitask"}))
    dialog.source.setText(str(multitask))
    assert dialog.start() is None and "a 'multitask' export cannot be drawn" in dialog.message.text()

    dialog.source.setText(str(export[2]))
    dialog._source_changed()
    dialog.images.setText(str(tmp_path / "nowhere"))
    assert dialog.start() is None and f"{tmp_path / 'nowhere'}: no such file or folder" in dialog.message.text()

    empty = tmp_path / "empty"
    empty.mkdir()
    dialog.images.setText(str(empty))
    dialog.start()
    wait_until(qtbot, lambda: not dialog.running, 60, "the empty folder to be refused")
    assert "Prediction failed" in dialog.message.text() and f"no images found in {empty}" in dialog.message.text()
    assert dialog.result is None and dialog.predict_button.isEnabled()


def test_closing_the_window_stops_a_prediction_in_progress(qtbot, window, export, sample_dataset):
    _open(qtbot, window, sample_dataset)
    dialog = window.open_predict_dialog(export_dir=export[2])
    out = dialog.request().out
    task = dialog.start()
    window.close()
    assert task.cancelled  # the predictor is killed, not left running unseen
    assert task.join(PREDICT_S) and not out.exists()
