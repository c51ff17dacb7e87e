"""The Export dialog against ``lightbox export`` for the same finished run.

Trains one tiny classification run (resnet-tiny, 32 px, 1 epoch, the generated sample dataset)
in a temporary workspace, then exports it, alternately, from the command line (``lightbox export
RUN --out A``, a process of its own, timed from start to exit) and from the dialog driven
offscreen (timed from the click on Export to the parity table), each with the engine's defaults
(HF folder + ONNX, parity on the validation images). The dialog's export runs in a child process
at the app's background niceness, so the command line runs at the same niceness: the ratio is
the dialog's own cost (spawn, relaying the steps), not the priority. It also reports the
longest stall of the dialog's event loop during its exports.

    .venv/bin/python bench/export_dialog.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def train_tiny_run(workspace: Path) -> str:
    from engine.config import RunConfig
    from engine.data.sample import write_sample_dataset
    from engine.orchestration.local import train

    dataset = write_sample_dataset(workspace / "shapes")
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )
    result = train(config, progress=False)
    if result.status != "FINISHED":
        raise SystemExit(f"the tiny run ended {result.status}")
    return result.run_id


def time_cli(run_id: str, workspace: Path, out: Path, niceness: int) -> float:
    command = [sys.executable, "-m", "engine", "export", run_id, "--out", str(out), "--workspace", str(workspace)]
    started = time.perf_counter()
    done = subprocess.run(["nice", "-n", str(niceness), *command], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lightbox export failed: {done.stderr[-2000:]}")
    return elapsed


class StallClock:
    """The longest gap between ticks of a 10 ms timer: how long the event loop was kept busy."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.longest, self._last = 0.0, time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last - 0.010)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()


def time_dialog(app, row, rows, workspace: Path, uri: str, out: Path, clock: StallClock) -> float:
    from app.training.export_dialog import ExportDialog

    dialog = ExportDialog(row, rows, workspace, uri)
    dialog.destination.setText(str(out))
    dialog.show()
    app.processEvents()
    clock.start()
    started = time.perf_counter()
    dialog.export_button.click()
    while dialog.outcome is None:
        app.processEvents()
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    clock.timer.stop()
    if not dialog.outcome.ok:
        raise SystemExit(f"the dialog's export failed: {dialog.outcome.message}")
    if not dialog.parity_table.rowCount():
        raise SystemExit("the dialog showed no parity table")
    dialog.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="exports each way, alternated (default 2)")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from app.training.runs_model import load_runs
    from app.widgets.workers import BACKGROUND_NICENESS

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="export-dialog-bench-") as tmp:
        workspace = Path(tmp) / "ws"
        started = time.perf_counter()
        run_id = train_tiny_run(workspace)
        print(f"tiny run {run_id} trained in {time.perf_counter() - started:.1f} s", flush=True)
        uri = f"sqlite:///{workspace / 'mlflow.db'}"
        rows = load_runs(uri)
        row = next(r for r in rows if r.run_id == run_id)
        clock = StallClock()
        cli, dialog = [], []
        for k in range(args.repeats):
            cli.append(time_cli(run_id, workspace, workspace / "exports" / f"cli-{k}", BACKGROUND_NICENESS))
            dialog.append(time_dialog(app, row, rows, workspace, uri, workspace / "exports" / f"dialog-{k}", clock))
            print(f"round {k + 1}: lightbox export {cli[-1]:.1f} s, dialog {dialog[-1]:.1f} s", flush=True)
        cli_s, dialog_s = statistics.median(cli), statistics.median(dialog)
        print(
            f"median of {args.repeats}: lightbox export {cli_s:.1f} s, dialog {dialog_s:.1f} s, "
            f"ratio dialog/CLI {dialog_s / cli_s:.2f}; longest event-loop stall during the dialog's "
            f"exports {clock.longest * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
