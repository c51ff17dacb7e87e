"""The dataset browser: a virtualised thumbnail grid with filters, a class histogram and counts.

Only rows the view paints ask for their thumbnail (from ``data()``), so a
100,000-image dataset costs what one screenful costs. Filtering and sorting
go through ``DatasetSession.select`` (numpy), and the model is reset with the
new list of refs; nothing here reads a file on the GUI thread.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeySequence, QPainter, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QListView, QSlider,
                               QSplitter, QStackedWidget, QStyle, QStyledItemDelegate, QVBoxLayout, QWidget)

from engine.data.health import plural
from engine.data.paths import UnsafeFileName

from ..widgets.colours import category_colour
from ..widgets.elided_label import distinct_start, elide_name
from .histogram import CategoryHistogram
from .session import SORT_KEYS, DatasetSession, ImageRef
from .start_page import StartPage
from .thumbnails import ThumbnailLoader

REF_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's ImageRef
ANNOTATIONS_ROLE = Qt.ItemDataRole.UserRole + 2  # number of annotations
PROBLEMS_ROLE = Qt.ItemDataRole.UserRole + 3  # number of problems the health check found
UNREADABLE_ROLE = Qt.ItemDataRole.UserRole + 4  # why the thumbnail failed, or None

DEFAULT_THUMB = 128
SEARCH_DELAY_MS = 200
ALL_SPLITS = "All splits"
ALL_CATEGORIES = "All categories"
# Pixmaps of recently painted rows; a few screens' worth, the QImage cache holds the rest.
PIXMAP_CACHE_ROWS = 600
# Per-row results that cost a path resolution or a text layout at every paint; a scroll
# paints each row at least twice (placeholder, then thumbnail). Cleared when this full.
ROW_MEMO_ROWS = 20_000
PROBLEM_RED = QColor("#c62828")
_SELECTED = QStyle.StateFlag.State_Selected.value
_HOVERED = QStyle.StateFlag.State_MouseOver.value
_HOVER_FILL = QColor(0, 0, 0, 18)
_CENTRED = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter


def _placeholder(size: int, *, broken: bool) -> QPixmap:
    """A 4:3 card: grey while loading, red with 'unreadable' for a file that cannot be decoded."""
    pixmap = QPixmap(size, size * 3 // 4)
    pixmap.fill(QColor("#fdecea") if broken else QColor("#e4e6ea"))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if broken:
        painter.setPen(QPen(PROBLEM_RED, 2))
        painter.drawRect(pixmap.rect().adjusted(1, 1, -1, -1))
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(9, size // 9))
        painter.setFont(font)
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, "unreadable")
    else:
        painter.setPen(QPen(QColor("#cfd3d8"), 1))
        painter.drawRect(pixmap.rect().adjusted(0, 0, -1, -1))
    painter.end()
    return pixmap


class ThumbnailModel(QAbstractListModel):
    """Rows are ImageRefs; thumbnails are requested lazily, for the rows the view paints."""

    def __init__(self, loader: ThumbnailLoader | None = None, parent=None):
        super().__init__(parent)
        self.loader = loader if loader is not None else ThumbnailLoader(parent=self)
        self.loader.ready.connect(self._thumbnail_ready)
        self.loader.failed.connect(self._thumbnail_failed)
        self.session: DatasetSession | None = None
        self.refs: list[ImageRef] = []
        self.thumb_size = DEFAULT_THUMB
        # Loader keys are (generation, row): a reset bumps the generation, so
        # results for rows of an older list are recognised and ignored.
        self._generation = 0
        self._row_of: dict[ImageRef, int] | None = None  # built on first lookup after a reset
        self._pixmaps: OrderedDict[ImageRef, QPixmap] = OrderedDict()
        self._unreadable: dict[ImageRef, str] = {}
        self._problem_counts: dict[str, dict[int, int]] = {}  # split -> image id -> problems
        self._placeholders: dict[tuple[int, bool], QPixmap] = {}
        self._paths: dict[ImageRef, str] = {}  # resolved (and checked) image paths

    # ---------------------------------------------------------------- setup
    def set_session(self, session: DatasetSession | None) -> None:
        self.session = session
        self._paths.clear()
        self._pixmaps.clear()
        self._unreadable.clear()
        self.refresh_problems()
        self.set_refs([])

    def set_refs(self, refs: list[ImageRef]) -> None:
        self.beginResetModel()
        self.loader.cancel_pending()
        self._generation += 1
        self.refs = list(refs)
        self._row_of = None
        self.endResetModel()

    def set_thumbnail_size(self, size: int) -> None:
        if size == self.thumb_size:
            return
        self.loader.cancel_pending()
        self._generation += 1  # results of the old size are not wanted any more
        self.thumb_size = size
        self._pixmaps.clear()
        if self.refs:
            self.dataChanged.emit(self.index(0), self.index(len(self.refs) - 1),
                                  [Qt.ItemDataRole.DecorationRole])

    def refresh_problems(self) -> None:
        """Re-read the session's problems (after the file check finished)."""
        counts: dict[str, dict[int, int]] = {}
        if self.session is not None:
            split_of = {str(s.annotation_file): name for name, s in self.session.folder.splits.items()}
            for problem in self.session.problems:
                split = split_of.get(problem.file)
                if split is not None and problem.image_id is not None:
                    per_image = counts.setdefault(split, {})
                    per_image[problem.image_id] = per_image.get(problem.image_id, 0) + 1
        self._problem_counts = counts
        # No dataChanged over every row: an icon-mode view re-measures each changed item
        # (0.1 s at 100k rows). Badges and tooltips are read at paint time; the browser
        # repaints its viewport.

    def images_with_problems(self) -> int:
        """Images of the dataset (all splits) that have at least one problem."""
        if self.session is None:
            return 0
        total = 0
        for split, per_image in self._problem_counts.items():
            if split in self.session.indexes:
                ids = np.fromiter(per_image, np.int64, len(per_image))
                total += int(np.isin(self.session.index(split).image_ids, ids).sum())
        return total

    # ---------------------------------------------------------------- lookups
    def ref(self, row: int) -> ImageRef:
        return self.refs[row]

    def row_of(self, ref: ImageRef) -> int | None:
        if self._row_of is None:
            self._row_of = {r: i for i, r in enumerate(self.refs)}
        return self._row_of.get(ref)

    def has_unreadable(self, row: int) -> bool:
        return self.refs[row] in self._unreadable

    def has_thumbnail(self, row: int) -> bool:
        """Is the row's picture final: its thumbnail, or the 'unreadable' card?"""
        ref = self.refs[row]
        if ref in self._pixmaps or ref in self._unreadable:
            return True
        try:
            return self.session is not None and self._cache_key(ref) in self.loader.cache
        except UnsafeFileName:
            return False  # decoration() marks it refused when the row is painted

    def problems_count(self, ref: ImageRef) -> int:
        per_image = self._problem_counts.get(ref.split)
        if not per_image:
            return 0
        return per_image.get(int(self.session.index(ref.split).image_ids[ref.row]), 0)

    def annotations_count(self, ref: ImageRef) -> int:
        offsets = self.session.index(ref.split).image_ann_offsets
        return int(offsets[ref.row + 1] - offsets[ref.row])

    def placeholder(self, *, broken: bool) -> QPixmap:
        key = (self.thumb_size, broken)
        if key not in self._placeholders:
            self._placeholders[key] = _placeholder(self.thumb_size, broken=broken)
        return self._placeholders[key]

    def _cache_key(self, ref: ImageRef) -> tuple[str, int]:
        path = self._paths.get(ref)
        if path is None:
            path = str(self.session.image_path(ref))  # raises UnsafeFileName: never remembered
            if len(self._paths) >= ROW_MEMO_ROWS:
                self._paths.clear()
            self._paths[ref] = path
        return path, self.thumb_size

    # ---------------------------------------------------------------- Qt model
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.refs)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.session is None:
            return None
        row = index.row()
        ref = self.refs[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.file_name(row)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.decoration(row)
        if role == REF_ROLE:
            return ref
        if role == PROBLEMS_ROLE:
            return self.problems_count(ref)
        if role == ANNOTATIONS_ROLE:
            return self.annotations_count(ref)
        if role == UNREADABLE_ROLE:
            return self._unreadable.get(ref)
        if role == Qt.ItemDataRole.ToolTipRole:
            n_ann, n_prob = self.annotations_count(ref), self.problems_count(ref)
            text = (f"{ref.split} · {self.file_name(row)}\n{n_ann} annotation{'s' * (n_ann != 1)} · "
                    f"{n_prob} problem{'s' * (n_prob != 1)}")
            if ref in self._unreadable:
                why = self._unreadable[ref]
                text += f"\n{why}" if why.startswith("refused") else f"\nunreadable: {why}"
            return text
        return None

    def file_name(self, row: int) -> str:
        ref = self.refs[row]
        return self.session.index(ref.split).file_names[ref.row]

    def distinct_start(self, row: int) -> int:
        """Where the row's file name starts to differ from the names beside it in its file.

        Neighbours in file order, not in sorted order: no sort of every name on the GUI thread,
        and tools that tile an image write its tiles one after the other.
        """
        ref = self.refs[row]
        names = self.session.index(ref.split).file_names
        return distinct_start(names[ref.row], names[max(0, ref.row - 1) : ref.row + 2])

    def decoration(self, row: int) -> QPixmap:
        """The row's thumbnail, or a placeholder while it loads (the request is made here)."""
        ref = self.refs[row]
        pixmap = self._pixmaps.get(ref)
        if pixmap is not None:
            self._pixmaps.move_to_end(ref)
            return pixmap
        if ref in self._unreadable:
            return self.placeholder(broken=True)
        try:
            key = self._cache_key(ref)
        except UnsafeFileName as exc:
            self._unreadable[ref] = f"refused: {exc.reason}"
            return self.placeholder(broken=True)
        image = self.loader.cache.get(key)
        if image is not None:
            return self._remember(ref, image)
        self.loader.request((self._generation, row), key[0], key[1])
        return self.placeholder(broken=False)

    def _remember(self, ref: ImageRef, image: QImage) -> QPixmap:
        pixmap = QPixmap.fromImage(image)
        self._pixmaps[ref] = pixmap
        while len(self._pixmaps) > PIXMAP_CACHE_ROWS:
            self._pixmaps.popitem(last=False)
        return pixmap

    def _current_row(self, key) -> int | None:
        generation, row = key
        return row if generation == self._generation and row < len(self.refs) else None

    def _thumbnail_ready(self, key, image: QImage) -> None:
        # The image is in the loader's cache: decoration() makes the pixmap if the row is
        # painted. While scrolling fast, most rows are gone by the time theirs is decoded.
        row = self._current_row(key)
        if row is not None:
            if image.sizeInBytes() > self.loader.cache.max_bytes:  # the cache could not keep it
                self._remember(self.refs[row], image)
            self.dataChanged.emit(self.index(row), self.index(row), [Qt.ItemDataRole.DecorationRole])

    def _thumbnail_failed(self, key, message: str) -> None:
        row = self._current_row(key)
        if row is not None:
            self._unreadable[self.refs[row]] = message
            self.dataChanged.emit(self.index(row), self.index(row), [Qt.ItemDataRole.DecorationRole])


class ThumbnailDelegate(QStyledItemDelegate):
    """A card per image: the thumbnail centred in a 4:3 box, the file name under it, a problem badge."""

    def __init__(self, model: ThumbnailModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.show_boxes = False  # draw each image's boxes on its thumbnail
        self._colours: dict[str, QColor] = {}
        self._box: tuple[int, QSize] | None = None
        self._names: dict[tuple, str] = {}  # (ref, width, font) -> the file name as drawn
        self._names_session = None

    def box_size(self) -> QSize:
        size = self.model.thumb_size
        if self._box is None or self._box[0] != size:
            self._box = (size, QSize(size, size * 3 // 4))  # most photos are landscape; portraits shrink to fit
        return self._box[1]

    def shown_name(self, row: int, width: int, option) -> str:
        """The row's file name elided to ``width`` (a text layout: worth remembering)."""
        if self._names_session is not self.model.session:  # refs name other files in another dataset
            self._names.clear()
            self._names_session = self.model.session
        key = (self.model.refs[row], width, option.font.key())
        name = self._names.get(key)
        if name is None:
            if len(self._names) >= ROW_MEMO_ROWS:
                self._names.clear()
            full, metrics = self.model.file_name(row), option.fontMetrics
            # Names that share a long start keep the end that tells them apart (the tooltip has it whole).
            keep = self.model.distinct_start(row) if metrics.horizontalAdvance(full) > width else 0
            name = self._names[key] = elide_name(full, metrics, width, keep)
        return name

    def cell_size(self) -> QSize:
        box = self.box_size()
        return QSize(box.width() + 16, box.height() + 32)

    def sizeHint(self, option, index) -> QSize:
        return self.cell_size()

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        # Plain ints and module constants: a scroll paints ~35 fresh cells a page, and each
        # QRect helper or enum operation here is a Python -> C++ round trip.
        cell = option.rect
        x, y, width, height = cell.x(), cell.y(), cell.width(), cell.height()
        state = option.state.value
        painter.save()
        if state & _SELECTED or state & _HOVERED:
            palette = option.palette
            rect = QRect(x + 2, y + 2, width - 4, height - 4)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if state & _SELECTED:
                fill = QColor(palette.highlight().color())
                fill.setAlpha(70)
                painter.setPen(QPen(palette.highlight().color(), 1.5))
                painter.setBrush(fill)
            else:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(_HOVER_FILL)
            painter.drawRoundedRect(rect, 6, 6)

        box_size = self.box_size()
        box_width, box_height = box_size.width(), box_size.height()
        box_left, box_top = x + (width - box_width) // 2, y + 7
        # Straight to the Python model: going through index.data() costs a C++
        # round trip (and a GIL hand-over) per role per painted item.
        model, row = self.model, index.row()
        pixmap = model.decoration(row)
        badge = None
        if not pixmap.isNull():
            shown_width, shown_height = pixmap.width(), pixmap.height()
            scaled = shown_width > box_width or shown_height > box_height
            if scaled:
                shown = pixmap.size().scaled(box_size, Qt.AspectRatioMode.KeepAspectRatio)
                shown_width, shown_height = shown.width(), shown.height()
            target = QRect(box_left + (box_width - shown_width) // 2, box_top + (box_height - shown_height) // 2,
                           shown_width, shown_height)
            if scaled:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawPixmap(target, pixmap)
            else:
                painter.drawPixmap(target.x(), target.y(), pixmap)  # no scaling: a straight copy
            if self.show_boxes and model.session is not None and not model.has_unreadable(row):
                self._boxes(painter, target, model.session, model.refs[row])
            problems = model.problems_count(model.refs[row])
            if problems:
                badge = (target, problems)

        metrics = option.fontMetrics
        text_rect = QRect(x + 6, box_top + box_height + 4, width - 12, metrics.height())
        name = self.shown_name(row, width - 12, option)
        painter.setFont(option.font)
        painter.setPen(option.palette.text().color())
        painter.drawText(text_rect, _CENTRED, name)
        if badge is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._badge(painter, *badge)  # last: it changes the painter's font
        painter.restore()

    def _boxes(self, painter: QPainter, target: QRect, session: DatasetSession, ref: ImageRef) -> None:
        """The image's boxes, scaled from JSON coordinates to the thumbnail, in category colours."""
        index = session.index(ref.split)
        width, height = int(index.image_width[ref.row]), int(index.image_height[ref.row])
        if width <= 0 or height <= 0:
            return
        sx, sy = target.width() / width, target.height() / height
        if not self._colours or self._colours.get(None) is not session:
            self._colours = {name: category_colour(i) for i, name in enumerate(session.category_names())}
            self._colours[None] = session  # which session the colours belong to
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for ann_row in index.annotation_rows(ref.row):
            x, y, w, h = index.ann_bbox[ann_row]
            if np.isnan(x):
                continue
            label = int(index.ann_label[ann_row])
            name = index.category_names[label] if label >= 0 else None
            painter.setPen(QPen(self._colours.get(name, QColor(160, 160, 160)), 1.5))
            painter.drawRect(QRectF(target.x() + x * sx, target.y() + y * sy, w * sx, h * sy))

    def _badge(self, painter: QPainter, target: QRect, count: int) -> None:
        """A red disc with the number of problems on the thumbnail's top-right corner."""
        diameter = 18
        disc = QRect(target.right() - diameter + 4, target.top() - 4, diameter, diameter)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.setBrush(PROBLEM_RED)
        painter.drawEllipse(disc)
        font = QFont(painter.font())
        font.setBold(True)
        font.setPixelSize(10)
        painter.setFont(font)
        painter.drawText(disc, Qt.AlignmentFlag.AlignCenter, str(count) if count < 100 else "99+")


class _GridView(QListView):
    """An icon grid whose cells widen so the columns fill the viewport, no ragged right margin."""

    def __init__(self, delegate: ThumbnailDelegate, parent=None):
        super().__init__(parent)
        self.delegate = delegate
        # Icon mode lays out as if the scroll bar were there anyway; keeping it
        # always on makes the viewport width the layout width, so columns fit exactly.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)

    def fit_grid(self) -> None:
        cell = self.delegate.cell_size()
        width = self.viewport().width()
        columns = max(1, width // cell.width())
        grid = QSize(max(cell.width(), width // columns), cell.height())
        if grid != self.gridSize():
            self.setGridSize(grid)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_grid()


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
        bar.addWidget(QLabel("Sort by:"))
        bar.addWidget(self.sort_combo)
        bar.addStretch(1)
        self.boxes_check = QCheckBox("Boxes")
        self.boxes_check.setToolTip("Draw each image's boxes on its thumbnail")
        self.boxes_check.toggled.connect(self.set_thumbnail_boxes)
        bar.addWidget(self.boxes_check)
        bar.addWidget(self.size_slider)

        self.delegate = ThumbnailDelegate(self.model, self)
        self.view = _GridView(self.delegate)
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
        self.size_slider.valueChanged.connect(self._apply_thumb_size)
        self.view.activated.connect(self._activated)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self._set_filters_enabled(False)

    # ---------------------------------------------------------------- public API
    def set_session(self, session: DatasetSession | None) -> None:
        self.session = session
        self.pages.setCurrentIndex(0 if session is None else 1)
        self.model.set_session(session)
        for combo, first, items in ((self.split_combo, ALL_SPLITS, session.splits if session else []),
                                    (self.category_combo, ALL_CATEGORIES,
                                     session.category_names() if session else [])):
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

    # ---------------------------------------------------------------- filters
    def _filters(self) -> dict:
        return dict(split=self.split_combo.currentText() if self.split_combo.currentIndex() > 0 else None,
                    category=(self.category_combo.currentText()
                              if self.category_combo.currentIndex() > 0 else None),
                    with_problems=self.problems_check.isChecked(),
                    sort=self.sort_combo.currentText(),
                    name_contains=self.search_edit.text())

    def _apply_filters(self) -> None:
        if self.session is None:
            self.model.set_refs([])
            self._update_status()
            self._update_histogram()
            return
        current = self.current_ref()
        self.model.set_refs(self.session.select(**self._filters()))
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
        for widget in (self.search_edit, self.split_combo, self.category_combo, self.problems_check, self.sort_combo):
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
        self.status.setText(f"{plural(session.num_images, 'image')} · {plural(session.num_annotations, 'annotation')} · "
                            f"{len(self.model.refs):,} shown · {self.model.images_with_problems():,} with problems")

    def _update_histogram(self) -> None:
        if self.session is None:
            self.histogram.clear_counts()
            return
        filters = self._filters()
        self.histogram.show_counts(self.session.class_counts(filters["split"]), filters["category"],
                                   filters["split"] or "all splits")

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
