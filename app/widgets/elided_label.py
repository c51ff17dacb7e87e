"""A one-line label that elides its text to the room it has (the tooltip keeps it whole).

A plain QLabel asks for its text's full width, so one long file name can force a window
wider than the screen; this one asks for a few characters and re-elides on every resize.

File names of one dataset often share a long start ("2019_YELLOWSTONE_tile_0_0.png",
"2019_YELLOWSTONE_tile_0_1.png", ...): cut in the middle they all read the same.
``elide_name`` cuts the shared start instead and keeps the part that tells a name apart;
``distinct_start`` finds where that part begins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics, QFontMetricsF
from PySide6.QtWidgets import QLabel, QSizePolicy

ELLIPSIS = "…"


def distinct_start(name: str, others: Iterable[str]) -> int:
    """Where ``name`` stops sharing its start with any of ``others``, moved back to the start of
    that word or number ("tile_12" beside "tile_13" starts at "12", not at "2").

    Given a few neighbours rather than every name, the answer can only be earlier than the
    true one, so the part it keeps always holds what tells the name apart.
    """
    shared = max((len(os.path.commonprefix([name, other])) for other in others if other != name), default=0)
    start = min(shared, len(name))
    while start > 0 and name[start - 1].isalnum():
        start -= 1
    return start


def elide_name(text: str, metrics: QFontMetrics | QFontMetricsF, width: float, distinct_from: int = 0) -> str:
    """``text`` in ``width`` pixels. The part from ``distinct_from`` on stays whole when it fits
    (what comes before it is cut at its start); otherwise the start and end of that part stay.
    With ``distinct_from`` 0, the middle is cut, as Qt does."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    width = int(width)
    if distinct_from <= 0:
        return metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, width)
    tail = text[distinct_from:]
    if metrics.horizontalAdvance(ELLIPSIS + tail) <= width:
        return metrics.elidedText(text, Qt.TextElideMode.ElideLeft, width)
    room = width - int(metrics.horizontalAdvance(ELLIPSIS)) - 1
    return ELLIPSIS + metrics.elidedText(tail, Qt.TextElideMode.ElideMiddle, max(room, 1))


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle, parent=None) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self._distinct_from = 0
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def setText(self, text: str, distinct_from: int = 0) -> None:  # noqa: N802 (Qt's name)
        """``distinct_from``: where the part that tells this text from its siblings starts
        (``distinct_start``); that part is kept, the start is cut."""
        self._full = text
        self._distinct_from = distinct_from
        self.setToolTip(text if text else "")
        self._elide()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().averageCharWidth() * 8), hint.height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(int(QFontMetricsF(self.font()).horizontalAdvance(self._full)) + 4, super().sizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = max(1, self.contentsRect().width())
        metrics = QFontMetricsF(self.font())
        if self._distinct_from > 0:
            super().setText(elide_name(self._full, metrics, room, self._distinct_from))
        else:
            super().setText(metrics.elidedText(self._full, self._mode, room))
