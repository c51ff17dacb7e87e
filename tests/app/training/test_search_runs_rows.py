"""A search's rows in the runs table: each trial's status as the search sees it, its metric and
searched values, and the best one marked, kept up to date as trials report."""

from app.training.runs_model import BEST_MARK, EARLY_STOPPED, RunRow, describe_trials
from app.training.search_scatter_data import search_points
from engine.tracking.tags import EARLY_STOPPED_TAG, ERROR_TAG, PARENT_RUN_TAG, SEARCH_TAG

SPACE = {
    "space.optim.lr": '{"type": "loguniform", "low": 0.0001, "high": 0.1}',
    "space.optim.scheduler": '{"type": "choice", "values": ["cosine", "step"]}',
}


def _search(status="RUNNING", **tags):
    params = {"search.metric": "val/loss", "search.mode": "min", **SPACE}
    tags = {SEARCH_TAG: "true", **tags}
    return RunRow("S", "search", status, "classification", "", "", 1, 1.0, None, {}, tags, params)


def _trial(run_id, status, loss=None, epoch=None, lr="0.001", scheduler="cosine", **tags):
    metrics = {} if loss is None else {"val/loss": loss}
    if epoch is not None:
        metrics["epoch"] = epoch
    params = {"optim.lr": lr, "optim.scheduler": scheduler, "optim.epochs": "3"}
    tags = {PARENT_RUN_TAG: "S", **tags}
    return RunRow(run_id, f"t-{run_id}", status, "", "", "", 2, 1.0, None, metrics, tags, params)


def test_trials_show_their_metric_searched_values_and_the_best_is_marked():
    rows = [_search(), _trial("a", "RUNNING", 0.9, 0, lr="0.0123456"), _trial("b", "FINISHED", 0.5, 2, "0.02", "step")]
    describe_trials(rows)
    a, b = rows[1], rows[2]
    assert a.best == "val/loss 0.9 · lr=0.0123, scheduler=cosine"
    assert b.best == f"{BEST_MARK} val/loss 0.5 · lr=0.02, scheduler=step"
    rows[1].metrics["val/loss"] = 0.1  # the next refresh: a better trial takes the mark
    describe_trials(rows)
    assert rows[1].best.startswith(BEST_MARK) and not rows[2].best.startswith(BEST_MARK)


def test_a_trial_the_running_search_ended_reads_finished_or_early_stopped_not_failed():
    """Tune ends a trial by raising inside it: its run says FAILED (without a reason) until the search ends."""
    rows = [
        _search(),
        _trial("done", "FAILED", 0.5, epoch=2),  # all 3 epochs
        _trial("cut", "FAILED", 0.9, epoch=0),  # ASHA stopped it after 1 of 3
        _trial("broken", "FAILED", 0.9, epoch=0, **{ERROR_TAG: "CUDA out of memory"}),
        _trial("never", "FAILED"),  # no epoch finished: as its run says
    ]
    describe_trials(rows)
    assert [r.shown_status for r in rows[1:]] == ["FINISHED", EARLY_STOPPED, "FAILED", "FAILED"]
    ended = [_search("FINISHED"), _trial("late", "FAILED", 0.5, epoch=0)]  # an ended search recorded its trials
    describe_trials(ended)
    assert ended[1].shown_status == "FAILED"
    tagged = [_search("FINISHED"), _trial("x", "FINISHED", 0.5, epoch=0, **{EARLY_STOPPED_TAG: "true"})]
    describe_trials(tagged)
    assert tagged[1].shown_status == EARLY_STOPPED


def test_the_scatter_has_a_plot_per_searched_setting_with_the_best_starred():
    search = _search()
    trials = [_trial("a", "FINISHED", 0.7, 2, "0.001", "step"), _trial("b", "FINISHED", 0.4, 2, "0.01", "cosine")]
    trials.append(_trial("c", "RUNNING"))  # no metric yet: not plotted
    points = search_points(search, trials, "b")
    assert (points.metric, points.mode, points.trials) == ("val/loss", "min", 3)
    lr, scheduler = points.params
    assert lr.path == "optim.lr" and lr.log and lr.x == [0.001, 0.01] and lr.y == [0.7, 0.4] and lr.best == 1
    assert scheduler.labels == ["cosine", "step"] and scheduler.x == [1.0, 0.0] and not scheduler.log
    assert scheduler.names == ["t-a", "t-b"]
