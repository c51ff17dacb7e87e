"""The "Where to run" panel: choices and their fields, errors at the field, Test connection in the background."""

import http.server
import json
import socket
import threading

import pytest
from PySide6.QtCore import Qt

from app.training import target_panel
from app.training.target_model import LOCAL_RAY, MLFLOW_SERVER, REMOTE_RAY, Target, TargetError, TargetMemory
from app.training.target_panel import TargetPanel
from engine.config import RunConfig
from tests.conftest import wait_until


def _config() -> RunConfig:
    return RunConfig.from_dict({"task": {"name": "classification"}, "data": {"path": "/data/coco"}})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_panel(qtbot, tmp_path):
    def make(gpus=()):
        panel = TargetPanel(tmp_path / "ws", detect_gpus=lambda: list(gpus))
        qtbot.addWidget(panel)
        wait_until(qtbot, lambda: panel._gpus is not None, 10, "the GPU look-up")
        return panel

    return make


def _type(qtbot, line_edit, text: str) -> None:
    line_edit.clear()
    qtbot.keyClicks(line_edit, text)
    qtbot.keyClick(line_edit, Qt.Key_Return)  # editingFinished: the address is saved


def test_the_choice_is_saved_in_the_workspace_and_shown_again(qtbot, make_panel, tmp_path):
    panel = make_panel()
    assert panel.target() == Target()  # nothing saved yet: this computer, the workspace store
    panel.remote_radio.setChecked(True)
    _type(qtbot, panel.dashboard, "head:8265")
    panel.mlflow_radio.setChecked(True)
    _type(qtbot, panel.mlflow_uri, "http://mlflow:5000")
    saved = TargetMemory.in_workspace(tmp_path / "ws").recall()
    assert saved == Target(
        where=REMOTE_RAY, dashboard="head:8265", tracking=MLFLOW_SERVER, mlflow_uri="http://mlflow:5000"
    )
    assert make_panel().target() == saved


def test_the_runs_follow_a_tracking_choice_once_its_address_is_finished(qtbot, make_panel):
    panel = make_panel()
    chosen = []
    panel.tracking_chosen.connect(chosen.append)
    panel.mlflow_radio.setChecked(True)  # no address yet: nothing to follow
    qtbot.keyClicks(panel.mlflow_uri, "http://mlflow:5000")
    assert chosen == [] and panel.tracking_uri("sqlite:////ws/mlflow.db") == "sqlite:////ws/mlflow.db"
    qtbot.keyClick(panel.mlflow_uri, Qt.Key_Return)
    assert chosen == ["http://mlflow:5000"] and panel.tracking_uri("sqlite:////ws/mlflow.db") == "http://mlflow:5000"
    assert make_panel().tracking_uri("sqlite:////ws/mlflow.db") == "http://mlflow:5000"  # saved: so on reopening
    panel.workspace_radio.setChecked(True)
    assert chosen[-1] == "" and panel.tracking_uri("sqlite:////ws/mlflow.db") == "sqlite:////ws/mlflow.db"


def test_only_the_chosen_place_shows_its_fields(make_panel):
    panel = make_panel()
    panel.show()
    assert panel.local_fields.isVisible() and not panel.remote_fields.isVisible()
    panel.local_ray_radio.setChecked(True)
    assert panel.ray_fields.isVisible() and not panel.local_fields.isVisible() and not panel.remote_fields.isVisible()
    panel.remote_radio.setChecked(True)
    assert panel.remote_fields.isVisible() and not panel.ray_fields.isVisible()


def test_a_bad_address_is_marked_at_its_field_and_the_panel_is_invalid(qtbot, make_panel):
    panel = make_panel()
    validity = []
    panel.valid_changed.connect(validity.append)
    panel.remote_radio.setChecked(True)
    _type(qtbot, panel.dashboard, "ray://head:10001")
    assert validity[-1] is False and not panel.is_valid
    assert "ray:// address is Ray's client port" in panel.errors["dashboard"].text()
    assert not panel.errors["dashboard"].isHidden()
    with pytest.raises(TargetError, match="Dashboard address"):
        panel.apply(_config(), "sqlite:////ws/mlflow.db")
    _type(qtbot, panel.dashboard, "http://head:8265")
    assert validity[-1] is True and panel.errors["dashboard"].isHidden()


def test_gpus_are_offered_as_this_computer_has_them(make_panel):
    panel = make_panel(gpus=())
    assert panel.gpus_line.text() == "No GPU found: runs here train on the CPU."
    panel.accelerator.setCurrentIndex(panel.accelerator.findData("gpu"))
    assert panel.errors["accelerator"].text() == "no GPU found on this computer; choose CPU or Auto"
    assert not panel.is_valid
    panel = make_panel(gpus=("NVIDIA H100", "NVIDIA H100"))
    assert panel.gpus_line.text() == "2 GPUs found: NVIDIA H100, NVIDIA H100"
    panel.accelerator.setCurrentIndex(panel.accelerator.findData("gpu"))
    panel.devices.setValue(2)
    assert panel.is_valid and panel.devices.maximum() == 2
    config, _ = panel.apply(_config(), "sqlite:////ws/mlflow.db")
    assert (config.compute.accelerator, config.compute.devices) == ("gpu", 2)


def test_apply_gives_the_config_to_launch_and_the_uri_to_chart_from(make_panel):
    panel = make_panel()
    panel.set_target(Target(where=LOCAL_RAY, ray_workers=3))
    config, uri = panel.apply(_config(), "sqlite:////ws/mlflow.db")
    assert (config.compute.strategy, config.compute.num_workers, uri) == ("ray", 3, "sqlite:////ws/mlflow.db")


def test_test_connection_on_a_closed_port_says_so_in_red(qtbot, make_panel):
    port = _closed_port()
    panel = make_panel()
    panel.set_target(Target(where=REMOTE_RAY, dashboard=f"127.0.0.1:{port}"))
    panel.set_dataset_path("/data/coco")
    qtbot.mouseClick(panel.test_ray_button, Qt.LeftButton)
    assert panel.ray_result.text().startswith("Testing 127.0.0.1")  # at once; the answer comes later
    wait_until(qtbot, lambda: panel.ray_result.text().startswith("✗"), 15, "the check's answer")
    assert f"cannot reach the Ray dashboard at http://127.0.0.1:{port}: connection refused" in panel.ray_result.text()
    assert "#b00020" in panel.ray_result.styleSheet()


class _WritableMlflow(http.server.BaseHTTPRequestHandler):
    """Enough of an MLflow server for the check: health, version, create and delete an experiment."""

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's name)
        self._answer(b"3.0.0" if self.path == "/version" else b"OK")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(json.dumps({"experiment_id": "7"}).encode())

    def log_message(self, *args):
        pass


def test_test_connection_on_a_writable_server_says_what_it_found_in_green(qtbot, make_panel):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WritableMlflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        panel = make_panel()
        panel.set_target(Target(tracking=MLFLOW_SERVER, mlflow_uri=f"http://127.0.0.1:{server.server_address[1]}"))
        qtbot.mouseClick(panel.test_mlflow_button, Qt.LeftButton)
        wait_until(qtbot, lambda: panel.mlflow_result.text().startswith("✓"), 15, "the check's answer")
        assert "MLflow 3.0.0 · reachable · writable" in panel.mlflow_result.text()
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_about_an_address_since_changed_is_never_shown(qtbot, make_panel, monkeypatch):
    monkeypatch.setattr(target_panel, "CHECK_TIMEOUT_S", 2.0)
    listener = socket.socket()  # takes the connection, never answers
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    try:
        panel = make_panel()
        panel.set_target(Target(where=REMOTE_RAY, dashboard=f"127.0.0.1:{listener.getsockname()[1]}"))
        panel.test_ray()
        (task,) = panel._ray_slot.running
        panel.dashboard.setText("http://elsewhere:8265")
        assert panel.ray_result.isHidden() and panel.ray_result.text() == ""
        wait_until(qtbot, lambda: not panel._ray_slot.running, 10, "the old check to end")
        qtbot.wait(50)
        assert panel.ray_result.text() == ""
    finally:
        listener.close()
