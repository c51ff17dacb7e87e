"""`lightbox gui DIR --config run.yaml`: the dataset opens with the config in the Train tab's forms;
a config that cannot be loaded leaves the app open and says which file and key are wrong."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from app.main_window import MainWindow  # noqa: E402
from tests.conftest import wait_until  # noqa: E402

SEARCH = """
task: {name: detection}
data: {path: /nowhere/else}
optim: {epochs: 7, batch_size: 4}
search:
  space:
    optim.lr: {type: loguniform, low: 1.0e-5, high: 1.0e-2}
  num_samples: 3
"""


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(tmp_path / "ws")
    qtbot.addWidget(win)
    win.show()
    return win


def _opened_with(qtbot, window, folder, config):
    window.open_folder(folder)
    window.load_run_config(config)  # as `run` does: before the dataset has finished opening
    wait_until(qtbot, lambda: window.session is not None and not window.is_busy(), 30, "the dataset to open")
    wait_until(qtbot, lambda: window.train_tab is not None, 30, "the Train tab")


def test_the_config_fills_the_forms_for_the_dataset_on_the_command_line(qtbot, window, sample_dataset, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(SEARCH)
    _opened_with(qtbot, window, sample_dataset, config)
    tab = window.train_tab
    assert window.tabs.currentWidget() is window.train_host
    values = tab.form.model.values
    assert values["task.name"] == "detection" and values["optim.epochs"] == 7 and values["optim.batch_size"] == 4
    assert values["data.path"] == str(sample_dataset)  # DIR is the dataset, whatever the file names
    assert "optim.lr" in tab.search_form.model.space  # the search section fills the search form
    assert tab.banner.isHidden(), tab.banner.text()


@pytest.mark.parametrize(
    ("content", "named"),
    [("optim: {epochz: 3}\n", "optim.epochz"), ("optim: {epochs: [\n", "run.yaml:"), (None, "run.yaml")],
)
def test_a_bad_config_opens_the_app_and_names_the_file_and_key(qtbot, window, sample_dataset, tmp_path, content, named):
    config = tmp_path / "run.yaml"
    if content is not None:
        config.write_text(content)
    _opened_with(qtbot, window, sample_dataset, config)
    tab = window.train_tab
    assert not tab.banner.isHidden()
    assert str(config) in tab.banner.text() and named in tab.banner.text()
    assert window.session.root == sample_dataset  # the dataset is open all the same
    assert tab.form.model.values["data.path"] == str(sample_dataset)


def test_the_command_line_passes_the_config_and_finds_its_dataset(monkeypatch, sample_dataset, tmp_path):
    import app.main
    from app.cli import main

    seen = {}
    monkeypatch.setattr(app.main, "run", lambda folder, workspace, **options: seen.update(options, folder=folder) or 0)
    config = tmp_path / "run.yaml"
    config.write_text(f"task: {{name: classification}}\ndata: {{path: {sample_dataset}}}\n")
    assert main(["gui", str(sample_dataset), "--config", str(config), "--workspace", str(tmp_path / "ws")]) == 0
    assert seen == {"folder": str(sample_dataset), "config": str(config), "reopen_last": False}
    assert app.main.dataset_of_config(config) == sample_dataset  # `gui --config` alone opens the config's dataset
    config.write_text("optim: {epochz: 3}\n")
    assert app.main.dataset_of_config(config) is None  # the window shows why
