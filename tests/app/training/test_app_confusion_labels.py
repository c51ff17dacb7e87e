"""The confusion matrix's class names never run into one another
("circlesquaretriangleblob"), at any class count and window size."""

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF

from app.training.confusion_view import ConfusionMatrixView


def _view(qtbot, names, size):
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    n = len(names)
    view.set_matrix(np.arange(n * n).reshape(n, n), names)
    return view


def _apart(labels):
    for a, b in itertools.combinations(labels, 2):
        assert not a.rect.intersects(b.rect), (a.text, a.rect, b.text, b.rect)


def _inside(view, layout):
    frame = QRectF(view.rect())
    for label in layout.rows + layout.columns:
        assert frame.contains(label.rect), (label.text, label.rect, frame)
        assert not label.rect.intersects(layout.grid), (label.text, label.rect)


def test_a_few_short_names_are_written_whole_and_upright(qtbot):
    names = ["circle", "square", "triangle", "blob"]
    view = _view(qtbot, names, (420, 300))
    layout = view.layout_labels()
    assert [label.text for label in layout.rows] == names
    assert [label.text for label in layout.columns] == names
    assert not any(label.turned for label in layout.columns)
    _apart(layout.rows)
    _apart(layout.columns)
    _inside(view, layout)


@pytest.mark.parametrize("count,size", [(4, (260, 220)), (12, (300, 240)), (40, (420, 300)), (200, (600, 500))])
def test_many_long_names_never_overlap_and_stay_in_the_widget(qtbot, count, size):
    names = [f"a-rather-long-category-name-{k:03d}" for k in range(count)]
    view = _view(qtbot, names, size)
    layout = view.layout_labels()
    assert layout.rows and layout.columns
    _apart(layout.rows)
    _apart(layout.columns)
    _inside(view, layout)
    # Names cut short say so (an ellipsis) and keep their ends, which tell them apart; the whole
    # name is one hover away.
    for label in layout.rows + layout.columns:
        full = names[label.index]
        head, dots, tail = label.text.partition("…")
        assert label.text == full or (dots and full.startswith(head) and full.endswith(tail) and tail), label.text
    grid = layout.grid
    row, col = view.cell_at(QPointF(grid.left() + 0.5 * layout.cell, grid.bottom() - 0.5 * layout.cell))
    assert (row, col) == (count - 1, 0)
    view.grab()  # paints without error


def test_the_run_summary_draws_its_matrix_with_that_view(qtbot):
    from app.training.runs_view import RunSummary

    summary = RunSummary()
    qtbot.addWidget(summary)
    summary.resize(700, 320)
    summary.show()
    summary.show_summary(
        {
            "run_id": "abcdef123456",
            "status": "FINISHED",
            "task": "classification",
            "metrics": {"val/accuracy": 0.5},
            "confusion": {
                "matrix": [[3, 1, 0, 0], [0, 2, 1, 0], [0, 0, 4, 0], [1, 0, 0, 2]],
                "labels": ["circle", "square", "triangle", "blob"],
            },
        }
    )
    assert not summary.heat.isHidden()
    layout = summary.matrix.layout_labels()
    assert [label.text for label in layout.columns] == ["circle", "square", "triangle", "blob"]
    _apart(layout.columns)
