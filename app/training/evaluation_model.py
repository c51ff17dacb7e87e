"""A run's evaluation (``evaluation.json``, see the engine's report) as the Evaluate view shows it (no Qt).

Everything a view asks while the user moves a slider or clicks a cell is answered from arrays
built once here: the detection predictions sorted by score with their running TP / FP sums, each
ground-truth box with the score of the prediction that found it, the classification images of
each confusion cell sorted by confidence, and every image's error rank.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("classification", "detection", "segmentation")
PER_CLASS_FIELDS = {
    "classification": ("precision", "recall", "f1"),
    "detection": ("ap", "ap_50", "ap_75", "ar_100"),
    "segmentation": ("iou", "dice"),
}
REPORT_FILE = Path("evaluation") / "evaluation.json"
NEVER = -math.inf  # the score at which a ground-truth box no prediction matched is found
FILTERS = ("worst first", "has false positives", "has misses", "misclassified")


class EvaluationError(ValueError):
    """An evaluation file the app cannot show; the message names the file and the key."""


# ---------------------------------------------------------------------- reading
def _check(path: Path, doc: Any) -> dict:
    if not isinstance(doc, dict):
        raise EvaluationError(f"{path}: not an evaluation (a JSON object expected)")
    if doc.get("version") != 1:
        raise EvaluationError(f"{path}: 'version' is {doc.get('version')!r}; this app reads version 1")
    for key in ("task", "classes", "summary", "per_class", "images"):
        if key not in doc:
            raise EvaluationError(f"{path}: the key '{key}' is missing")
    if doc["task"] not in TASKS:
        raise EvaluationError(f"{path}: 'task' is {doc['task']!r}; expected one of {', '.join(TASKS)}")
    if doc["task"] == "detection" and not isinstance(doc.get("curves"), dict):
        raise EvaluationError(f"{path}: a detection evaluation needs 'curves'")
    if doc["task"] != "detection" and not isinstance(doc.get("confusion"), dict):
        raise EvaluationError(f"{path}: a {doc['task']} evaluation needs 'confusion'")
    return doc


def read_report(path: str | Path) -> dict:
    """The file as a dict: by the engine's reader when the engine has it, else read and checked here."""
    path = Path(path)
    try:
        from engine.metrics.report import load_report  # type: ignore[import-not-found]
    except ImportError:
        load_report = None
    if load_report is not None:
        try:
            return _check(path, load_report(path))
        except EvaluationError:
            raise
        except ValueError as exc:  # the engine's message names the file and the key
            raise EvaluationError(str(exc)) from None
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read the evaluation: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise EvaluationError(f"{path}: not a JSON evaluation: {exc}") from None
    return _check(path, doc)


def find_report(run_id: str, run_dir: str | None, tracking_uri: str | None, workspace: str | None) -> Path | None:
    """Where the run's evaluation lies (the copy in its run folder), None when it has none yet.

    With the run folder known (the Runs table knows it), the file is looked for there: the engine's
    ``report_path`` lives beside the training code and would load torch into the app's process."""
    if run_dir:
        path = Path(run_dir) / REPORT_FILE
        return path if path.is_file() else None
    try:
        from engine.orchestration.evaluate import report_path  # type: ignore[attr-defined]
    except ImportError:
        return None
    found = report_path(run_id, tracking_uri=tracking_uri, workspace=workspace)
    return Path(found) if found else None


def load_evaluation(path: str | Path) -> Evaluation:
    """Read and index an evaluation file (slow for large runs: call it off the GUI thread)."""
    path = Path(path)
    doc = read_report(path)
    try:
        return Evaluation(path, doc)
    except (KeyError, TypeError, IndexError) as exc:
        raise EvaluationError(f"{path}: malformed entry ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------------- small helpers
def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def f1_of(precision: float, recall: float) -> float:
    return ratio(2 * precision * recall, precision + recall)


def sort_rows(rows: list[dict], key: str, descending: bool = False) -> list[dict]:
    """Per-class rows sorted by ``key``; rows without a number there (null) come last either way."""

    def number(row: dict) -> float | None:
        value = row.get(key)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    present = [r for r in rows if number(r) is not None]
    missing = [r for r in rows if number(r) is None]
    return sorted(present, key=number, reverse=descending) + missing  # type: ignore[arg-type,return-value]


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows of zeros stay zero)."""
    sums = counts.sum(axis=1, keepdims=True).astype(float)
    return np.divide(counts, sums, out=np.zeros(counts.shape, float), where=sums > 0)


# ---------------------------------------------------------------------- detection at a threshold
@dataclass(frozen=True)
class Counts:
    threshold: float
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return f1_of(self.precision, self.recall)


@dataclass(frozen=True)
class FalsePositive:
    image: int  # index into the evaluation's images
    prediction: int  # index into that image's predictions
    category_id: int
    score: float
    reason: str
    iou: float


@dataclass(frozen=True)
class Miss:
    image: int
    annotation_id: int
    category_id: int
    found_at: float  # the score of the prediction that found it (NEVER when none did)


class DetectionMatches:
    """Every prediction and ground-truth box of a detection evaluation, sorted once for any threshold.

    A prediction's outcome does not depend on the threshold (greedy matching by score never lets a
    lower score change a higher one's match), so the predictions scored at least ``t`` are a prefix
    of the score-sorted list, and a box is missed at ``t`` when the score that found it is below ``t``.
    """

    def __init__(self, images: list[dict]):
        scores, tps, where, fp_reasons, fp_ious, categories = [], [], [], [], [], []
        found_at: dict[tuple[int, int], float] = {}
        for i, image in enumerate(images):
            for k, p in enumerate(image.get("predictions") or []):
                tp = p["outcome"] == "tp"
                scores.append(float(p["score"]))
                tps.append(tp)
                where.append((i, k))
                categories.append(int(p["category_id"]))
                fp_reasons.append("" if tp else str(p.get("reason") or "background"))
                fp_ious.append(float(p.get("iou") or 0.0))
                if tp and p.get("matched_annotation") is not None:
                    key = (i, int(p["matched_annotation"]))
                    found_at[key] = max(found_at.get(key, NEVER), float(p["score"]))
        order = np.argsort(-np.asarray(scores, float), kind="stable")
        self.scores = np.asarray(scores, float)[order]  # descending
        is_tp = np.asarray(tps, bool)[order]
        self.cum_tp = np.cumsum(is_tp)
        self.cum_fp = np.cumsum(~is_tp)
        sorted_categories = np.asarray(categories, np.int64)[order]
        truth_categories = np.asarray(
            [int(a["category_id"]) for image in images for a in image.get("annotations") or []], np.int64
        )
        # Per class: its predictions' scores (descending) and running TP count, and its boxes.
        self.per_category: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
        for category in set(sorted_categories.tolist()) | set(truth_categories.tolist()):
            mine = sorted_categories == category
            self.per_category[category] = (
                self.scores[mine],
                np.cumsum(is_tp[mine]),
                int((truth_categories == category).sum()),
            )
        fp_rows = order[~is_tp]
        self.false_positives = [
            FalsePositive(where[j][0], where[j][1], categories[j], scores[j], fp_reasons[j], fp_ious[j])
            for j in fp_rows.tolist()
        ]
        self.fp_scores = np.asarray([f.score for f in self.false_positives], float)  # descending
        boxes = [
            Miss(i, int(a["annotation_id"]), int(a["category_id"]), found_at.get((i, int(a["annotation_id"])), NEVER))
            for i, image in enumerate(images)
            for a in image.get("annotations") or []
        ]
        boxes.sort(key=lambda m: m.found_at)
        self.boxes = boxes  # ascending by the score that found them: the missed ones at t are a prefix
        self.found_scores = np.asarray([m.found_at for m in boxes], float)
        self.num_truth = len(boxes)

    def _kept(self, threshold: float) -> int:
        """How many predictions score at least ``threshold``."""
        return int(np.searchsorted(-self.scores, -threshold, side="right"))

    def counts(self, threshold: float, category_id: int | None = None) -> Counts:
        """TP / FP / FN of the predictions scored at least ``threshold`` (of one class, or all)."""
        if category_id is not None:
            scores, cum_tp, truth = self.per_category.get(category_id, (np.zeros(0), np.zeros(0, np.int64), 0))
            n = int(np.searchsorted(-scores, -threshold, side="right"))
            tp = int(cum_tp[n - 1]) if n else 0
            return Counts(threshold, tp, n - tp, truth - tp)
        n = self._kept(threshold)
        tp = int(self.cum_tp[n - 1]) if n else 0
        fp = int(self.cum_fp[n - 1]) if n else 0
        return Counts(threshold, tp, fp, self.num_truth - tp)

    def num_false_positives(self, threshold: float) -> int:
        return int(np.searchsorted(-self.fp_scores, -threshold, side="right"))

    def num_misses(self, threshold: float) -> int:
        return int(np.searchsorted(self.found_scores, threshold, side="left"))

    def false_positives_at(self, threshold: float) -> list[FalsePositive]:
        """False positives scored at least ``threshold``, highest score first."""
        return self.false_positives[: self.num_false_positives(threshold)]

    def misses_at(self, threshold: float) -> list[Miss]:
        """Ground-truth boxes no prediction scored at least ``threshold`` found."""
        return self.boxes[: self.num_misses(threshold)]


# ---------------------------------------------------------------------- the evaluation
@dataclass
class Evaluation:
    path: Path
    doc: dict
    task: str = field(init=False)
    images: list[dict] = field(init=False)

    def __post_init__(self) -> None:
        doc = self.doc
        self.task = doc["task"]
        self.images = list(doc["images"])
        self.class_ids = [int(c["id"]) for c in doc["classes"]]
        self.names = {int(c["id"]): str(c["name"]) for c in doc["classes"]}
        self.summary = {k: v for k, v in (doc.get("summary") or {}).items()}
        self.per_class = list(doc["per_class"])
        self.match_iou = float(doc.get("match_iou") or 0.5)
        self.data = doc.get("data") or {}
        self.source = doc.get("source") or {}
        errors = np.asarray([float(im.get("error") or 0.0) for im in self.images], float)
        self.errors = errors
        self.worst_first = np.argsort(-errors, kind="stable")
        confusion = doc.get("confusion")
        self.confusion_labels = [str(x) for x in confusion["labels"]] if confusion else []
        self.confusion = np.asarray(confusion["counts"], dtype=np.int64) if confusion else np.zeros((0, 0), np.int64)
        if confusion and self.confusion.shape != (len(self.confusion_labels),) * 2:
            raise EvaluationError(
                f"{self.path}: 'confusion.counts' is {self.confusion.shape}, for {len(self.confusion_labels)} labels"
            )
        self.matches = DetectionMatches(self.images) if self.task == "detection" else None
        self._cells: dict[tuple[int, int], list[int]] | None = None

    # ------------------------------------------------------------------ naming
    def class_name(self, category_id: int | None) -> str:
        if category_id is None:
            return "?"
        return self.names.get(int(category_id), f"category {category_id}")

    def image_name(self, image: int) -> str:
        return str(self.images[image].get("file_name", f"image {self.images[image].get('image_id')}"))

    @property
    def fields(self) -> tuple[str, ...]:
        return PER_CLASS_FIELDS[self.task]

    def headline(self) -> str:
        parts = [f"{k} {v:.3f}" for k, v in self.summary.items() if isinstance(v, (int, float))]
        return f"{self.task} · {len(self.images):,} images ({self.data.get('split', '?')}) · " + " · ".join(parts)

    # ------------------------------------------------------------------ classification
    def _cell_images(self) -> dict[tuple[int, int], list[int]]:
        """(row, column) of the confusion matrix -> its images, most confident prediction first."""
        if self._cells is None:
            position = {cid: k for k, cid in enumerate(self.class_ids)}
            cells: dict[tuple[int, int], list[int]] = {}
            for i, image in enumerate(self.images):
                r, c = position.get(image.get("label")), position.get(image.get("predicted"))
                if r is not None and c is not None:
                    cells.setdefault((r, c), []).append(i)
            for members in cells.values():
                members.sort(key=lambda i: -float(self.images[i].get("score") or 0.0))
            self._cells = cells
        return self._cells

    def cell_images(self, row: int, column: int) -> list[int]:
        """The images whose truth is class ``row`` and prediction class ``column``, by confidence."""
        if self.task != "classification":
            return []
        return list(self._cell_images().get((row, column), []))

    def cell_title(self, row: int, column: int) -> str:
        return f"true {self.confusion_labels[row]}, predicted {self.confusion_labels[column]}"

    # ------------------------------------------------------------------ browse filters
    def filter_images(self, name: str, threshold: float = 0.5) -> list[int]:
        """The images of a Browse filter (see ``FILTERS``), worst first; detection ones at ``threshold``."""
        order = self.worst_first.tolist()
        if name == "worst first":
            return order
        if name == "misclassified":
            if self.task != "classification":
                return []
            return [i for i in order if self.images[i].get("label") != self.images[i].get("predicted")]
        if self.matches is None:
            return []
        if name == "has false positives":
            hit = {f.image for f in self.matches.false_positives_at(threshold)}
        elif name == "has misses":
            hit = {m.image for m in self.matches.misses_at(threshold)}
        else:
            raise ValueError(f"unknown filter '{name}'; use one of {', '.join(FILTERS)}")
        return [i for i in order if i in hit]

    def filters(self) -> list[str]:
        """The Browse filters that make sense for this task."""
        if self.task == "classification":
            return ["worst first", "misclassified"]
        if self.task == "detection":
            return ["worst first", "has false positives", "has misses"]
        return ["worst first"]

    # ------------------------------------------------------------------ per image
    def image_iou(self, image: int) -> float | None:
        """Segmentation: the image's mean IoU over the classes present (None when none is)."""
        values = [v for v in (self.images[image].get("iou") or {}).values() if v is not None]
        return float(np.mean(values)) if values else None

    def truth_found_at(self, image: int) -> dict[int, float]:
        """Detection: each ground-truth box of the image -> the score of the prediction that found it."""
        found: dict[int, float] = {}
        for p in self.images[image].get("predictions") or []:
            if p["outcome"] == "tp" and p.get("matched_annotation") is not None:
                a = int(p["matched_annotation"])
                found[a] = max(found.get(a, NEVER), float(p["score"]))
        return {
            int(a["annotation_id"]): found.get(int(a["annotation_id"]), NEVER)
            for a in self.images[image].get("annotations") or []
        }


def engine_eval_command(run_id: str, workspace: str | None, tracking_uri: str | None) -> list[str]:
    """``python -m engine eval RUN_ID`` as the app runs it (the Evaluate tab, and run B of a comparison)."""
    command = [sys.executable, "-u", "-m", "engine", "eval", run_id]
    if workspace:
        command += ["--workspace", str(workspace)]
    if tracking_uri:
        command += ["--tracking-uri", tracking_uri]
    return command
