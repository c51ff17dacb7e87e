"""A search on the charts: every trial overlaid, the best highlighted and the others thin, the
highlight moving when another trial leads; the scatter shows the selected search."""

import pytest

pytest.importorskip("pytestqt")

from app.training.runs_model import RunRow, describe_trials  # noqa: E402
from engine.tracking.tags import PARENT_RUN_TAG, SEARCH_TAG  # noqa: E402


def _row(run_id, loss=None, parent=None, search=False, status="RUNNING"):
    tags = {SEARCH_TAG: "true"} if search else {PARENT_RUN_TAG: parent}
    params = {"search.metric": "val/loss", "search.mode": "min", "space.optim.lr": '{"type": "loguniform"}'}
    if not search:
        params = {"optim.lr": "0.001" if run_id.endswith("1") else "0.01"}
    metrics = {} if loss is None else {"val/loss": loss}
    return RunRow(run_id, run_id, status, "", "", "", 1, 1.0, None, metrics, tags, params)


class Poller:
    def __init__(self):
        self.watched = {}

    def watch(self, run_id, tracking_uri=None, live=False):
        self.watched[run_id] = live

    def unwatch(self, run_id):
        self.watched.pop(run_id, None)


@pytest.fixture
def view(qtbot):
    from app.training.charts import ChartPanel
    from app.training.search_scatter import SearchScatter
    from app.training.search_view import SearchView

    charts, scatter = ChartPanel(), SearchScatter()
    qtbot.addWidget(charts)
    qtbot.addWidget(scatter)
    ticked = set()
    return SearchView(charts, Poller(), scatter, ticked.__contains__), ticked


def _points(loss):
    return {"train/loss": [(1, loss, 1000), (2, loss, 2000)], "val/loss": [(2, loss, 2000)], "epoch": [(2, 0, 2000)]}


def test_a_followed_search_charts_every_trial_the_best_thick_and_the_others_thin(view):
    search_view, _ticked = view
    charts = search_view.charts
    rows = [_row("S", search=True), _row("t1", 0.9, "S"), _row("t2", 0.5, "S")]
    describe_trials(rows)
    search_view.follow("S")
    search_view.show_rows(rows)
    assert set(charts.runs) == {"t1", "t2"} and search_view.poller.watched == {"t1": True, "t2": True}
    for run_id, loss in (("t1", 0.9), ("t2", 0.5)):
        charts.add_points(run_id, _points(loss))
    charts._flush("val")
    width = {r: charts.curves[(r, "loss", "train/loss")].opts["pen"].width() for r in ("t1", "t2")}
    alpha = {r: charts.curves[(r, "val", "val/loss")].opts["pen"].color().alpha() for r in ("t1", "t2")}
    assert width == {"t1": 1, "t2": 2} and alpha["t1"] < alpha["t2"] == 255
    assert charts.roles == {"t1": "trial", "t2": "best"}
    rows[1].metrics["val/loss"] = 0.1  # t1 now leads: the highlight moves
    search_view.show_rows(rows)
    assert charts.roles == {"t1": "best", "t2": "trial"}
    assert charts.curves[("t1", "loss", "train/loss")].opts["pen"].width() == 2
    assert search_view.holds("t2") and not search_view.holds("S")


def test_the_selected_search_is_on_the_scatter_and_its_trials_leave_when_it_is_not(view):
    search_view, ticked = view
    rows = [_row("S", search=True, status="FINISHED"), _row("t1", 0.9, "S", status="FINISHED")]
    rows += [_row("t2", 0.5, "S", status="FINISHED")]
    search_view.show_rows(rows)
    assert search_view.charts.runs == {} and search_view.scatter.points is None
    search_view.select(rows[1])  # a trial selected: its search is shown
    assert set(search_view.charts.runs) == {"t1", "t2"} and search_view.poller.watched == {"t1": False, "t2": False}
    points = search_view.scatter.points
    assert points.search_id == "S" and points.params[0].best == 1
    assert search_view.scatter.plots == {}  # plots are made when the view is shown, not while it is hidden
    search_view.scatter.show()
    assert list(search_view.scatter.plots) == ["optim.lr"]
    assert "★" in search_view.scatter.title.text()
    ticked.add("t2")  # charted by hand in the runs table: it stays
    search_view.select(None)
    assert set(search_view.charts.runs) == {"t2"} and search_view.charts.roles == {}
    assert search_view.scatter.points is None


def test_a_search_still_running_when_the_app_opens_is_charted_with_its_trials(view):
    search_view, _ticked = view
    rows = [_row("S", search=True), _row("t1", 0.9, "S"), _row("t2", 0.5, "S")]  # left running earlier
    search_view.show_rows(rows)
    assert set(search_view.charts.runs) == {"t1", "t2"} and search_view.charts.roles["t2"] == "best"
    assert search_view.scatter.points.search_id == "S"
