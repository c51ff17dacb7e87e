"""The points a chart draws, Qt-free: per run, per metric, growing arrays; EMA; x axes.

Points arrive incrementally from ``engine.tracking.history.MetricReader``.  A training
point's epoch is read off the ``epoch`` metric the engine logs with each validation
(logged at the last step of that epoch), so loss can be drawn against epochs too.
"""

from __future__ import annotations

import numpy as np

X_AXES = ("step", "epoch", "wall time")
TRAIN_LOSS = "train/loss"
LEARNING_RATE = "lr"


class Series:
    """One metric of one run: steps, values and timestamps (ms), appended in place."""

    def __init__(self) -> None:
        self.step = np.empty(0, dtype=np.int64)
        self.value = np.empty(0, dtype=np.float64)
        self.time_ms = np.empty(0, dtype=np.int64)

    def extend(self, points: list[tuple[int, float, int]]) -> None:
        if not points:
            return
        arr = np.asarray(points, dtype=np.float64)
        self.step = np.concatenate([self.step, arr[:, 0].astype(np.int64)])
        self.value = np.concatenate([self.value, arr[:, 1]])
        self.time_ms = np.concatenate([self.time_ms, arr[:, 2].astype(np.int64)])
        if len(self.step) > len(arr) and self.step[-len(arr) - 1] > self.step[-len(arr)]:
            order = np.argsort(self.step, kind="stable")  # a resumed run may repeat steps: keep step order
            self.step, self.value, self.time_ms = self.step[order], self.value[order], self.time_ms[order]

    def __len__(self) -> int:
        return len(self.step)


def ema(values: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average (``alpha`` = weight of the past, 0 = none), NaNs kept as gaps."""
    if alpha <= 0 or len(values) == 0:
        return values
    from scipy.signal import lfilter

    finite = np.isfinite(values)
    out = np.full_like(values, np.nan)
    clean = values[finite]
    if len(clean):
        smoothed, _ = lfilter([1 - alpha], [1, -alpha], clean, zi=[alpha * clean[0]])
        out[finite] = smoothed
    return out


class RunData:
    """Every metric read so far for one run."""

    def __init__(self, run_id: str, label: str) -> None:
        self.run_id, self.label = run_id, label
        self.series: dict[str, Series] = {}
        self.start_ms: int | None = None

    def add(self, points: dict[str, list[tuple[int, float, int]]]) -> set[str]:
        """Append new points; returns the keys that changed."""
        for key, pts in points.items():
            self.series.setdefault(key, Series()).extend(pts)
            first = min(p[2] for p in pts) if pts else None
            if first is not None and (self.start_ms is None or first < self.start_ms):
                self.start_ms = first
        return set(points)

    def epoch_of(self, steps: np.ndarray) -> np.ndarray:
        """Fractional epoch of each step, from the (last step of epoch k -> k + 1) pairs logged."""
        marks = self.series.get("epoch")
        if marks is None or not len(marks):
            return np.full(len(steps), np.nan)
        ends = np.concatenate([[0], marks.step]).astype(np.float64)
        epochs = np.concatenate([[0.0], marks.value + 1.0])
        per_epoch = ends[-1] / epochs[-1] if epochs[-1] else 1.0
        x = np.interp(steps, ends, epochs)
        beyond = steps > ends[-1]
        x[beyond] = epochs[-1] + (steps[beyond] - ends[-1]) / max(per_epoch, 1e-9)
        return x

    def xy(self, key: str, x_axis: str, alpha: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        s = self.series.get(key)
        if s is None or not len(s):
            return np.empty(0), np.empty(0)
        if x_axis == "epoch":
            x = self.epoch_of(s.step.astype(np.float64))
        elif x_axis == "wall time":
            x = (s.time_ms - (self.start_ms or s.time_ms[0])) / 1000.0
        else:
            x = s.step.astype(np.float64)
        return x, ema(s.value, alpha)

    def validation_keys(self) -> list[str]:
        return sorted(k for k in self.series if k.startswith("val/") and not k.startswith("val/cm"))


def is_loss(key: str) -> bool:
    """A loss (any scale, lower is better) rather than a score in [0, 1] (accuracy, F1, mAP, mIoU):
    the two kinds are drawn against axes of their own, so a loss of 10 never flattens an mAP of 0.02."""
    return "loss" in key.rsplit("/", 1)[-1]


#: How a run's curves are drawn in a search's overlay: (pen width, opacity 0-255, z order).
#: The best trial stands out; the other trials stay visible but thin and faint; a run outside
#: any search is drawn as before. Only one curve per plot is wider than 1 px (a wide pen goes
#: through Qt's slow stroker).
CURVE_STYLES = {"best": (2, 255, 10.0), "trial": (1, 90, 0.0), None: (1, 255, 5.0)}


def curve_style(role: str | None) -> tuple[int, int, float]:
    """``(width, opacity, z)`` of a run charted as ``role``: "best", "trial" or None (a plain run)."""
    return CURVE_STYLES.get(role, CURVE_STYLES[None])
