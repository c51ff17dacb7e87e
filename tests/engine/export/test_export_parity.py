"""Parity's decision matching: one to one, robust to near-tied scores and near-threshold boxes."""

from engine.export.parity import Tolerance, detection_agreement


def _det(box, score, category=1, image=1):
    return {"image_id": image, "category_id": category, "bbox": list(box), "score": score}


def test_near_tied_scores_cannot_steal_a_partner():
    """Equal outputs listed in another order: the first reference box also overlaps the other side's
    second box enough to pair with it, which leaves its own partner without one under a greedy match."""
    ref = [_det((0, 0, 10, 10), 0.5000), _det((0, 0, 10, 8.5), 0.5001)]
    other = [_det((0, 0, 10, 9.2), 0.5004), _det((0, 0, 10, 10), 0.5000)]
    # 0.5 with a greedy match (the ref's first box takes the 9.2 one, the 8.5 one overlaps the 10 one 0.85)
    assert detection_agreement(ref, other, Tolerance()) == 1.0


def test_a_box_just_below_the_other_sides_threshold_is_excused_a_real_one_is_not():
    ref = [_det((0, 0, 10, 10), 0.9), _det((20, 20, 5, 5), 0.0505)]
    other = [_det((0, 0, 10, 10), 0.9)]  # the second box fell to 0.0495 on this side: below min_score 0.05
    assert detection_agreement(ref, other, Tolerance(), min_score=0.05) == 1.0
    missing = [_det((0, 0, 10, 10), 0.9), _det((20, 20, 5, 5), 0.6)]
    assert detection_agreement(missing, other, Tolerance(), min_score=0.05) == 2 / 3


def test_class_image_and_overlap_must_agree():
    ref = [_det((0, 0, 10, 10), 0.8)]
    assert detection_agreement(ref, [_det((0, 0, 10, 10), 0.8, category=2)], Tolerance()) == 0.0
    assert detection_agreement(ref, [_det((0, 0, 10, 10), 0.8, image=2)], Tolerance()) == 0.0
    assert detection_agreement(ref, [_det((3, 0, 10, 10), 0.8)], Tolerance()) == 0.0
    assert detection_agreement(ref, [_det((0, 0, 10, 10), 0.7)], Tolerance()) == 0.0  # a real score change
    assert detection_agreement([], [], Tolerance()) == 1.0


def test_boxes_clamped_flat_at_the_border_match_where_they_lie():
    flat = _det((2, 110, 17, 0), 0.2)
    assert detection_agreement([flat], [_det((2.1, 110, 17, 0), 0.2)], Tolerance()) == 1.0
    assert detection_agreement([flat], [_det((40, 110, 17, 0), 0.2)], Tolerance()) == 0.0
