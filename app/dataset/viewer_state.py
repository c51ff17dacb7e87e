"""What the Image tab shows, as a Qt-free state: which image among which, layers, categories,
the selected annotation, whether the view follows the fit, and what to say about it all.

The state owns no widget and draws nothing: it says what changed (``visibility_changed``,
``selection_changed``, ``position_changed``) and the views follow. Annotations are named by
their COCO id; their fields are read from the index (``engine.data.coco_index``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from engine.data.coco_index import SEG_POLYGON, SEG_RLE, CocoIndex
from engine.data.health import plural

from .predictions import Prediction, above, missed
from .session import DatasetSession, ImageRef

LAYERS = ("boxes", "masks", "labels")
LAYER_OF_KIND = {
    "box": "boxes",
    "polygon": "masks",
    "mask": "masks",
    "label": "labels",
    "pred_box": "boxes",
    "pred_frame": "boxes",  # a classification's prediction: a frame around the whole image
    "pred_mask": "masks",
    "pred_label": "labels",
    "miss_box": "boxes",  # a run's evaluation: a ground-truth box no prediction above the threshold found
    "miss_label": "labels",
}
DEFAULT_MIN_SCORE = 0.5
DEFAULT_PREDICTION_OPACITY = 0.45


class Callbacks:
    """A plain change notice: ``connect`` a callable, ``emit`` calls each with the arguments."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


def category_name(index: CocoIndex, ann_row: int) -> str:
    """An annotation's category as the views name it (an id the file does not declare is said so)."""
    label = int(index.ann_label[ann_row])
    if label < 0:
        return f"unknown category {int(index.ann_category_id[ann_row])}"
    return index.category_names[label]


def annotation_fields(index: CocoIndex, ann_row: int) -> dict:
    """The fields the info panel shows for one annotation."""
    kind = int(index.ann_seg_kind[ann_row])
    if kind == SEG_POLYGON:
        polys = index.polygons(ann_row)
        segmentation = f"polygon ({len(polys)} part{'s' if len(polys) != 1 else ''})"
    elif kind == SEG_RLE:
        counts = (index.segmentation(ann_row) or {}).get("counts")
        segmentation = "RLE (uncompressed)" if isinstance(counts, list) else "RLE (compressed)"
    else:
        segmentation = "none"
    area = float(index.ann_area[ann_row])
    return {
        "id": int(index.ann_ids[ann_row]),
        "category": category_name(index, ann_row),
        "category_id": int(index.ann_category_id[ann_row]),
        "bbox": [float(v) for v in index.ann_bbox[ann_row]],
        "area": None if math.isnan(area) else area,
        "iscrowd": int(index.ann_iscrowd[ann_row]),
        "segmentation": segmentation,
    }


def fields_text(fields: dict, *, selected: bool) -> str:
    """``annotation_fields`` as the info panel's lines."""
    box = fields["bbox"]
    bbox = "missing" if math.isnan(box[0]) else "x {:.1f}, y {:.1f}, w {:.1f}, h {:.1f}".format(*box)
    area = "missing" if fields["area"] is None else f"{fields['area']:.1f}"
    mark = "  (selected)" if selected else ""
    return (
        f"id: {fields['id']}{mark}\ncategory: {fields['category']} (id {fields['category_id']})\n"
        f"bbox: {bbox}\narea: {area}\niscrowd: {fields['iscrowd']}\n"
        f"segmentation: {fields['segmentation']}"
    )


class ViewerState:
    """The current image and where it sits in the list walked by next/previous, and what is shown of it."""

    def __init__(self) -> None:
        self.session: DatasetSession | None = None
        self.ref: ImageRef | None = None
        self.refs: list[ImageRef] = []
        self.position = -1  # of ``ref`` in ``refs``; -1 when not among them
        self.layers = {name: True for name in LAYERS}
        self.categories: dict[str, bool] = {}  # name -> shown; a name not listed is shown
        self.selected: int | None = None  # annotation id
        self.fitted = True  # the zoom follows the fit (view resizes, new images) until the user zooms
        self.loading = False  # the image's pixels are on their way
        self.notes: list[str] = []  # about the image file (size mismatch, masks not drawn)
        # Predictions drawn over the images of one session (a results file of `lightbox predict`).
        self.predictions: dict[ImageRef, list[Prediction]] = {}
        self.predictions_session: DatasetSession | None = None
        self.predictions_source = ""  # the results file, as the panel names it
        self.min_score = DEFAULT_MIN_SCORE
        self.show_truth = True
        self.show_predictions = True
        self.prediction_opacity = DEFAULT_PREDICTION_OPACITY
        self.visibility_changed = Callbacks()  # ()
        self.predictions_changed = Callbacks()  # (): other predictions, or none
        self.selection_changed = Callbacks()  # (previous id or None, new id or None)
        self.position_changed = Callbacks()  # ()

    # ------------------------------------------------------------------ which image
    def set_refs(self, refs: list[ImageRef], current: ImageRef | None = None) -> None:
        """The images next/previous walk through, and where in them we are."""
        self.refs = list(refs)
        self.position = self.refs.index(current) if current in self.refs else (0 if self.refs else -1)
        self.position_changed.emit()

    def step(self, delta: int) -> ImageRef | None:
        """Move ``delta`` places through the list; the ref moved to, or None past either end."""
        target = self.position + delta
        if not 0 <= target < len(self.refs):
            return None
        self.position = target
        return self.refs[target]

    def show(self, session: DatasetSession, ref: ImageRef) -> bool:
        """Make ``ref`` current: nothing selected, no notes, fitted, loading. True when the session is new."""
        new_session = session is not self.session
        self.session, self.ref = session, ref
        if ref in self.refs:
            self.position = self.refs.index(ref)
        self.selected = None
        self.notes = []
        self.loading = True
        return new_session

    def can_go(self, delta: int) -> bool:
        return 0 <= self.position + delta < len(self.refs)

    def position_text(self) -> str:
        """ "3 / 40   train / name.jpg", or "No image"."""
        if self.ref is None:
            return "No image"
        n = len(self.refs)
        where = f"{self.position + 1} / {n}   " if 0 <= self.position < n else ""
        name = self.session.index(self.ref.split).file_names[self.ref.row] if self.session else ""
        return f"{where}{self.ref.split} / {name}"

    # ------------------------------------------------------------------ what is shown
    def set_layer_visible(self, layer: str, visible: bool) -> None:
        """Show or hide all 'boxes', 'masks' (polygons and RLE) or 'labels'."""
        if layer not in self.layers:
            raise ValueError(f"unknown layer '{layer}'; use one of {', '.join(LAYERS)}")
        self.layers[layer] = visible
        self.visibility_changed.emit()

    def set_category_visible(self, name: str, visible: bool) -> None:
        self.categories[name] = visible
        self.visibility_changed.emit()

    def is_category_visible(self, name: str) -> bool:
        return self.categories.get(name, True)

    def is_shown(self, kind: str, category: str) -> bool:
        """Whether a ground-truth overlay of ``kind`` ('box', 'polygon', 'mask', 'label') of ``category`` is drawn."""
        return self.show_truth and self.layers[LAYER_OF_KIND[kind]] and self.is_category_visible(category)

    def is_prediction_shown(self, kind: str, category: str, score: float) -> bool:
        """Whether a prediction's overlay of ``kind`` ('pred_box', 'pred_mask', ...) is drawn; a missed box
        ('miss_box', 'miss_label': ``score`` is the score that found it) while the threshold is above that."""
        found = score < self.min_score if kind.startswith("miss_") else score >= self.min_score
        return (
            self.show_predictions and found and self.layers[LAYER_OF_KIND[kind]] and self.is_category_visible(category)
        )

    # ------------------------------------------------------------------ predictions
    def set_predictions(self, session: DatasetSession, by_ref: dict[ImageRef, list[Prediction]], source: str) -> None:
        """Draw ``by_ref`` over ``session``'s images (replacing any predictions before)."""
        self.predictions, self.predictions_session, self.predictions_source = dict(by_ref), session, source
        self.show_predictions = True
        self.predictions_changed.emit()

    def clear_predictions(self) -> None:
        self.predictions, self.predictions_session, self.predictions_source = {}, None, ""
        self.predictions_changed.emit()

    @property
    def has_predictions(self) -> bool:
        return self.predictions_session is not None

    def predictions_of(self, ref: ImageRef | None) -> list[Prediction]:
        """The current session's predictions for ``ref`` (none for another session's images)."""
        if ref is None or self.session is None or self.session is not self.predictions_session:
            return []
        return self.predictions.get(ref, [])

    def set_min_score(self, score: float) -> None:
        self.min_score = min(max(float(score), 0.0), 1.0)
        self.visibility_changed.emit()

    def set_truth_visible(self, visible: bool) -> None:
        self.show_truth = visible
        self.visibility_changed.emit()

    def set_predictions_visible(self, visible: bool) -> None:
        self.show_predictions = visible
        self.visibility_changed.emit()

    def set_prediction_opacity(self, opacity: float) -> None:
        self.prediction_opacity = min(max(float(opacity), 0.0), 1.0)
        self.visibility_changed.emit()

    def predictions_text(self) -> str:
        """ "7 of 20 predictions of this image with score ≥ 0.50" (or why none is drawn)."""
        if not self.has_predictions:
            return ""
        found = self.predictions_of(self.ref)
        if self.ref is not None and self.ref not in self.predictions:
            return "This image was not predicted."
        kept = above(found, self.min_score)
        total = sum(p.outcome != "fn" for p in found)
        text = f"{len(kept)} of {plural(total, 'prediction')} with score ≥ {self.min_score:.2f}"
        if any(p.outcome for p in found):
            false = sum(p.outcome == "fp" for p in kept)
            text += f": {len(kept) - false} TP, {false} FP"
            if any(p.outcome == "fn" for p in found):  # detection: its ground truth boxes are listed too
                text += f", {len(missed(found, self.min_score))} missed"
        return text if self.show_predictions else text + " (hidden)"

    def select(self, ann_id: int | None) -> None:
        previous, self.selected = self.selected, ann_id
        self.selection_changed.emit(previous, ann_id)

    # ------------------------------------------------------------------ what is said
    def image_lines(self, shown_name: str, annotations: int) -> list[str]:
        """The Image box's lines about the current image (``shown_name``: its file name, maybe elided)."""
        index = self.session.index(self.ref.split)
        row = self.ref.row
        lines = [
            f"{shown_name} (id {int(index.image_ids[row])}, {self.ref.split})",
            f"JSON size: {int(index.image_width[row])}×{int(index.image_height[row])}",
            plural(annotations, "annotation") + (" — loading image…" if self.loading else ""),
        ]
        lines += self.notes
        problems = self.session.problems_of(self.ref)
        if problems:
            lines.append(f"{plural(len(problems), 'problem')}:")
            lines += [f"• {p.message}" for p in problems[:5]]
            if len(problems) > 5:
                lines.append(f"… and {len(problems) - 5} more (see Health)")
        return lines
