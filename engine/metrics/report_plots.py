"""PNG plots of an evaluation report: PR curves (detection), the confusion matrix (the others).

matplotlib is optional: without it no plot is written (the JSON holds every figure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_CURVES = 20  # beyond this, a legend is unreadable: the classes with the most ground truth are drawn


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """The report's plots written to ``folder``; none when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    if report["task"] == "detection":
        return [_pr_curves(plt, report, folder / "pr_curves.png")]
    return [_confusion(plt, report, folder / "confusion.png")]


def _pr_curves(plt: Any, report: dict[str, Any], path: Path) -> Path:
    rows = sorted(report["per_class"], key=lambda row: -row["support"])[:MAX_CURVES]
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    for ax, key, title in zip(axes, ("iou_50", "iou_50_95"), ("IoU 0.5", "IoU 0.5:0.95")):
        for row in rows:
            curve = report["curves"]["pr"].get(str(row["id"]))
            if curve is None:
                continue
            precision = [float("nan") if p is None else p for p in curve[key]["precision"]]
            ax.plot(curve[key]["recall"], precision, label=f"{row['name']}")
        ax.set(title=f"Precision-recall, {title}", xlabel="recall", xlim=(0, 1), ylim=(0, 1.02))
    axes[0].set_ylabel("precision")
    if rows:
        axes[1].legend(fontsize="small", loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _confusion(plt: Any, report: dict[str, Any], path: Path) -> Path:
    import numpy as np

    counts = np.asarray(report["confusion"]["counts"], dtype=np.float64)
    labels = report["confusion"]["labels"]
    totals = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = min(4 + 0.35 * len(labels), 30)
    figure, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=90, fontsize="small")
    ax.set_yticks(ticks, labels, fontsize="small")
    ax.set(xlabel="predicted", ylabel="truth", title="Confusion (each row normalised)")
    figure.colorbar(image, ax=ax, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
