"""Benchmark: clicking Tune, the first trial's first point on the chart, and the window's stalls.

The Train tab on a fresh workspace trains on the sample data (``engine.data.sample``): the run
form set to resnet-tiny at 32 px for ``--epochs`` epochs, the search form searching the
learning rate (loguniform) for ``--trials`` trials, one at a time. Then Tune is clicked, as a
user clicks it. Reported:

* from the click to the first point of the first trial on the chart (the search starts Ray,
  opens its parent run, starts a trial actor that imports torch and trains: most of it is the
  engine's start, not the app);
* the longest event-loop stall while the search runs and is charted: a QTimer ticks every
  ``--tick-ms``; every gap between two ticks longer than the tick is the loop blocked that
  long (target: at most 50 ms, as for Train);
* what the tab showed at the end: trials charted, the best one highlighted, and the search's
  status.

Ray writes an auth token into ``~/.ray`` for a local cluster: the search runs with ``HOME`` set
to a folder of the benchmark's own, never the user's.

usage: QT_QPA_PLATFORM=offscreen python bench/tune_chart.py [--trials 4] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STALL_TARGET_MS = 50.0


def measure(folder: Path, trials: int, epochs: int, tick_ms: int, timeout_s: float) -> dict:
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.data.sample import write_sample_dataset

    app = QApplication.instance() or QApplication([])
    data = write_sample_dataset(folder / "sample")
    from app.training.train_tab import TrainTab

    tab = TrainTab(folder / "workspace")
    tab.resize(1400, 900)
    tab.show()
    tab.set_dataset(data)
    for path, value in {
        "model.checkpoint": "resnet-tiny",
        "data.image_size": 32,
        "data.num_workers": 0,
        "optim.epochs": epochs,
        "optim.batch_size": 16,
    }.items():
        tab.form.set_value(path, value)
    search = tab.search_form
    search.add_entry("optim.lr")
    for name, value in {"num_samples": trials, "max_concurrent": 1, "scheduler": "asha"}.items():
        search.set_value(name, value)
    assert tab.tune_button.isEnabled(), "the forms are not valid"
    settle = time.monotonic() + 3
    while time.monotonic() < settle:  # the tab's own start-up reads (runs list, model choices)
        app.processEvents()
        time.sleep(0.01)

    gaps: list[tuple[float, float]] = []
    clock = QElapsedTimer()
    last = [0]
    first_point: list[float] = []
    t0 = [0.0]

    def tick() -> None:
        now = clock.elapsed()
        if now - last[0] > tick_ms:
            gaps.append(((now - t0[0]) / 1000.0, float(now - last[0])))
        last[0] = now

    def drawn(run_id: str, _newest: dict) -> None:
        if not first_point and run_id != (job.run_id if job else None):
            first_point.append((clock.elapsed() - t0[0]) / 1000.0)

    job = None
    tab.charts.drawn.connect(drawn)
    timer = QTimer()
    timer.setTimerType(Qt.PreciseTimer)
    timer.setInterval(tick_ms)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    app.processEvents()
    t0[0] = last[0] = clock.elapsed()
    tab.tune_button.click()
    job = tab.current_job()
    assert job is not None, "Tune started nothing: " + tab.banner.text()
    deadline = time.monotonic() + timeout_s
    while job.alive() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.002)
    ended = time.monotonic()
    while time.monotonic() < ended + 8:  # the last refreshes: final statuses, the best trial
        app.processEvents()
        time.sleep(0.002)
    timer.stop()
    roles = dict(tab.charts.roles)
    parent = tab.runs.row_for(job.run_id) if job.run_id else None
    result = {
        "trials": trials,
        "epochs": epochs,
        "click_to_first_trial_point_s": first_point[0] if first_point else None,
        "max_stall_ms": max((g for _, g in gaps), default=0.0),
        "stalls_over_50ms": [[round(t, 1), g] for t, g in gaps if g > STALL_TARGET_MS],
        "search_s": round(ended - (deadline - timeout_s), 1),
        "exit_code": job.exit_code,
        "search_status": parent.status if parent else None,
        "trials_charted": sum(1 for r in roles.values()),
        "trials_with_points": sum(1 for r in roles if tab.charts.point_count(r, "val/loss") > 0),
        "best_highlighted": sum(1 for r in roles.values() if r == "best"),
        "load_average": os.getloadavg(),
    }
    tab.confirm_close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--tick-ms", type=int, default=5)
    parser.add_argument("--timeout-s", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lightbox-tune-chart-") as tmp:
        folder = Path(tmp)
        home = folder / "home"
        home.mkdir()
        os.environ["HOME"] = str(home)  # Ray's token goes here, not into the user's ~/.ray
        for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
            os.environ.pop(name, None)
        result = measure(folder, args.trials, args.epochs, args.tick_ms, args.timeout_s)
    print(json.dumps(result))
    verdict = "met" if result["max_stall_ms"] <= STALL_TARGET_MS else "NOT met"
    print(
        f"{result['trials']} trials x {result['epochs']} epoch(s): click -> first trial point "
        f"{result['click_to_first_trial_point_s']} s; longest stall {result['max_stall_ms']:.0f} ms "
        f"(target <= {STALL_TARGET_MS:.0f} ms: {verdict}); search {result['search_status']} in "
        f"{result['search_s']} s; {result['trials_charted']} trials charted, {result['best_highlighted']} "
        "highlighted as best"
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main()
    os._exit(code)  # a chart read still in flight would hold the interpreter's exit (its pool's join)
