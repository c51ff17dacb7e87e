"""A message strip above a view: an error or a warning, with a close button.

The owner shows it for a cause and clears it when that cause is gone (``clear(cause)`` only
hides the banner if it still shows that cause), so a stale message never outlives its reason.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

_STYLES = {
    "error": "background: #fdecea; color: #8a1c1c; border: 1px solid #f5c2c0;",
    "warning": "background: #fff4e5; color: #7a4b00; border: 1px solid #f7d9a8;",
}


class Banner(QWidget):
    dismissed = Signal()

    def __init__(self, object_name: str = "errorBanner", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.cause: str | None = None
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 4, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self._apply_style("error")
        self.hide()

    def _apply_style(self, kind: str) -> None:
        self.setStyleSheet(f"#{self.objectName()} {{ {_STYLES[kind]} }}")

    def show_message(self, text: str, kind: str = "error", cause: str | None = None) -> None:
        """Show ``text``; ``cause`` names why, so that ``clear(cause)`` can take it down later."""
        if kind not in _STYLES:
            raise ValueError(f"banner kind must be one of {sorted(_STYLES)}, not {kind!r}")
        self.cause = cause
        self.label.setText(text)
        self._apply_style(kind)
        self.show()

    def text(self) -> str:
        return self.label.text()

    def clear(self, cause: str | None = None) -> None:
        """Hide the banner; with ``cause``, only when it still shows that cause's message."""
        if cause is not None and self.cause != cause:
            return
        self.cause = None
        self.label.clear()
        self.hide()

    def dismiss(self) -> None:
        self.clear()
        self.dismissed.emit()
