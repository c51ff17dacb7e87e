"""The dataset browser: a virtualised thumbnail grid with filters, a class histogram and counts.

Only rows the view paints ask for their thumbnail (``thumbnail_model``), so a
100,000-image dataset costs what one screenful costs. Filtering and sorting
go through ``DatasetSession.select`` (numpy), and the model is reset with the
new list of refs; nothing here reads a file on the GUI thread. The cards are
painted by ``thumbnail_grid``, the category histogram is ``histogram``.

A run's evaluation adds its own lists (``set_run_filters``): "has false positives",
"has misses", "misclassified", a confusion cell's images; each keeps its own order (worst
first, or most confident first), and "worst first" sorts any selection by the run's error.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QSlider,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.data.health import plural

from .histogram import CategoryHistogram
from .session import SORT_KEYS, DatasetSession, ImageRef
from .start_page import StartPage
from .thumbnail_grid import GridView, ThumbnailDelegate
from .thumbnail_model import DEFAULT_THUMB, ThumbnailModel
from .thumbnails import ThumbnailLoader

SEARCH_DELAY_MS = 200
ALL_SPLITS = "All splits"
ALL_CATEGORIES = "All categories"
ALL_RUN_IMAGES = "All images"
WORST_FIRST = "worst first"  # a sort that exists while a run's evaluation is shown


class DatasetBrowser(QWidget):
    """Filter bar, thumbnail grid, category histogram and a status line over one DatasetSession."""

    image_activated = Signal(object)  # ImageRef: double-click or Enter
    selection_changed = Signal(object)  # ImageRef: the current image moved

    def __init__(self, parent=None, *, loader: ThumbnailLoader | None = None):
        super().__init__(parent)
        self.session: DatasetSession | None = None
        self.model = ThumbnailModel(loader, self)
        self.loader = self.model.loader

        self.split_combo = QComboBox()
        self.category_combo = QComboBox()
        self.category_combo.setMinimumContentsLength(10)
        self.split_combo.setToolTip("Split")
        self.category_combo.setToolTip("Category")
        self.category_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.problems_check = QCheckBox("Problems only")
        self.problems_check.setToolTip("Show only the images the health check found problems in")
        self.sort_combo = QComboBox()
        self.sort_combo.addItems(list(SORT_KEYS))
        # A run's evaluation: its lists of images, and each image's error score.
        self.run_label = ""
        self.run_lists: dict[str, list[ImageRef]] = {}
        self.run_errors: dict[ImageRef, float] = {}
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("Images of the evaluated run: where it is wrong")
        self.run_combo.hide()
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(64, 256)
        self.size_slider.setSingleStep(32)
        self.size_slider.setPageStep(32)
        self.size_slider.setValue(DEFAULT_THUMB)
        self.size_slider.setTracking(False)  # re-decode on release, not on every pixel of a drag
        self.size_slider.setFixedWidth(80)
        self.size_slider.setToolTip("Thumbnail size")

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search file names (Ctrl+F)")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setMinimumWidth(100)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)  # filter once typing pauses
        self.search_edit.textChanged.connect(lambda _text: self._search_timer.start())
        self._search_timer.timeout.connect(self._apply_filters)
        self.search_edit.returnPressed.connect(self._apply_filters)
        find = QShortcut(QKeySequence.StandardKey.Find, self)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self.focus_search)

        bar = QHBoxLayout()
        # The combos read "All splits" / "All categories": no captions, so the bar fits 800 px.
        bar.addWidget(self.search_edit, 1)
        bar.addSpacing(6)
        bar.addWidget(self.split_combo)
        bar.addSpacing(6)
        bar.addWidget(self.category_combo)
        bar.addSpacing(8)
        bar.addWidget(self.problems_check)
        bar.addSpacing(6)
        bar.addWidget(self.run_combo)  # no spacing of its own: hidden, it takes no room
        bar.addWidget(QLabel("Sort by:"))
        bar.addWidget(self.sort_combo)
        bar.addStretch(1)
        self.boxes_check = QCheckBox("Boxes")
        self.boxes_check.setToolTip("Draw each image's boxes on its thumbnail")
        self.boxes_check.toggled.connect(self.set_thumbnail_boxes)
        bar.addWidget(self.boxes_check)
        bar.addWidget(self.size_slider)

        self.delegate = ThumbnailDelegate(self.model, self)
        self.view = GridView(self.delegate)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.view.setMouseTracking(True)  # hover highlight
        self.view.setItemDelegate(self.delegate)
        self.view.setModel(self.model)
        self._apply_thumb_size(DEFAULT_THUMB)
        self.no_matches = QLabel(self.view.viewport())
        self.no_matches.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_matches.setWordWrap(True)
        self.no_matches.setStyleSheet("color: #6b6b6b; font-size: 14px; padding: 24px;")
        self.no_matches.hide()

        self.histogram = CategoryHistogram()
        self.histogram.bar_clicked.connect(self.toggle_category)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.view)
        splitter.addWidget(self.histogram)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([520, 170])
        splitter.setChildrenCollapsible(False)

        self.status = QLabel("No dataset open.")
        self.status.setWordWrap(True)  # wraps in a narrow window instead of widening it
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        # Until a dataset is open, Browse offers the ways to open one.
        self.start_page = StartPage()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.start_page)
        self.pages.addWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.pages)

        self.split_combo.currentIndexChanged.connect(self._apply_filters)
        self.category_combo.currentIndexChanged.connect(self._apply_filters)
        self.problems_check.toggled.connect(self._apply_filters)
        self.sort_combo.currentIndexChanged.connect(self._apply_filters)
        self.run_combo.currentIndexChanged.connect(self._apply_filters)
        self.size_slider.valueChanged.connect(self._apply_thumb_size)
        self.view.activated.connect(self._activated)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self._set_filters_enabled(False)

    # ---------------------------------------------------------------- public API
    def set_session(self, session: DatasetSession | None) -> None:
        if session is not self.session:  # a run's lists name the images of the dataset open before
            self._forget_run()
        self.session = session
        self.pages.setCurrentIndex(0 if session is None else 1)
        self.model.set_session(session)
        for combo, first, items in (
            (self.split_combo, ALL_SPLITS, session.splits if session else []),
            (self.category_combo, ALL_CATEGORIES, session.category_names() if session else []),
        ):
            combo.blockSignals(True)  # one filter pass below, not one per repopulated combo
            combo.clear()
            combo.addItem(first)
            combo.addItems(items)
            combo.blockSignals(False)
        self._set_filters_enabled(session is not None)
        self._apply_filters()

    def set_thumbnail_boxes(self, visible: bool) -> None:
        """Draw the boxes on the thumbnails (or not)."""
        if self.boxes_check.isChecked() != visible:
            self.boxes_check.setChecked(visible)
        self.delegate.show_boxes = visible
        self.view.viewport().update()

    def focus_search(self) -> None:
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    def refresh_problems(self) -> None:
        """The session's problems changed (file check done): update badges, counts and filters."""
        self.model.refresh_problems()
        self.view.viewport().update()
        if self.problems_check.isChecked() or self.sort_combo.currentText() == "problems":
            self._apply_filters()
        else:
            self._update_status()

    def current_refs(self) -> list[ImageRef]:
        """The refs shown, in order (filters and sort applied)."""
        return list(self.model.refs)

    def current_ref(self) -> ImageRef | None:
        index = self.view.currentIndex()
        return self.model.ref(index.row()) if index.isValid() else None

    def select_ref(self, ref: ImageRef) -> bool:
        """Make ``ref`` the current image and scroll to it; False when the filters hide it."""
        row = self.model.row_of(ref)
        if row is None:
            return False
        index = self.model.index(row)
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)
        return True

    # ---------------------------------------------------------------- a run's evaluation
    def set_run_filters(self, label: str, lists: dict[str, list[ImageRef]], errors: dict[ImageRef, float]) -> None:
        """Offer a run's lists of images (by name, each in its own order) and sort by its ``errors``."""
        chosen = self.run_combo.currentText() if label == self.run_label else ALL_RUN_IMAGES
        self.run_label, self.run_lists, self.run_errors = label, dict(lists), dict(errors)
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        self.run_combo.addItem(ALL_RUN_IMAGES)
        self.run_combo.addItems(list(self.run_lists))
        self.run_combo.setCurrentIndex(max(0, self.run_combo.findText(chosen)))
        self.run_combo.setToolTip(f"Images of the evaluated run {label}: where it is wrong")
        self.run_combo.blockSignals(False)
        self.run_combo.setVisible(bool(self.run_lists))
        self.sort_combo.blockSignals(True)
        if self.sort_combo.findText(WORST_FIRST) < 0:
            self.sort_combo.addItem(WORST_FIRST)
        self.sort_combo.blockSignals(False)
        self._apply_filters()

    def show_run_list(self, title: str, refs: list[ImageRef]) -> None:
        """Show the images ``refs`` in their order (a confusion cell's, a filter's), named ``title``;
        the dataset's own filters are cleared, so all of them show."""
        self.run_lists[title] = list(refs)
        for combo in (self.split_combo, self.category_combo):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self.problems_check.blockSignals(True)
        self.problems_check.setChecked(False)
        self.problems_check.blockSignals(False)
        self.search_edit.blockSignals(True)
        self.search_edit.clear()
        self.search_edit.blockSignals(False)
        self.run_combo.blockSignals(True)
        if self.run_combo.count() == 0:
            self.run_combo.addItem(ALL_RUN_IMAGES)
        if self.run_combo.findText(title) < 0:
            self.run_combo.addItem(title)
        self.run_combo.setCurrentIndex(self.run_combo.findText(title))
        self.run_combo.blockSignals(False)
        self.run_combo.show()
        self._apply_filters()
        if self.model.refs:
            self.select_ref(self.model.refs[0])

    def clear_run_filters(self) -> None:
        self._forget_run()
        self._apply_filters()

    def _forget_run(self) -> None:
        self.run_label, self.run_lists, self.run_errors = "", {}, {}
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        self.run_combo.blockSignals(False)
        self.run_combo.hide()
        self.sort_combo.blockSignals(True)
        if self.sort_combo.currentText() == WORST_FIRST:
            self.sort_combo.setCurrentIndex(0)
        if self.sort_combo.findText(WORST_FIRST) >= 0:
            self.sort_combo.removeItem(self.sort_combo.findText(WORST_FIRST))
        self.sort_combo.blockSignals(False)

    def _run_order(self, refs: list[ImageRef]) -> list[ImageRef]:
        """``refs`` narrowed to the chosen run list (in its order), or sorted worst first."""
        if self.run_combo.currentIndex() > 0 and self.run_combo.currentText() in self.run_lists:
            keep = set(refs)
            return [r for r in self.run_lists[self.run_combo.currentText()] if r in keep]
        if self.sort_combo.currentText() == WORST_FIRST:
            errors = self.run_errors
            return sorted(refs, key=lambda r: -errors.get(r, -1.0))  # stable: images not evaluated last
        return refs

    # ---------------------------------------------------------------- filters
    def _filters(self) -> dict:
        sort = self.sort_combo.currentText()
        return dict(
            split=self.split_combo.currentText() if self.split_combo.currentIndex() > 0 else None,
            category=(self.category_combo.currentText() if self.category_combo.currentIndex() > 0 else None),
            with_problems=self.problems_check.isChecked(),
            sort=sort if sort in SORT_KEYS else SORT_KEYS[0],
            name_contains=self.search_edit.text(),
        )

    def _apply_filters(self) -> None:
        if self.session is None:
            self.model.set_refs([])
            self._update_status()
            self._update_histogram()
            return
        current = self.current_ref()
        self.model.set_refs(self._run_order(self.session.select(**self._filters())))
        if current is not None:
            self.select_ref(current)
        self._update_status()
        self._update_histogram()
        self._update_no_matches()

    def _update_no_matches(self) -> None:
        empty = self.session is not None and not self.model.refs and self.session.num_images > 0
        if empty:
            search = self.search_edit.text().strip()
            what = f"no file name contains “{search}”" if search else "no image matches these filters"
            self.no_matches.setText(f"No matches: {what}.\nClear the search or change the filters above.")
            self.no_matches.setGeometry(self.view.viewport().rect())
        self.no_matches.setVisible(empty)

    def _set_filters_enabled(self, enabled: bool) -> None:
        for widget in (
            self.search_edit,
            self.split_combo,
            self.category_combo,
            self.problems_check,
            self.sort_combo,
            self.run_combo,
        ):
            widget.setEnabled(enabled)

    def _apply_thumb_size(self, size: int) -> None:
        self.model.set_thumbnail_size(size)
        self.view.setIconSize(self.delegate.box_size())
        self.view.fit_grid()

    # ---------------------------------------------------------------- status and histogram
    def _update_status(self) -> None:
        session = self.session
        if session is None:
            self.status.setText("No dataset open.")
            return
        self.status.setText(
            f"{plural(session.num_images, 'image')} · "
            f"{plural(session.num_annotations, 'annotation')} · "
            f"{len(self.model.refs):,} shown · {self.model.images_with_problems():,} with problems"
            + (f" · {self.run_combo.currentText()}" if self.run_combo.currentIndex() > 0 else "")
        )

    def _update_histogram(self) -> None:
        if self.session is None:
            self.histogram.clear_counts()
            return
        filters = self._filters()
        self.histogram.show_counts(
            self.session.class_counts(filters["split"]), filters["category"], filters["split"] or "all splits"
        )

    def toggle_category(self, name: str) -> None:
        """Filter by ``name`` (a clicked bar); the category already filtered by shows all categories again."""
        if self.category_combo.currentText() == name:
            self.category_combo.setCurrentIndex(0)
        else:
            self.category_combo.setCurrentText(name)

    # ---------------------------------------------------------------- view signals
    def _activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.image_activated.emit(self.model.ref(index.row()))

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.selection_changed.emit(self.model.ref(current.row()))
