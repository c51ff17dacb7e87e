"""Tune from the Train tab: the search form at the run form's side, Tune beside Train, one launcher,
and Load… / Save… of a config with a ``search:`` section."""

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from engine.config import RunConfig  # noqa: E402


@pytest.fixture
def tab(qtbot, tmp_path, sample_dataset, started):
    from app.training.train_tab import TrainTab

    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    tab.set_dataset(sample_dataset)
    tab.form.set_value("model.checkpoint", "resnet-tiny")
    return tab


def _type(qtbot, editor, text):
    editor.selectAll()
    editor.del_()
    qtbot.keyClicks(editor, text)


def test_tune_stays_disabled_until_the_search_is_valid_and_says_why_at_the_field(qtbot, tab):
    search = tab.search_form
    assert tab.train_button.isEnabled() and not tab.tune_button.isEnabled()
    assert "search at least one setting" in search.errors["space"].text() and not search.errors["space"].isHidden()
    search.add_choice.setCurrentIndex(search.add_choice.findData("optim.lr"))
    qtbot.mouseClick(search.add_button, Qt.LeftButton)
    assert tab.tune_button.isEnabled() and search.errors["space"].isHidden()
    row = search.rows["optim.lr"]
    _type(qtbot, row.editors["low"], "-1")
    assert not tab.tune_button.isEnabled()
    assert row.errors["low"].text() == "must be greater than 0 for loguniform (got -1.0)"
    assert not row.errors["low"].isHidden()
    _type(qtbot, row.editors["low"], "0.0001")
    _type(qtbot, search.editors["num_samples"], "0")
    assert not tab.tune_button.isEnabled() and "greater than or equal to 1" in search.errors["num_samples"].text()
    _type(qtbot, search.editors["num_samples"], "2")
    assert tab.tune_button.isEnabled()
    tab.form.set_value("optim.lr", -1)  # a wrong run form stops Tune as it stops Train
    assert not tab.tune_button.isEnabled() and not tab.train_button.isEnabled()


def test_an_integer_setting_refuses_a_float_distribution_at_its_distribution(qtbot, tab):
    search = tab.search_form
    search.add_entry("optim.batch_size")
    row = search.rows["optim.batch_size"]
    assert row.kind.currentData() == "randint"
    row.kind.setCurrentIndex(row.kind.findData("loguniform"))
    assert row.errors["type"].text() == "integer setting: use randint, quniform or choice"
    assert not tab.tune_button.isEnabled()
    row.kind.setCurrentIndex(row.kind.findData("choice"))
    _type(qtbot, search.rows["optim.batch_size"].editors["values"], "8, 16")
    assert tab.tune_button.isEnabled()
    assert search.model.section()["space"]["optim.batch_size"] == {"type": "choice", "values": [8, 16]}


def test_the_metric_is_preset_from_the_task(qtbot, tab):
    search = tab.search_form
    assert (search.model.values["metric"], search.model.values["mode"]) == ("val/accuracy", "max")
    tab.form.set_value("task.name", "detection")
    assert search.editors["metric"].currentText() == "val/map"
    search.editors["metric"].setCurrentIndex(search.editors["metric"].findText("val/loss"))
    assert search.model.values["mode"] == "min" and search.editors["mode"].currentData() == "min"


def test_tune_writes_the_search_config_and_starts_engine_tune_through_the_same_launcher(qtbot, tab, started):
    tab.search_form.add_entry("optim.lr")
    tab.search_form.set_value("num_samples", 3)
    qtbot.mouseClick(tab.tune_button, Qt.LeftButton)
    assert len(started) == 1, tab.banner.text()
    path = started[0]
    assert path.parent == tab.workspace / "configs" and path.name.startswith("search-")
    config = RunConfig.load(path)
    assert config.search.num_samples == 3 and config.search.space["optim.lr"].type == "loguniform"
    assert config.tracking.run_name.startswith("search-resnet-tiny-")
    job = tab.jobs[-1]
    assert job.verb == "tune" and job.command[job.command.index("engine") + 1] == "tune"
    assert job.grace_s > 30  # a search closes its trials' runs after the stop tag
    qtbot.mouseClick(tab.train_button, Qt.LeftButton)  # Train still trains one run, without the search
    assert RunConfig.load(started[1]).search is None and tab.jobs[-1].verb == "train"


def test_load_fills_both_forms_and_save_writes_both(qtbot, tab, tmp_path, sample_dataset):
    source = tmp_path / "search.yaml"
    source.write_text(f"""
task: classification
data: {{path: {sample_dataset}, image_size: 48}}
model: {{checkpoint: resnet-tiny}}
optim: {{epochs: 2}}
search:
  num_samples: 5
  metric: val/loss
  mode: min
  scheduler: fifo
  space:
    optim.lr: {{type: loguniform, low: 1.0e-4, high: 1.0e-2}}
    optim.batch_size: {{type: choice, values: [8, 16]}}
""")
    tab.load_config(source)
    assert tab.form.model.values["data.image_size"] == 48 and "search" not in tab.form.model.extra
    search = tab.search_form
    assert list(search.rows) == ["optim.lr", "optim.batch_size"]
    assert search.rows["optim.batch_size"].editors["values"].text() == "8, 16"
    assert search.editors["scheduler"].currentData() == "fifo" and search.editors["num_samples"].text() == "5"
    assert tab.tune_button.isEnabled()
    saved = RunConfig.load(tab.save_config(tmp_path / "again.yaml"))
    assert saved.search == RunConfig.load(source).search and saved.data.image_size == 48

    plain = tmp_path / "run.yaml"
    plain.write_text(f"task: classification\ndata: {{path: {sample_dataset}}}\n")
    tab.load_config(plain)  # a run config empties the search form
    assert search.rows == {} and not tab.tune_button.isEnabled()
    assert RunConfig.load(tab.save_config(tmp_path / "plain.yaml")).search is None
