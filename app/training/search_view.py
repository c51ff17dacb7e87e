"""A search on the Train tab's charts and scatter: every trial overlaid, the best one highlighted.

Two kinds of search are shown this way: the ones going (started here, or left running by an
earlier session: followed from their parent run) and the one selected in the runs table. Each refresh of the runs list
(:meth:`SearchView.show_rows`, rows already read in the background) adds the trials that have
started to the charts and the poller, restyles them (the best thick, the others thin and
faint: ``chart_data.curve_style``) and redraws the scatter. A trial leaves the charts when
its search is no longer shown, unless the runs table has it ticked.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from .charts import ChartPanel, MetricPoller
from .runs_model import RunRow, best_trial, trials_of
from .search_scatter import SearchScatter
from .search_scatter_data import search_points


class SearchView(QObject):
    def __init__(
        self,
        charts: ChartPanel,
        poller: MetricPoller,
        scatter: SearchScatter,
        ticked: Callable[[str], bool],
        parent=None,
    ):
        super().__init__(parent)
        self.charts, self.poller, self.scatter = charts, poller, scatter
        self.ticked = ticked  # whether the runs table has a run ticked (charted by hand)
        self.followed: list[str] = []  # searches this tab started, newest last
        self.selected: str | None = None  # the search selected in the runs table
        self.trials: dict[str, set[str]] = {}  # shown search -> its trials on the charts
        self.best: dict[str, str] = {}  # shown search -> its best trial
        self._rows: list[RunRow] = []

    def follow(self, search_id: str) -> None:
        """A search this tab started: its trials are charted as they start."""
        if search_id not in self.followed:
            self.followed.append(search_id)
        self.show_rows(self._rows)

    def select(self, row: RunRow | None) -> None:
        """The runs table's selection: a search, or a trial of one, shows that search."""
        search_id = None if row is None else (row.run_id if row.is_search else row.search_id)
        if search_id != self.selected:
            self.selected = search_id
            self.show_rows(self._rows)

    def holds(self, run_id: str) -> bool:
        """Whether ``run_id`` is charted as a trial of a search shown here."""
        return any(run_id in trials for trials in self.trials.values())

    def shown(self) -> list[str]:
        return [s for s in [*self.followed, self.selected] if s]

    def show_rows(self, rows: list[RunRow]) -> None:
        """The runs list was read again: chart new trials, move the highlight, redraw the scatter."""
        self._rows = rows
        for row in rows:  # a search going (one left running by an earlier session too) is followed
            if row.is_search and row.status == "RUNNING" and row.run_id not in self.followed:
                self.followed.append(row.run_id)
        by_id = {r.run_id: r for r in rows}
        groups = trials_of(rows)
        wanted = [s for s in dict.fromkeys(self.shown()) if s in groups]
        for search_id in [s for s in self.trials if s not in wanted]:
            for run_id in self.trials.pop(search_id):
                if not self.ticked(run_id) and not self.holds(run_id):
                    self.poller.unwatch(run_id)
                    self.charts.remove_run(run_id)
            self.best.pop(search_id, None)
        roles: dict[str, str] = {}
        for search_id in wanted:
            trials = groups[search_id]
            charted = self.trials.setdefault(search_id, set())
            for trial in trials:
                if trial.run_id not in charted:
                    charted.add(trial.run_id)
                    self.charts.add_run(trial.run_id, trial.name)
                    self.poller.watch(trial.run_id, live=trial.can_stop)
            best = best_trial(by_id[search_id], trials)
            for trial in trials:
                roles[trial.run_id] = "best" if trial is best else "trial"
            if best is not None:
                self.best[search_id] = best.run_id
        self.charts.set_roles(roles)
        self._show_scatter(by_id, groups)

    def _show_scatter(self, by_id: dict[str, RunRow], groups: dict[str, list[RunRow]]) -> None:
        current = self.selected or (self.followed[-1] if self.followed else None)
        if current is None or current not in by_id:
            self.scatter.show_points(None)
            return
        search = by_id[current]
        trials = groups.get(current, [])
        self.scatter.show_points(search_points(search, trials, self.best.get(current)), search.name)
