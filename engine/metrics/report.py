"""The evaluation report (``evaluation.json``): assemble, write, read back, and name its metrics.

One file per evaluation, in the format of the team's schema (version 1): the engine writes it
(``lightbox eval``, the end of training, an export's evaluation) and the app reads it with
:func:`load_report`. Plain JSON: NaN (a figure with nothing to measure) is written as null.
No torch here: the app imports this module.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPORT_VERSION = 1
REPORT_FILE = "evaluation.json"
TASKS = ("classification", "detection", "segmentation")
SPLITS = ("val", "train", "all")
MATCH_IOU = 0.5
REQUIRED_KEYS = (
    "version",
    "task",
    "source",
    "data",
    "classes",
    "summary",
    "per_class",
    "confusion",
    "curves",
    "match_iou",
    "images",
)
# Per-class figures logged to MLflow, by task: (report key, metric folder).
PER_CLASS_METRICS = {
    "classification": (("precision", "precision"), ("recall", "recall"), ("f1", "f1")),
    "detection": (("ap", "ap"), ("ap_50", "ap_50"), ("ar_100", "ar_100")),
    "segmentation": (("iou", "iou"), ("dice", "dice")),
}
METRIC_PREFIX = "eval"


def plain(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays unwrapped, NaN and infinities as None."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return plain(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise TypeError(f"cannot write {type(value).__name__} to an evaluation report")


def build_report(
    *,
    task: str,
    source: Mapping[str, str | None],
    data: Mapping[str, Any],
    classes: Sequence[Mapping[str, Any]],
    figures: Mapping[str, Any],
) -> dict[str, Any]:
    """The whole report: who was evaluated on what, plus the task's figures (summary ... images)."""
    report = {
        "version": REPORT_VERSION,
        "task": task,
        "source": {key: source.get(key) for key in ("run_id", "export_dir", "checkpoint")},
        "data": {"path": str(data["path"]), "split": data["split"], "num_images": int(data["num_images"])},
        "classes": [{"id": int(c["id"]), "name": str(c["name"])} for c in classes],
        "summary": figures["summary"],
        "per_class": figures["per_class"],
        "confusion": figures.get("confusion"),
        "curves": figures.get("curves"),
        "match_iou": MATCH_IOU,
    }
    report = plain(report)
    # The per-image entries (most of a report) come from this package's figure modules as plain
    # Python values already; converting them again would cost as much as computing them.
    # write_report still refuses (then converts) anything JSON cannot hold.
    report["images"] = figures["images"]
    validate(report, "<report being written>")
    return report


def write_report(report: Mapping[str, Any], folder: str | Path) -> Path:
    """Write ``report`` as ``folder/evaluation.json`` (whole or not at all); returns the file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_FILE
    partial = path.with_name(path.name + ".partial")
    try:  # a report from build_report is plain already: converting it again would double the time
        text = json.dumps(report, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = json.dumps(plain(report), allow_nan=False, separators=(",", ":"))
    partial.write_text(text)
    partial.replace(path)
    return path


def load_report(path: str | Path) -> dict[str, Any]:
    """Read and check an ``evaluation.json``; ValueError names the file and the key that is wrong."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the evaluation ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not an evaluation report (invalid JSON: {exc.msg}, line {exc.lineno})") from None
    validate(report, str(path))
    return report


def validate(report: Any, where: str) -> None:
    """Raise ValueError naming ``where`` and the key when ``report`` does not follow the schema."""
    if not isinstance(report, dict):
        raise ValueError(f"{where}: an evaluation report is a JSON object")
    version = report.get("version")
    if version != REPORT_VERSION:
        raise ValueError(f"{where}: key 'version' is {version!r}; this Lightbox reads version {REPORT_VERSION}")
    for key in REQUIRED_KEYS:
        if key not in report:
            raise ValueError(f"{where}: key {key!r} is missing")
    task = report["task"]
    if task not in TASKS:
        raise ValueError(f"{where}: key 'task' is {task!r}, expected one of {', '.join(TASKS)}")
    expected_types = {
        "source": dict,
        "data": dict,
        "classes": list,
        "summary": dict,
        "per_class": list,
        "images": list,
    }
    for key, kind in expected_types.items():
        if not isinstance(report[key], kind):
            raise ValueError(f"{where}: key {key!r} must be a JSON {'object' if kind is dict else 'array'}")
    _validate_entries(report, where)


def _validate_entries(report: dict[str, Any], where: str) -> None:
    """The checks of :func:`validate` inside the lists and of the task's own keys."""
    task = report["task"]
    if report["data"].get("split") not in SPLITS:
        raise ValueError(f"{where}: key 'data.split' must be one of {', '.join(SPLITS)}")
    for i, entry in enumerate(report["classes"]):
        if not isinstance(entry, dict) or "id" not in entry or "name" not in entry:
            raise ValueError(f"{where}: key 'classes[{i}]' needs 'id' and 'name'")
    for i, entry in enumerate(report["per_class"]):
        if not isinstance(entry, dict) or not {"id", "name", "support"} <= entry.keys():
            raise ValueError(f"{where}: key 'per_class[{i}]' needs 'id', 'name' and 'support'")
    if task == "detection":
        curves = report["curves"]
        if not isinstance(curves, dict) or "pr" not in curves or "threshold" not in curves:
            raise ValueError(f"{where}: key 'curves' needs 'pr' and 'threshold' for detection")
    elif not isinstance(report["confusion"], dict) or not {"labels", "counts"} <= report["confusion"].keys():
        raise ValueError(f"{where}: key 'confusion' needs 'labels' and 'counts' for {task}")
    for i, image in enumerate(report["images"]):
        if not isinstance(image, dict) or not {"image_id", "file_name", "error"} <= image.keys():
            raise ValueError(f"{where}: key 'images[{i}]' needs 'image_id', 'file_name' and 'error'")


_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_\-. :]+")


def metric_part(name: str) -> str:
    """A class name as one part of an MLflow metric name.

    MLflow takes letters, digits, ``_ - . : /`` and spaces, and refuses names that read
    as another path (``a/../b``); the slash separates parts here, so it is replaced too.
    """
    part = _NOT_ALLOWED.sub("_", str(name)).strip()
    return "_" if part in ("", ".", "..") else part


def tracking_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The figures logged to the run: ``eval/<summary key>`` and ``eval/<figure>/<class name>``.

    Figures with nothing to measure (null) are not logged. Two classes whose names read the
    same once made valid get their id appended, so neither hides the other.
    """
    metrics = {f"{METRIC_PREFIX}/{key}": float(v) for key, v in report["summary"].items() if v is not None}
    parts = [metric_part(row["name"]) for row in report["per_class"]]
    for row, part in zip(report["per_class"], parts):
        if parts.count(part) > 1:
            part = f"{part}_{row['id']}"
        for key, folder in PER_CLASS_METRICS[report["task"]]:
            value = row.get(key)
            if value is not None:
                metrics[f"{METRIC_PREFIX}/{folder}/{part}"] = float(value)
    return metrics


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The summary and the per-class table as text lines, for a terminal."""
    data = report["data"]
    lines = [f"{report['task']} on {data['num_images']} images ({data['split']} split of {data['path']})", ""]
    width = max(len(k) for k in report["summary"]) if report["summary"] else 0
    lines += [f"  {key:<{width}}  {_figure(value)}" for key, value in report["summary"].items()]
    keys = ["support", *(key for key, _ in PER_CLASS_METRICS[report["task"]])]
    if report["task"] == "detection":
        keys.insert(3, "ap_75")
    name_width = max([5, *(len(str(row["name"])) for row in report["per_class"])])
    lines += ["", "  " + f"{'class':<{name_width}}" + "".join(f"  {key:>9}" for key in keys)]
    for row in report["per_class"]:
        cells = "".join(f"  {_figure(row.get(key)):>9}" for key in keys)
        lines.append("  " + f"{row['name']:<{name_width}}" + cells)
    return lines


def printed_summary(report: Mapping[str, Any], path: str | Path, *, as_json: bool = False) -> str:
    """What ``lightbox eval`` prints: the summary table and where the report is, or one JSON line."""
    if as_json:
        source = report["source"]
        return json.dumps(
            {
                "report": str(path),
                "task": report["task"],
                **{key: source[key] for key in ("run_id", "export_dir", "checkpoint") if source[key] is not None},
                "summary": report["summary"],
            }
        )
    return "\n".join([*summary_lines(report), "", f"evaluation written to {path}"])


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}"
