"""The Train tab's side of the panel (RunsAtTarget): launching at the target, reading runs where they are tracked."""

import types

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.training.target_model import LOCAL_RAY, MLFLOW_SERVER, REMOTE_RAY, Target
from app.training.target_panel import RunsAtTarget
from app.widgets.banner import Banner
from engine.config import RunConfig

WORKSPACE_URI = "sqlite:////ws/mlflow.db"


class _Form(QObject):
    changed = Signal()

    def __init__(self):
        super().__init__()
        self.model = types.SimpleNamespace(values={"data.path": "/data/first"})


class _Tab(RunsAtTarget, QWidget):
    """What of the Train tab the panel's side uses, and nothing else."""

    def __init__(self, workspace):
        super().__init__()
        self.workspace = workspace
        self._add_target_panel(WORKSPACE_URI)
        self.form = _Form()
        self.banner = Banner()
        self.poller = types.SimpleNamespace(tracking_uri=self.tracking_uri)
        self.refreshed = 0
        self._follow_target()

    def show_error(self, text, cause=None):
        self.banner.show_message(text, "error", cause)

    def refresh_runs(self):
        self.refreshed += 1


@pytest.fixture
def tab(qtbot, tmp_path):
    tab = _Tab(tmp_path / "ws")
    qtbot.addWidget(tab)
    return tab


def _config(**sections):
    return RunConfig.from_dict({"task": {"name": "classification"}, "data": {"path": "/data/coco"}, **sections})


def test_the_runs_are_read_where_the_target_tracks_them(qtbot, tmp_path, tab):
    assert tab.tracking_uri == tab.poller.tracking_uri == WORKSPACE_URI
    tab.target_panel.set_target(Target(tracking=MLFLOW_SERVER, mlflow_uri="http://mlflow:5000"))
    assert tab.tracking_uri == tab.poller.tracking_uri == "http://mlflow:5000" and tab.refreshed == 1
    reopened = _Tab(tmp_path / "ws")  # the saved choice: the tab starts reading there
    qtbot.addWidget(reopened)
    assert reopened.tracking_uri == "http://mlflow:5000"
    tab.target_panel.set_target(Target())
    assert tab.tracking_uri == tab.poller.tracking_uri == WORKSPACE_URI and tab.refreshed == 2


def test_a_launch_gets_the_target_s_config_or_a_banner_naming_the_field(tab):
    tab.target_panel.set_target(
        Target(where=LOCAL_RAY, ray_workers=2, tracking=MLFLOW_SERVER, mlflow_uri="http://m:5000")
    )
    config, uri = tab._at_target(_config())
    assert (config.compute.strategy, config.compute.num_workers, uri) == ("ray", 2, "http://m:5000")
    tab.target_panel.set_target(Target(where=REMOTE_RAY))
    assert tab._at_target(_config()) is None
    assert tab.banner.text().startswith("Where to run: Dashboard address: give the cluster's dashboard address")
    tab.target_panel.set_target(Target(where=REMOTE_RAY, dashboard="head:8265"))
    config, uri = tab._at_target(_config())
    assert config.compute.ray_address == "http://head:8265" and uri == WORKSPACE_URI
    assert tab.banner.isHidden()


def test_the_cluster_test_checks_the_form_s_dataset(tab):
    assert tab.target_panel._dataset_path == "/data/first"
    tab.form.model.values["data.path"] = "/data/second"
    tab.form.changed.emit()
    assert tab.target_panel._dataset_path == "/data/second"


def test_a_loaded_config_moves_the_panel_where_it_says(tab):
    tab._target_from_loaded(_config(compute={"ray_address": "http://head:8265"}, tracking={"uri": "http://m:5000"}))
    assert tab.target_panel.target() == Target(
        where=REMOTE_RAY, dashboard="http://head:8265", tracking=MLFLOW_SERVER, mlflow_uri="http://m:5000"
    )
    assert tab.tracking_uri == "http://m:5000"
