"""How far an ONNX export may differ from its checkpoint before it is refused.

Apart from ``parity`` (which needs torch) so that a form can show the defaults without it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Tolerance:
    metric: float = 0.01  # largest |ONNX - checkpoint| of the task metric (mAP, accuracy, mIoU)
    per_class: float = 0.05  # ... of any one class's AP / F1 / IoU (few images per class: coarser steps)
    atol: float | None = None  # largest raw-output difference; None: reported, not enforced
    min_agreement: float | None = None  # smallest share of matched decisions; None: reported only
    iou: float = 0.9  # two detections are one decision when class equal, IoU at least this ...
    score_atol: float = 1e-3  # ... and scores this close; also the band of a near-tie
