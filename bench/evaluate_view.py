"""The Evaluate view on a generated detection evaluation of 5,000 images (issue #19's targets).

Prints (1) the time from asking for the run's evaluation to its page drawn (the file read and indexed
in the background, the page filled on the GUI thread): target at most 1 s; (2) the longest event-loop
stall while that happens; (3) the longest stall while the threshold slider moves across its whole
range, one step per event-loop turn as a drag does: target at most 50 ms.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/evaluate_view.py [--images 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class StallMeter:
    """The longest gap between turns of the event loop, from a 1 ms timer."""

    def __init__(self):
        from PySide6.QtCore import QTimer

        self.longest = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer(interval=1)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def start(self):
        self.longest, self._last = 0.0, time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.longest


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from app.training.evaluate_view import EvaluateView
    from tests.app.training.test_app_evaluate_model import generated_detection, write_report

    doc = generated_detection(n_images=args.images, seed=0)
    predictions = sum(len(im["predictions"]) for im in doc["images"])
    boxes = sum(len(im["annotations"]) for im in doc["images"])
    run_dir = Path(tempfile.mkdtemp(prefix="evaluate_bench_"))
    path = write_report(doc, run_dir)
    print(f"{args.images:,} images, {predictions:,} predictions, {boxes:,} boxes; {path.stat().st_size / 1e6:.1f} MB")

    view = EvaluateView(run_dir / "ws")
    view.resize(1280, 800)
    view.show()
    app.processEvents()
    meter = StallMeter()
    shown = []
    view.evaluation_loaded.connect(lambda _ev: shown.append(time.perf_counter()))
    meter.start()
    start = time.perf_counter()
    view.show_run("bench", str(run_dir), "bench-run")
    while not shown:
        app.processEvents()
    app.processEvents()  # the page's first paint
    view.repaint()
    opened = time.perf_counter() - start
    open_stall = meter.stop()
    print(f"open: {opened * 1000:.0f} ms (target ≤ 1000), longest stall while opening {open_stall * 1000:.0f} ms")

    slider = view.detection.slider
    meter.start()
    start = time.perf_counter()
    for value in list(range(slider.minimum(), slider.maximum() + 1)) + list(range(slider.maximum(), -1, -1)):
        slider.setValue(value)
        turn = time.perf_counter()
        while time.perf_counter() - turn < 0.004:  # the loop turns between steps, as while dragging
            app.processEvents()
    moved = time.perf_counter() - start
    slider_stall = meter.stop()
    print(
        f"slider: {2 * (slider.maximum() + 1)} steps in {moved:.2f} s; longest event-loop stall "
        f"{slider_stall * 1000:.1f} ms (target ≤ 50)"
    )
    counts = view.detection.figures_shown()
    print(f"at {view.threshold:.2f}: {counts}")
    return 0 if opened <= 1.0 and slider_stall <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
