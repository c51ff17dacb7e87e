"""#16 items 13 and 14: the runs table says it is loading until the first list arrives; a search's
trials are listed under it, only its best trial is ticked (charted), and a trial ASHA stopped
early says so instead of FINISHED."""

import time

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("mlflow")


def _wait(qtbot, predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        qtbot.wait(50)


@pytest.fixture
def table(qtbot):
    from app.training.runs_view import RunsTable

    table = RunsTable()
    qtbot.addWidget(table)
    table.resize(900, 300)
    table.show()
    return table


def test_the_table_says_it_is_loading_until_the_runs_arrive(table, tmp_path):
    from app.training.runs_model import load_runs
    from app.training.runs_view import EMPTY, LOADING
    from engine.tracking.logger import RunLogger

    assert table.loading and table.pages.currentWidget() is not table.tree
    assert table.notice.text() == LOADING and table.busy.isVisible()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    table.set_rows(load_runs(uri))  # an empty store: the table says there is nothing, not "loading"
    assert not table.loading and table.notice.text() == EMPTY and not table.busy.isVisible()
    RunLogger(uri, workspace=tmp_path, run_name="first").finish("FINISHED")
    table.set_rows(load_runs(uri))
    assert table.pages.currentWidget() is table.tree and table.tree.topLevelItemCount() == 1


def test_a_failed_first_read_says_why_and_the_next_one_shows_the_runs(table, tmp_path):
    from app.training.runs_model import load_runs
    from engine.tracking.logger import RunLogger

    table.set_load_failed("database is locked")
    assert not table.loading and "database is locked" in table.notice.text()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    RunLogger(uri, workspace=tmp_path, run_name="first").finish("FINISHED")
    table.set_rows(load_runs(uri))
    assert table.pages.currentWidget() is table.tree


def test_the_train_tab_shows_loading_then_its_runs(qtbot, tmp_path):
    from app.training.train_tab import TrainTab
    from engine.tracking.logger import RunLogger

    workspace = tmp_path / "ws"
    run = RunLogger(f"sqlite:///{workspace / 'mlflow.db'}", workspace=workspace, run_name="old")
    run.finish("FINISHED")
    tab = TrainTab(workspace)
    qtbot.addWidget(tab)
    assert tab.runs.loading  # at once, before the list is read in the background
    _wait(qtbot, lambda: tab.runs.row_for(run.run_id) is not None, 30, "the run in the table")
    assert not tab.runs.loading and tab.runs.pages.currentWidget() is tab.runs.tree


# ---------------------------------------------------------------------- a search and its trials
@pytest.fixture
def search_store(tmp_path):
    """A search of three trials as engine.orchestration.tune records them: the search's own run
    (lightbox.search, search.metric/mode params), trials tagged mlflow.parentRunId."""
    from engine.tracking.logger import RunLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    plain = RunLogger(uri, workspace=tmp_path, run_name="plain")
    plain.finish("FINISHED")
    search = RunLogger(
        uri, workspace=tmp_path, run_name="search", tags={"lightbox.search": "true", "lightbox.task": "classification"}
    )
    search.log_params({"search.metric": "val/loss", "search.mode": "min"})
    trials = {}
    for name, loss in (("trial-a", 0.9), ("trial-b", 0.4), ("trial-c", 0.7)):
        trial = RunLogger(
            uri,
            workspace=tmp_path,
            run_name=name,
            tags={"mlflow.parentRunId": search.run_id, "lightbox.trial_id": name},
        )
        trial.log_metrics({"train/loss": loss * 2, "val/loss": loss}, 3)
        trial.flush()
        trials[name] = trial
    return uri, plain, search, trials


def test_trials_are_listed_under_their_search_and_only_the_best_is_ticked(table, search_store):
    from app.training.runs_model import load_runs

    uri, plain, search, trials = search_store
    toggled = []
    table.chart_toggled.connect(lambda run_id, label, ticked: toggled.append((label, ticked)))
    table.set_rows(load_runs(uri))
    assert table.tree.topLevelItemCount() == 2  # the plain run and the search, not five flat rows
    group = table.item_for(search.run_id)
    assert group.parent() is None and group.childCount() == 3 and group.isExpanded()
    assert {group.child(i).text(0) for i in range(3)} == {"trial-a", "trial-b", "trial-c"}
    assert not group.flags() & Qt.ItemIsUserCheckable  # the search logs no curves of its own
    assert "3 trials" in group.text(4) and "trial-b" in group.text(4)
    assert toggled == [("trial-b", True)] and table.ticked == {trials["trial-b"].run_id}
    assert table.item_for(trials["trial-b"].run_id).checkState(0) == Qt.Checked

    # A better trial takes the lead: the tick moves to it.
    trials["trial-c"].log_metrics({"val/loss": 0.1}, 4)
    trials["trial-c"].flush()
    toggled.clear()
    table.set_rows(load_runs(uri))
    assert toggled == [("trial-b", False), ("trial-c", True)] and table.ticked == {trials["trial-c"].run_id}

    # Once the user ticks a trial by hand, the table leaves that search's ticks alone.
    table.item_for(trials["trial-a"].run_id).setCheckState(0, Qt.Checked)
    trials["trial-b"].log_metrics({"val/loss": 0.01}, 5)
    trials["trial-b"].flush()
    toggled.clear()
    table.set_rows(load_runs(uri))
    assert toggled == [] and table.ticked == {trials["trial-a"].run_id, trials["trial-c"].run_id}


def test_a_search_that_had_ended_ticks_nothing_when_the_app_opens(table, search_store):
    from app.training.runs_model import load_runs

    uri, plain, search, trials = search_store
    for trial in trials.values():
        trial.finish("FINISHED")
    search.set_tag("lightbox.best_run_id", trials["trial-b"].run_id)
    search.finish("FINISHED")
    toggled = []
    table.chart_toggled.connect(lambda *args: toggled.append(args))
    table.set_rows(load_runs(uri))
    assert toggled == [] and not table.ticked
    assert "best trial-b" in table.item_for(search.run_id).text(4)


def test_a_trial_asha_stopped_early_says_so(table, search_store):
    from app.training.runs_model import load_runs

    uri, plain, search, trials = search_store
    early = trials["trial-a"]
    early.set_tag("lightbox.early_stopped", "true")  # as the search records it
    early.finish("FINISHED")
    table.set_rows(load_runs(uri))
    item = table.item_for(early.run_id)
    assert item.text(1) == "EARLY STOPPED" and "stopped this trial early" in item.toolTip(1)
    assert table.item_for(trials["trial-b"].run_id).text(1) == "RUNNING"
    table.select_run(early.run_id)
    assert not table.buttons["Resume"].isEnabled()  # nothing to resume: the search ended it on purpose
    table.status_filter.setCurrentIndex(table.status_filter.findData("EARLY STOPPED"))
    shown = {table.item_for(r.run_id).text(0) for r in table.shown}
    assert shown == {"search", "trial-a"}  # the search stays, as the trial's heading
