"""An export's labels and COCO category ids: the checkpoint's, never the dataset's as it is now.

A dataset edited after training (categories renumbered, reordered, added) must not change
what an export calls its classes. Names and ids come from the checkpoint's hyper-parameters
(``id2label``, ``category_ids``), as ``predict RUN_ID`` takes them. A checkpoint that holds
no ids (classification and segmentation runs store only names) gets each name's id from the
dataset, and a name the dataset no longer has is refused. The dataset's labels are also
translated to the checkpoint's for the parity check, by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .manifest import ExportError

if TYPE_CHECKING:
    from engine.data.coco_index import CocoIndex


@dataclass
class ExportLabels:
    id2label: dict[int, str]  # the checkpoint's label -> name
    label_to_category_id: dict[int, int]  # the checkpoint's label -> COCO category id (no background)
    truth_map: np.ndarray | None  # dataset label now -> checkpoint label (-1: none); None when identical
    category_map: dict[int, int] | None  # dataset category id now -> checkpoint's id; None when identical
    note: str | None = None  # said to the user when the dataset changed since training


def checkpoint_labels(task: str, module: Any, index: CocoIndex) -> ExportLabels:
    """The labels of ``module`` (a loaded checkpoint) for an export; ``index`` is the dataset now."""
    hparams = dict(getattr(module, "hparams", {}) or {})
    id2label = {int(k): str(v) for k, v in (hparams.get("id2label") or module.model.config.id2label).items()}
    offset = 1 if task == "segmentation" else 0  # segmentation's label 0 is background, no category
    labels = [k for k in sorted(id2label) if k >= offset]
    now_id_of_name: dict[str, int] = {}
    for cid, name in zip(index.category_ids.tolist(), index.category_names):
        now_id_of_name.setdefault(name, int(cid))
    stored = hparams.get("category_ids")
    if stored:
        if len(stored) != len(labels):
            raise ExportError(f"the checkpoint's category_ids ({len(stored)}) and its {len(labels)} labels differ")
        ids = [int(c) for c in stored]
    else:
        missing = [f"'{id2label[k]}' (label {k})" for k in labels if id2label[k] not in now_id_of_name]
        if missing:
            raise ExportError(
                f"{index.name}: the checkpoint's categories {', '.join(missing)} are no longer in the dataset, and "
                f"the checkpoint holds names only (no COCO ids): restore them to export, or retrain"
            )
        ids = [now_id_of_name[id2label[k]] for k in labels]
    label_to_category_id = dict(zip(labels, ids))

    label_of_name = {name: k for k, name in id2label.items() if k >= offset}
    now_labels = [label_of_name.get(name, -1) for name in index.category_names]
    truth = np.array(([0] if offset else []) + now_labels, dtype=np.int64)
    truth_map = None if np.array_equal(truth, np.arange(len(truth))) and len(truth) == len(id2label) else truth
    category_map = {
        int(cid): label_to_category_id[label_of_name[name]]
        for cid, name in zip(index.category_ids.tolist(), index.category_names)
        if name in label_of_name
    }
    same_ids = (
        all(category_map.get(c) == c for c in label_to_category_id.values())
        and len(category_map) == index.num_categories
    )
    note = None
    if truth_map is not None or not same_ids:
        note = (
            f"{index.name} changed since training (categories now "
            f"{', '.join(f'{c}={n}' for c, n in zip(index.category_ids.tolist(), index.category_names))}): "
            "the export keeps the checkpoint's labels and ids "
            f"({', '.join(f'{c}={id2label[k]}' for k, c in label_to_category_id.items())})"
        )
    return ExportLabels(id2label, label_to_category_id, truth_map, None if same_ids else category_map, note)
