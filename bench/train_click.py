"""Benchmark: does the window freeze between clicking Train and the first chart point?

The real app, offscreen: a :class:`MainWindow` on a fresh workspace opens the demo data
(``lightbox demo-data``), shows the Train tab with the form's defaults, waits until it is
quiet (runs listed, model choices in, the Augment tab's background import done), then
clicks Train.  ``--eager`` clicks half a second after the tab is shown, as a new user does,
while the tab's own start-up work (the runs list loading MLflow) is still going;
``--control S`` measures the same window without a click.  From the click until the run's
first point is on the chart (and ``--after-s`` more), a QTimer ticks every ``--tick-ms``;
every gap between two ticks longer than the tick is the event loop being blocked that long.  The click
itself (the slot ``TrainTab.train`` runs inside it) counts as one gap.  Reported: the longest stall, how
many exceed 50 ms, and when.

To find what blocks, ``--stacks`` samples every thread's Python stack every 5 ms while a
tick is overdue (a GUI thread found sleeping is waiting for the interpreter lock: the other
threads say who holds it), and the garbage collector's passes over 10 ms are listed with
their times: before the fix, every stall over 50 ms was a full collection set off by a
background import (app/widgets/gc_pacing.py).

Each repetition is a fresh process (a user's first click pays for imports a second click
would not).  The load average is printed with the figures: the machine is shared.

usage: QT_QPA_PLATFORM=offscreen python bench/train_click.py [--repeat 3] [--stacks]
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

STALL_TARGET_MS = 50.0


class GapMeter:
    """Every event-loop gap longer than the tick, with its time after the click; stacks while one lasts."""

    def __init__(self, tick_ms: int, sample_stacks: bool):
        from PySide6.QtCore import Qt, QTimer

        self.tick_ms = tick_ms
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(tick_ms)
        self.timer.timeout.connect(self._tick)
        self.origin = time.perf_counter()
        self.last = self.origin
        self.gaps: list[tuple[float, float]] = []  # (seconds after the click the gap began, gap ms)
        self.stacks: list[tuple[float, str]] = []  # (seconds after the click, stack text)
        self._main = threading.main_thread().ident
        self._sampling = sample_stacks
        self._done = threading.Event()
        if sample_stacks:
            threading.Thread(target=self._watch, daemon=True).start()
        # The garbage collector's full passes run in whichever thread allocates, holding the lock.
        self.collections: list[tuple[float, float, int]] = []  # (s after the click, ms, generation)
        self._gc_began = 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_began = time.perf_counter()
        elif info["generation"] >= 1:
            took = (time.perf_counter() - self._gc_began) * 1000
            if took > 10:
                self.collections.append((self._gc_began - self.origin, took, info["generation"]))

    def start(self) -> None:
        self.origin = self.last = time.perf_counter()
        self.timer.start()

    def note(self, began: float, ended: float) -> None:
        """A gap measured by the caller (the click's own slot)."""
        self.gaps.append((began - self.origin, (ended - began) * 1000))
        self.last = ended

    def _tick(self) -> None:
        now = time.perf_counter()
        late = (now - self.last) * 1000 - self.tick_ms
        if late > 0:
            self.gaps.append((self.last - self.origin, late))
        self.last = now

    def stop(self) -> None:
        self.timer.stop()
        self._done.set()
        gc.callbacks.remove(self._gc)

    def _watch(self) -> None:
        while not self._done.wait(0.005):
            overdue = (time.perf_counter() - self.last) * 1000 - self.tick_ms
            if overdue < 20:
                continue
            frames = sys._current_frames()
            main = frames.pop(self._main, None)
            if main is None:
                continue
            # The GUI thread in a sleep or in processEvents is waiting for the interpreter lock:
            # then the other threads that run Python code say who holds it.
            others = [_describe_thread(f) for f in frames.values()]
            busy = [o for o in others if o]
            text = "GUI " + _describe_stack(main) + "".join(f"\n        | {b}" for b in busy)
            self.stacks.append((time.perf_counter() - self.origin, text))

    def over(self, ms: float) -> list[tuple[float, float]]:
        return [(t, g) for t, g in self.gaps if g > ms]


def _describe_stack(frame) -> str:
    """The innermost project frame and the frames under it (what the GUI thread was doing)."""
    entries = traceback.extract_stack(frame)
    ours = [i for i, e in enumerate(entries) if str(ROOT / "app") in e.filename or str(ROOT / "engine") in e.filename]
    start = ours[-1] if ours else max(0, len(entries) - 3)
    shown = entries[start : start + 4]
    return " > ".join(f"{Path(e.filename).name}:{e.lineno} {e.name}" for e in shown)


_IDLE = (
    "wait",
    "select",
    "poll",
    "_wait_for_tstate_lock",
    "sleep",
    "get",
    "acquire",
    "_worker",
    "recv_bytes",
    "_recv",
    "_recv_bytes",
    "read",
    "accept",
    "readinto",
    "run_forever",
)


def _describe_thread(frame) -> str:
    """A non-GUI thread that is running Python code: its task (outermost project frame) and its innermost frames."""
    entries = traceback.extract_stack(frame)
    if not entries or entries[-1].name in _IDLE or entries[-1].name == "watch":
        return ""
    ours = [
        e
        for e in entries
        if (str(ROOT / "app") in e.filename or str(ROOT / "engine") in e.filename)
        and not e.filename.endswith("workers.py")
    ]
    task = f"{Path(ours[0].filename).name}:{ours[0].lineno} {ours[0].name} ... " if ours else ""
    inner = " > ".join(f"{Path(e.filename).name}:{e.lineno} {e.name}" for e in entries[-2:])
    return task + inner


def wait(app, seconds: float, until=None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until is not None and until():
            return True
        app.processEvents()
        time.sleep(0.002)
    return until is None


def once(args) -> dict:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="lightbox-train-click-"))
    from engine.data.sample import write_sample_dataset

    dataset = write_sample_dataset(tmp / "shapes")
    from app.main_window import MainWindow

    window = MainWindow(tmp / "ws")
    window.resize(1400, 900)
    window.show()
    window.open_folder(dataset)
    if not wait(app, 60, until=lambda: window.session is not None and not window.is_busy()):
        raise SystemExit("the demo data did not open")
    window.tabs.setCurrentWidget(window.train_host)
    tab = window.train_tab
    # Quiet before the click: the runs listed, the model choices in, the Augment import done.
    augment_tab = window.tabs.indexOf(window.augment_host)

    def quiet() -> bool:
        return (
            window._preload_started
            and "loading" not in window.tabs.tabText(augment_tab)
            and not window._preload_timer.isActive()
            and not any(
                slot.running for slot in (tab._runs_slot, tab._model_choices_slot, tab._summary_slot, tab._split_slot)
            )
        )

    wait(app, 60 if args.quiet else 0, until=quiet)
    wait(app, args.settle_s)
    if args.steps:
        tab.form.set_value("optim.max_steps", args.steps)
    if not tab.train_button.isEnabled():
        raise SystemExit(f"Train is disabled: {tab.train_button.toolTip()}")

    meter = GapMeter(args.tick_ms, args.stacks)
    meter.start()
    began = time.perf_counter()
    if args.control:  # the same window without the click: what the app does anyway
        wait(app, args.control)
        meter.stop()
        window.close()
        return _summary(meter, args, True, args.control)
    QTest.mouseClick(tab.train_button, Qt.LeftButton)
    meter.note(began, time.perf_counter())
    job = tab.jobs[-1]
    charted = wait(
        app,
        args.timeout_s,
        until=lambda: job.run_id is not None and tab.charts.point_count(job.run_id) > 0 or not job.alive(),
    )
    first_point_s = time.perf_counter() - meter.origin
    wait(app, args.after_s)  # the first point's paint, and what the tab does right after it
    meter.stop()
    ok = charted and job.run_id is not None and tab.charts.point_count(job.run_id) > 0
    if not ok:
        print("no chart point:\n" + "\n".join(job.log_lines[-15:]), file=sys.stderr)
    job.stop()
    wait(app, 60, until=lambda: not job.alive())
    tab.confirm_close = lambda: True  # the run has ended; nothing to ask
    window.close()
    return _summary(meter, args, ok, first_point_s)


def _summary(meter, args, ok: bool, first_point_s: float) -> dict:
    stalls = meter.over(STALL_TARGET_MS)
    stacks = collections.Counter(s for _, s in meter.stacks)
    return {
        "ok": ok,
        "first_point_s": round(first_point_s, 2),
        "max_stall_ms": round(max((g for _, g in meter.gaps), default=0.0), 1),
        "stalls_over_50ms": len(stalls),
        "stalls": [[round(t, 2), round(g, 1)] for t, g in stalls],
        "click_ms": round(meter.gaps[0][1], 1) if meter.gaps else 0.0,
        "gc_over_10ms": [[round(t, 2), round(ms, 1), g] for t, ms, g in meter.collections if t >= 0],
        "stacks": [[n * 5, s] for s, n in stacks.most_common(args.top)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes, one click each")
    parser.add_argument("--tick-ms", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30, help="optim.max_steps of the run (it is stopped anyway)")
    parser.add_argument("--settle-s", type=float, default=2.0, help="quiet time before the click")
    parser.add_argument("--timeout-s", type=float, default=180.0)
    parser.add_argument("--after-s", type=float, default=1.0, help="measured on after the first point")
    parser.add_argument(
        "--eager",
        dest="quiet",
        action="store_false",
        help="click once the tab is shown, without waiting for the background work to settle",
    )
    parser.add_argument(
        "--control",
        type=float,
        default=0.0,
        metavar="S",
        help="no click: measure S seconds of the same window as a control",
    )
    parser.add_argument("--stacks", action="store_true", help="sample the GUI thread's stack during stalls")
    parser.add_argument("--top", type=int, default=12, help="stacks shown")
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        print("RESULT " + json.dumps(once(args)))
        return 0
    results = []
    for i in range(args.repeat):
        load = os.getloadavg()
        command = [
            sys.executable,
            __file__,
            "--once",
            "--tick-ms",
            str(args.tick_ms),
            "--steps",
            str(args.steps),
            "--settle-s",
            str(args.settle_s),
            "--timeout-s",
            str(args.timeout_s),
            "--after-s",
            str(args.after_s),
            "--top",
            str(args.top),
        ]
        command += ["--stacks"] if args.stacks else []
        command += [] if args.quiet else ["--eager"]
        command += ["--control", str(args.control)] if args.control else []
        done = subprocess.run(command, capture_output=True, text=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(done.stdout[-2000:] + done.stderr[-4000:], file=sys.stderr)
            return 1
        result = json.loads(line[len("RESULT ") :])
        result["load_1min"] = round(load[0], 2)
        results.append(result)
        print(
            f"run {i + 1}: load {load[0]:.2f}; click -> first point {result['first_point_s']} s; longest stall "
            f"{result['max_stall_ms']} ms; {result['stalls_over_50ms']} over {STALL_TARGET_MS:.0f} ms at "
            f"{result['stalls']} (s after the click, ms); the click's own slot {result['click_ms']} ms; "
            f"garbage collections over 10 ms {result['gc_over_10ms']} (s, ms, generation)"
        )
        for ms, stack in result["stacks"]:
            print(f"    ~{ms} ms  {stack}")
    worst = max(r["max_stall_ms"] for r in results)
    print(
        json.dumps(
            {
                "max_stall_ms": [r["max_stall_ms"] for r in results],
                "stalls_over_50ms": [r["stalls_over_50ms"] for r in results],
                "first_point_s": [r["first_point_s"] for r in results],
                "load_1min": [r["load_1min"] for r in results],
            }
        )
    )
    verdict = "met" if worst <= STALL_TARGET_MS else "MISSED"
    print(f"worst stall {worst} ms (target <= {STALL_TARGET_MS:.0f} ms: {verdict})")
    return 0 if worst <= STALL_TARGET_MS and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
