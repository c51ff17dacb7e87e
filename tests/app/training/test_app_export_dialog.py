"""The Export dialog on a real tiny run: an export in the background with its steps, then the
parity table, Open folder and Predict; a refused parity shows its figures and leaves the earlier
export as it was; Cancel stops the export and leaves nothing behind; bad fields are named."""

import json

import pytest

from tests.conftest import wait_until

pytest.importorskip("pytestqt")
pytest.importorskip("mlflow")

EXPORT_TIMEOUT_S = 300  # two shared cores: the child imports torch, loads, traces and compares


@pytest.fixture(scope="module")
def finished_run(sample_dataset, tmp_path_factory):
    """One finished tiny classification run (resnet-tiny, 32 px, 1 epoch) and its runs-table row."""
    from app.training.runs_model import load_runs
    from engine.config import RunConfig
    from engine.orchestration.local import train

    workspace = tmp_path_factory.mktemp("dialog-ws")
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )
    result = train(config, progress=False)
    assert result.status == "FINISHED"
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    rows = load_runs(uri)
    return next(r for r in rows if r.run_id == result.run_id), rows, workspace, uri


@pytest.fixture
def dialog(qtbot, finished_run):
    from app.training.export_dialog import ExportDialog

    row, rows, workspace, uri = finished_run
    dialog = ExportDialog(row, rows, workspace, uri)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _ended(qtbot, dialog):
    wait_until(qtbot, lambda: dialog.outcome is not None, EXPORT_TIMEOUT_S, "the export to end")
    return dialog.outcome


def test_export_shows_its_steps_then_the_parity_table_and_registers(qtbot, dialog, finished_run, tmp_path):
    from mlflow.tracking import MlflowClient

    from engine.export.manifest import read_manifest

    row, _, workspace, uri = finished_run
    assert dialog.destination.text().startswith(str(workspace / "exports"))
    dialog.destination.setText(str(tmp_path / "export"))
    dialog.fields["parity_images"].setText("8")
    dialog.register.setChecked(True)
    dialog.model_name.setText("shapes-dialog")
    steps = []
    dialog.step_started.connect(lambda *told: steps.append(told))
    dialog.export_button.click()
    assert dialog.exporting and not dialog.export_button.isEnabled() and dialog.cancel_button.isVisible()
    outcome = _ended(qtbot, dialog)
    assert outcome.ok, outcome.message
    assert [text for text, _, _ in steps][-1] == "registering in MLflow as shapes-dialog@best"
    assert any(text == "checking parity on 8 validation images" for text, _, _ in steps)
    assert all(total == 6 for _, _, total in steps)
    manifest = read_manifest(tmp_path / "export")
    assert manifest["source"]["run_id"] == row.run_id and (tmp_path / "export" / "model.onnx").is_file()
    assert (tmp_path / "export" / "model.safetensors").is_file()
    table = dialog.parity_table
    assert table.isVisible() and table.item(0, 0).text() == "accuracy (all 8 images)"
    assert table.rowCount() == 1 + len(manifest["parity"]["metric"]["per_class"])  # the metric, then each class
    assert table.item(0, 1).text() == f"{manifest['parity']['metric']['checkpoint']:.4f}"
    assert dialog.raw_table.item(0, 0).text() == "largest |difference|"
    assert "Parity passed on 8 validation images" in dialog.verdict.text()
    assert dialog.open_button.isVisible() and dialog.predict_button.isVisible()
    with qtbot.waitSignal(dialog.predict_requested) as asked:
        dialog.predict_button.click()
    assert asked.args == [str(tmp_path / "export")]
    version = MlflowClient(uri).get_model_version_by_alias("shapes-dialog", "best")
    assert version.run_id == row.run_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_refused_parity_shows_its_figures_and_keeps_the_earlier_export(qtbot, dialog, tmp_path):
    from engine.export.manifest import MANIFEST_NAME

    earlier = tmp_path / "export"
    earlier.mkdir()
    (earlier / MANIFEST_NAME).write_text(json.dumps({"earlier": True}))
    dialog.destination.setText(str(earlier))
    assert "already exists" in dialog.field_errors["destination"].text() and not dialog.export_button.isEnabled()
    dialog.replace.setChecked(True)
    dialog.fields["atol"].setText("0")  # no raw difference allowed: float rounding alone refuses it
    dialog.fields["parity_images"].setText("8")
    assert dialog.export_button.isEnabled()
    dialog.export_button.click()
    outcome = _ended(qtbot, dialog)
    assert not outcome.ok and outcome.parity is not None
    text = dialog.verdict.text()
    assert text.startswith("Parity failed: max abs diff") and "beyond 0" in text and "Nothing was exported" in text
    raw = dialog.raw_table
    assert raw.item(0, 2).text() == "≤ 0" and raw.item(0, 1).foreground().color().name() == "#b00020"
    assert dialog.parity_table.rowCount() > 1 and not dialog.open_button.isVisible()
    assert json.loads((earlier / MANIFEST_NAME).read_text()) == {"earlier": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no half export beside it
    assert dialog.export_button.isEnabled()  # the form is back for another try


def test_cancel_stops_the_export_and_leaves_nothing_behind(qtbot, dialog, tmp_path):
    dialog.destination.setText(str(tmp_path / "export"))
    steps = []
    dialog.step_started.connect(lambda text, *_: steps.append(text))
    dialog.export_button.click()
    wait_until(qtbot, lambda: any("tracing" in t for t in steps), EXPORT_TIMEOUT_S, "the export to trace the model")
    dialog.cancel_button.click()
    outcome = _ended(qtbot, dialog)
    assert outcome.cancelled and "Cancelled: nothing was exported" in dialog.verdict.text()
    assert not dialog.results.isVisible()  # no figures: the check never ran
    assert list(tmp_path.iterdir()) == []
    assert not dialog.exporting and dialog.export_button.isEnabled()


def test_bad_fields_are_named_beside_them_and_block_export(dialog):
    dialog.fields["metric"].setText("lots")
    dialog.register.setChecked(True)
    dialog.alias.setText("latest")
    assert dialog.field_errors["metric"].text() == "Task metric ±: 'lots' is not a number"
    assert "reserved by MLflow" in dialog.field_errors["alias"].text()
    assert not dialog.field_errors["destination"].isVisibleTo(dialog) and not dialog.export_button.isEnabled()
    dialog.formats["onnx"].setChecked(False)  # no parity check: its tolerances do not matter
    assert not dialog.parity_box.isEnabled() and "metric" not in dialog.errors
    dialog.alias.setText("production")
    assert dialog.export_button.isEnabled()
