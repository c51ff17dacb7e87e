"""A run's evaluation laid over the open dataset (no Qt): which dataset image each evaluated image is,
and its predictions as the Image view draws them, each marked true or false positive (with why),
plus its ground-truth boxes marked with the score that found them (missed below it)."""

from __future__ import annotations

import os

from app.dataset.predictions import Prediction
from app.dataset.session import DatasetSession, ImageRef

from .evaluation_model import Evaluation


def image_refs(evaluation: Evaluation, session: DatasetSession) -> list[ImageRef | None]:
    """The dataset image of each evaluated image (by id and file name), None for one not in ``session``.

    The split the evaluation names is looked in first, then the others (a dataset with one split)."""
    split = str(evaluation.data.get("split") or "")
    order = [split] if split in session.splits else []
    order += [s for s in session.splits if s not in order]
    names = {s: session.index(s).file_names for s in order}
    refs: list[ImageRef | None] = []
    for image in evaluation.images:
        image_id, file_name = int(image.get("image_id", -1)), os.path.normpath(str(image.get("file_name", "")))
        found = None
        for s in order:
            ref = session.find_image(s, image_id)
            if ref is not None and (not file_name or os.path.normpath(names[s][ref.row]) == file_name):
                found = ref
                break
        refs.append(found)
    return refs


def overlay_predictions(evaluation: Evaluation, image: int) -> list[Prediction]:
    """What the Image view draws of one evaluated image, outcomes included."""
    record = evaluation.images[image]
    if evaluation.task == "classification":
        predicted = record.get("predicted")
        correct = predicted == record.get("label")
        return [
            Prediction(
                evaluation.class_name(predicted),
                float(record.get("score") or 0.0),
                predicted,
                outcome="tp" if correct else "fp",
                reason=None if correct else f"misclassified, truth {evaluation.class_name(record.get('label'))}",
            )
        ]
    if evaluation.task != "detection":
        return []
    found = [
        Prediction(
            evaluation.class_name(p["category_id"]),
            float(p["score"]),
            int(p["category_id"]),
            tuple(float(v) for v in p["bbox"]),  # type: ignore[arg-type]
            outcome=p["outcome"],
            reason=p.get("reason"),
        )
        for p in record.get("predictions") or []
    ]
    found_at = evaluation.truth_found_at(image)
    for a in record.get("annotations") or []:
        found.append(
            Prediction(
                evaluation.class_name(a["category_id"]),
                found_at[int(a["annotation_id"])],
                int(a["category_id"]),
                tuple(float(v) for v in a["bbox"]),  # type: ignore[arg-type]
                outcome="fn",
            )
        )
    return found


def overlay_by_ref(evaluation: Evaluation, refs: list[ImageRef | None]) -> dict[ImageRef, list[Prediction]]:
    return {ref: overlay_predictions(evaluation, i) for i, ref in enumerate(refs) if ref is not None}


class PreparedOverlay:
    """An evaluation matched to a session: each image's ref, the Image view's overlay, the Browse errors."""

    def __init__(self, evaluation: Evaluation, session: DatasetSession):
        self.evaluation, self.session = evaluation, session
        self.refs = image_refs(evaluation, session)
        self.by_ref = overlay_by_ref(evaluation, self.refs)
        self.errors = {ref: float(evaluation.errors[i]) for i, ref in enumerate(self.refs) if ref is not None}
        self.matched = sum(ref is not None for ref in self.refs)

    def refs_of(self, images: list[int]) -> list[ImageRef]:
        """The dataset images of evaluated ``images``, in their order (those not in the dataset left out)."""
        return [ref for ref in (self.refs[i] for i in images) if ref is not None]

    def browse_lists(self, threshold: float) -> dict[str, list[ImageRef]]:
        """Browse's run lists at a detection threshold (each worst first)."""
        return {
            name: self.refs_of(self.evaluation.filter_images(name, threshold)) for name in self.evaluation.filters()
        }
