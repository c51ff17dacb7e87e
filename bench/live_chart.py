"""Benchmark: live charts of a real training run next to 8 long runs, offscreen.

A real child process (``python -m engine train``, ``resnet-tiny`` at 32 px on the sample
data, a loss point every step) logs to a workspace's SQLite store, started by the app's
own :class:`ProcessJob`.  Eight finished runs of ``--points`` steps each (``train/loss``
and ``lr`` at every step, validation every 500 steps) are written into the same store
beforehand with ``MlflowClient.log_batch``.  The app's chart machinery (the Train tab's
:class:`MetricPoller` and :class:`ChartPanel`, shown in an offscreen window) then charts
all nine.  Measured:

* latency: for every live ``train/loss`` point, its MLflow timestamp (set when the
  training process logged it) to the end of the first paint of the chart after the point
  was added (95th percentile; target <= 2 s).  Split into store -> poll answer on the GUI
  thread, and answer -> painted.
* stall: a QTimer ticks every ``--tick-ms``; the longest gap between two ticks beyond
  the tick interval is the longest the event loop was blocked (target <= 50 ms).
  Baseline: the same timer, the same training child running, with no charts at all (the
  floor this machine gives); then with the nine runs charted.  Prints the ratio.

usage: QT_QPA_PLATFORM=offscreen python bench/live_chart.py [--runs 8] [--points 10000] [--seconds 40]
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
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LATENCY_TARGET_S = 2.0
STALL_TARGET_MS = 50.0


def write_history(uri: str, runs: int, points: int) -> list[str]:
    """``runs`` finished runs with ``points`` steps of loss and learning rate (log_batch, 1,000 a call)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from engine.tracking.store import get_or_create_experiment

    client = MlflowClient(uri)
    experiment = get_or_create_experiment(client, "lightbox")  # artifacts beside the store, not in the cwd
    ids = []
    for r in range(runs):
        run = client.create_run(experiment, run_name=f"history-{r}")
        start = int(time.time() * 1000) - points * 100
        metrics = []
        for s in range(1, points + 1):
            ts = start + s * 100
            metrics.append(Metric("train/loss", 2.0 / (1 + s / 500) + 0.05 * ((s * 7919 + r) % 13) / 13, ts, s))
            metrics.append(Metric("lr", 3e-4 * (1 - s / points), ts, s))
            if s % 500 == 0:
                metrics.append(Metric("val/loss", 1.5 / (1 + s / 800), ts, s))
                metrics.append(Metric("epoch", s // 500 - 1, ts, s))
        for i in range(0, len(metrics), 1000):
            client.log_batch(run.info.run_id, metrics=metrics[i : i + 1000])
        client.set_terminated(run.info.run_id, "FINISHED")
        ids.append(run.info.run_id)
    return ids


def training_config(dataset: Path, workspace: Path):
    from engine.config import RunConfig

    return RunConfig.from_dict(
        {
            "task": {"name": "classification"},
            "model": {"checkpoint": "resnet-tiny"},
            "data": {"path": str(dataset), "image_size": 32, "num_workers": 0},
            "optim": {"epochs": 10_000, "batch_size": 8},
            "tracking": {"log_every_n_steps": 1, "run_name": "live"},
            "workspace": str(workspace),
        },
        "bench",
    )


class StallMeter:
    """The longest gap between ticks of a fast QTimer, per phase."""

    def __init__(self, tick_ms: int):
        from PySide6.QtCore import Qt, QTimer

        self.tick_ms = tick_ms
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(tick_ms)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.worst = {}
        self.phase = None

    def start(self, phase: str) -> None:
        self.phase, self.last = phase, time.perf_counter()
        self.worst.setdefault(phase, 0.0)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.phase is not None:
            self.worst[self.phase] = max(self.worst[self.phase], (now - self.last) * 1000 - self.tick_ms)
        self.last = now


def wait(app, seconds: float, until=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until()):
        app.processEvents()
        time.sleep(0.002)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=40.0, help="charted phase")
    parser.add_argument("--baseline-seconds", type=float, default=15.0, help="no-charts phase")
    parser.add_argument("--tick-ms", type=int, default=5)
    args = parser.parse_args()

    import numpy as np
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from app.training.charts import ChartPanel, MetricPoller
    from app.training.process_job import ProcessJob
    from engine.data.sample import write_sample_dataset

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="lightbox-live-chart-"))
    workspace = tmp / "ws"
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    workspace.mkdir(parents=True)
    dataset = write_sample_dataset(tmp / "shapes", train_images=480, val_images=32)
    began = time.perf_counter()
    history = write_history(uri, args.runs, args.points)
    print(
        f"wrote {args.runs} runs x {args.points} steps (loss + lr) in {time.perf_counter() - began:.1f} s",
        file=sys.stderr,
    )

    app = QApplication.instance() or QApplication([])
    panel = ChartPanel()
    panel.resize(1200, 700)
    panel.show()
    poller = MetricPoller(uri)
    poller.points.connect(panel.add_points)

    config_path = training_config(dataset, workspace).save(workspace / "configs" / "live.yaml")
    job = ProcessJob(workspace, uri, config_path=config_path, grace_s=5, kill_grace_s=5)
    job.start()
    meter = StallMeter(args.tick_ms)
    meter.start("warm-up")
    wait(app, 180, until=lambda: job.run_id is not None or not job.alive())
    if job.run_id is None:
        print("the training child did not start:\n" + "\n".join(job.log_lines[-20:]), file=sys.stderr)
        return 1
    # Steady training (its first points written) before measuring.
    from engine.tracking.history import MetricReader

    probe = MetricReader(uri, job.run_id)
    wait(app, 120, until=lambda: bool(probe.poll()[0].get("train/loss")))

    meter.start("no charts")
    wait(app, args.baseline_seconds)

    # Latency bookkeeping: live points added -> the next paint of the chart's view.
    answered: list[tuple[float, list[int]]] = []  # (wall time answered, timestamps)
    painted: list[tuple[float, float]] = []  # (answered, painted)
    pending: list[tuple[float, list[int]]] = []
    measure_from_ms = int(time.time() * 1000) + 3000  # leave out the live run's backlog from before

    def live_points(run_id: str, points: dict) -> None:
        if run_id == job.run_id and points.get("train/loss"):
            stamps = [p[2] for p in points["train/loss"] if p[2] >= measure_from_ms]
            if stamps:
                item = (time.time(), stamps)
                answered.append(item)
                pending.append(item)

    def after_paint() -> None:
        now = time.time()
        for item in pending:
            painted.append((item, now))
        pending.clear()

    class PaintWatch(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Paint and pending:
                QTimer.singleShot(0, after_paint)  # runs once this paint has finished
            return False

    watch = PaintWatch()
    panel.views["loss"].viewport().installEventFilter(watch)  # where train/loss is drawn
    poller.points.connect(live_points)

    meter.start("charts")
    for i, run_id in enumerate(history):
        panel.add_run(run_id, f"history-{i}")
        poller.watch(run_id)
    panel.add_run(job.run_id, "live")
    poller.watch(job.run_id, live=True)  # as the Train tab watches its own run
    wait(app, args.seconds)
    meter.phase = None
    loaded = sum(panel.point_count(r) for r in history)

    job.stop()
    wait(app, 60, until=lambda: not job.alive())
    load_after = os.getloadavg()

    latencies = np.array([done - ts / 1000.0 for (_, stamps), done in painted for ts in stamps])
    to_answer = np.array([t - ts / 1000.0 for t, stamps in answered for ts in stamps])
    to_paint = np.array([done - t for (t, _), done in painted])
    if not len(latencies):
        print(
            f"no live point was drawn ({len(answered)} answers with live points, {len(painted)} painted, "
            f"{panel.point_count(job.run_id)} live points charted)",
            file=sys.stderr,
        )
        return 1
    p95 = float(np.percentile(latencies, 95))
    base, charts = meter.worst["no charts"], meter.worst["charts"]
    result = {
        "live_points_drawn": int(len(latencies)),
        "latency_p50_s": round(float(np.median(latencies)), 3),
        "latency_p95_s": round(p95, 3),
        "latency_max_s": round(float(latencies.max()), 3),
        "store_to_answer_p95_s": round(float(np.percentile(to_answer, 95)), 3),
        "answer_to_painted_p95_s": round(float(np.percentile(to_paint, 95)), 3),
        "stall_no_charts_ms": round(base, 1),
        "stall_charts_ms": round(charts, 1),
        "stall_ratio": round(charts / max(base, 0.1), 2),
        "history_points_charted": loaded,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
    }
    print(
        f"latency (MLflow timestamp -> painted), {len(latencies)} live points: p50 {result['latency_p50_s']} s, "
        f"p95 {p95:.2f} s (target <= {LATENCY_TARGET_S} s: {'met' if p95 <= LATENCY_TARGET_S else 'MISSED'}); "
        f"of which store -> poll answer p95 {result['store_to_answer_p95_s']} s, answer -> painted p95 "
        f"{result['answer_to_painted_p95_s']} s"
    )
    print(
        f"longest event-loop stall: {charts:.1f} ms with {args.runs} x {args.points} steps + 1 live run charted "
        f"(target <= {STALL_TARGET_MS:.0f} ms: {'met' if charts <= STALL_TARGET_MS else 'MISSED'}); "
        f"baseline, no charts: {base:.1f} ms; ratio {result['stall_ratio']}x"
    )
    print(json.dumps(result))
    panel.close()
    poller.close()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)  # 8 x 10,000 steps of store and the run's checkpoints
    return 0 if p95 <= LATENCY_TARGET_S and charts <= STALL_TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
