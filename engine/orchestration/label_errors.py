"""Find the labels that are probably wrong: out-of-fold predictions from K ordinary training runs.

The chosen split's images are dealt into K folds (stratified by each image's class, the same
for the same seed); fold k's run trains on the other K-1 folds and is then scored on fold k,
so no image is scored by a model that trained on it. Each fold is an ordinary Lightbox run
(:func:`engine.orchestration.training.train`) on a small dataset folder written under the
workspace: two COCO files cut from the split's (the user's files are never touched) and a
link to the split's image folder. The fold runs are children (``mlflow.parentRunId``) of one
run tagged as a search and as a label-error search, so the app charts them like a search's
trials; the parent keeps errors.json as an artifact.

``--run RUN_ID`` skips the training: a finished run's validation split is what it did not
train on, and its best checkpoint scores it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import RunConfig
from engine.orchestration.errors import TrainingError
from engine.orchestration.label_error_scores import (
    FoldRunFailed,
    HeldOut,
    check_task,
    predict_held_out,
    score,
    write_errors,
)
from engine.tracking.tags import (
    FOLD_TAG,
    LABEL_ERRORS_FILE_TAG,
    LABEL_ERRORS_TAG,
    PARENT_RUN_TAG,
    SEARCH_TAG,
    TASK_TAG,
)

DEFAULT_FOLDS = 4
#: under the workspace: one folder per label-error search, holding its folds' datasets
FOLDS_FOLDER = "label_errors"


@dataclass
class LabelErrorsResult:
    errors_file: Path
    entries: list[dict[str, Any]]
    parent_run_id: str | None = None
    fold_run_ids: tuple[str, ...] = ()
    fold_of_image: dict[int, int] | None = None  # image id -> the fold that held it out


def assign_folds(image_ids: np.ndarray, strata: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of each image: each stratum (class) is shuffled by ``seed`` and dealt round the
    folds, carrying on where the previous stratum stopped, so folds differ in size by one at most."""
    fold = np.zeros(len(image_ids), np.int64)
    rng = np.random.default_rng(seed)
    next_fold = 0
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        members = members[np.argsort(image_ids[members], kind="stable")]  # independent of the file's order
        members = members[rng.permutation(len(members))]
        fold[members] = (next_fold + np.arange(len(members))) % folds
        next_fold = (next_fold + len(members)) % folds
    return fold


def chosen_split(config: RunConfig, split: str | None):
    """The split whose labels are checked: ``split``, else the run's training split."""
    from engine.data.folders import find_splits
    from engine.data.split_check import pick_training_splits

    if not config.data.path:
        raise TrainingError("data.path: no dataset (pass --data DIR or a --config with data.path)")
    folder = find_splits(Path(config.data.path).expanduser())
    if split is not None:
        return folder.split(split)
    return pick_training_splits(folder, config.data.train_split, None)[0]


def write_fold_dataset(folder: Path, index: Any, train_rows: np.ndarray, held_rows: np.ndarray, image_dir: Path):
    """A dataset folder in COCO's layout: the training folds, the held-out fold, and a link to the images."""
    annotations = folder / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    index.subset(train_rows).save(annotations / "instances_train.json")
    index.subset(held_rows).save(annotations / "instances_val.json")
    images = folder / "images"
    if not images.exists():
        try:
            os.symlink(image_dir.resolve(), images, target_is_directory=True)
        except OSError as exc:
            raise TrainingError(
                f"{images}: cannot link the split's images ({image_dir}) into the fold's folder: {exc}"
            ) from None
    return folder


def find_label_errors(
    config: RunConfig,
    *,
    folds: int = DEFAULT_FOLDS,
    split: str | None = None,
    out: str | Path = "errors.json",
    ranking: str = "self_confidence",
    tracking_uri: str | None = None,
    progress: bool = False,
) -> LabelErrorsResult:
    """Train ``folds`` runs on K-1 folds of the split each, score the held-out folds, write ``out``."""
    from engine.data.coco_index import CocoIndex
    from engine.data.splits import primary_labels
    from engine.orchestration.run_folder import check_tracking, open_run, workspace_of
    from engine.tracking.store import resolve_tracking_uri

    check_task(config.task.name)
    if folds < 2:
        raise TrainingError(f"--folds {folds}: out-of-fold predictions need at least 2 folds")
    source = chosen_split(config, split)
    index = CocoIndex.load(source.annotation_file)
    if folds > index.num_images:
        raise TrainingError(
            f"--folds {folds}: the {source.name} split ({source.annotation_file}) has only {index.num_images} "
            "images; every fold needs at least one"
        )
    strata = primary_labels(index, config.data.classification_label_rule)
    fold_of = assign_folds(index.image_ids, strata, folds, config.data.split_seed)
    workspace = workspace_of(config)
    uri = resolve_tracking_uri(tracking_uri or config.tracking.uri, workspace)
    check_tracking(uri)
    parent = open_run(
        uri,
        workspace,
        experiment=config.tracking.experiment,
        run_name=config.tracking.run_name or "label-errors",
        run_id=None,
        tags={SEARCH_TAG: "true", LABEL_ERRORS_TAG: "true", TASK_TAG: config.task.name},
    )
    with parent:
        parent.log_params(
            {"label_errors.folds": folds, "label_errors.split": source.name, "label_errors.ranking": ranking}
        )
        parent.log_config(config.to_yaml())
        root = workspace / FOLDS_FOLDER / parent.run_id
        held_out: HeldOut | None = None
        run_ids = []
        for k in range(folds):
            fold_dir = write_fold_dataset(
                root / f"fold-{k}", index, np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k), source.image_dir
            )
            run_id, fold_predictions = _train_and_predict(
                config, fold_dir, k, folds, parent.run_id, uri, workspace, progress
            )
            run_ids.append(run_id)
            if held_out is None:
                held_out = fold_predictions
            else:
                held_out.extend(fold_predictions)
            parent.log_metrics({"folds_done": k + 1}, k)
        assert held_out is not None
        entries = score(held_out, ranking)
        path = write_errors(
            out,
            held_out,
            entries,
            source={"parent_run_id": parent.run_id, "fold_run_ids": run_ids, "run_id": None},
            data={
                "path": str(Path(config.data.path or "").expanduser().resolve()),
                "split": source.name,
                "annotation_file": str(source.annotation_file.resolve()),
            },
            ranking=ranking,
        )
        parent.set_tag(LABEL_ERRORS_FILE_TAG, str(path.resolve()))
        parent.log_metrics({"label_errors/issues": sum(e["issue"] for e in entries)}, 0)
        parent.log_artifact(path)
    fold_of_image = {int(i): int(f) for i, f in zip(index.image_ids.tolist(), fold_of.tolist())}
    return LabelErrorsResult(path, entries, parent.run_id, tuple(run_ids), fold_of_image)


def _train_and_predict(
    config: RunConfig,
    fold_dir: Path,
    k: int,
    folds: int,
    parent_run_id: str,
    uri: str,
    workspace: Path,
    progress: bool,
) -> tuple[str, HeldOut]:
    """Fold ``k``'s ordinary training run, then its best checkpoint's predictions on the held-out fold."""
    from engine.orchestration.evaluate import run_files
    from engine.orchestration.training import train

    name = f"{config.tracking.run_name or 'label-errors'}-fold{k}"
    fold_config = config.with_overrides(
        {
            "data.path": str(fold_dir),
            "data.train_split": "train",
            "data.val_split": "val",
            "tracking.run_name": name,
            "tracking.uri": uri,
            "workspace": str(workspace),
        }
    )
    print(f"fold {k + 1}/{folds}: training on the other {folds - 1} folds", file=sys.stderr, flush=True)
    result = train(
        fold_config, tracking_uri=uri, progress=progress, tags={PARENT_RUN_TAG: parent_run_id, FOLD_TAG: str(k)}
    )
    if result.status != "FINISHED":
        raise FoldRunFailed(f"fold {k}: run {result.run_id} ended {result.status}: {result.message or 'see its log'}")
    run_config, _, checkpoint, _ = run_files(result.run_id, uri, str(workspace))
    return result.run_id, predict_held_out(run_config, checkpoint)


def score_run(
    run_id: str,
    *,
    out: str | Path = "errors.json",
    ranking: str = "self_confidence",
    tracking_uri: str | None = None,
    workspace: str | None = None,
) -> LabelErrorsResult:
    """Score the images a finished run did not train on (its validation split) with its best checkpoint."""
    from engine.orchestration.evaluate import run_files

    config, _, checkpoint, _ = run_files(run_id, tracking_uri, workspace)
    check_task(config.task.name)
    held_out = predict_held_out(config, checkpoint)
    entries = score(held_out, ranking)
    path = write_errors(
        out,
        held_out,
        entries,
        source={"run_id": run_id, "checkpoint": str(checkpoint), "parent_run_id": None, "fold_run_ids": []},
        data={"path": str(config.data.path), "split": "val"},
        ranking=ranking,
    )
    return LabelErrorsResult(path, entries)


__all__ = ["DEFAULT_FOLDS", "LabelErrorsResult", "assign_folds", "find_label_errors", "score_run"]
