"""The browser's list model: one row per image, thumbnails asked for only for the rows painted.

Rows are ``ImageRef``s of the filtered, sorted list the browser sets. ``decoration(row)``
answers from the pixmap memo or the loader's cache, else asks the loader and answers a
placeholder; the loader's answer repaints the row if it is still shown.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap

from engine.data.paths import UnsafeFileName

from ..widgets.elided_label import distinct_start
from .session import DatasetSession, ImageRef
from .thumbnails import ThumbnailLoader

REF_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's ImageRef
ANNOTATIONS_ROLE = Qt.ItemDataRole.UserRole + 2  # number of annotations
PROBLEMS_ROLE = Qt.ItemDataRole.UserRole + 3  # number of problems the health check found
UNREADABLE_ROLE = Qt.ItemDataRole.UserRole + 4  # why the thumbnail failed, or None

DEFAULT_THUMB = 128
# Pixmaps of recently painted rows; a few screens' worth, the QImage cache holds the rest.
PIXMAP_CACHE_ROWS = 600
# Per-row results that cost a path resolution or a text layout at every paint; a scroll
# paints each row at least twice (placeholder, then thumbnail). Cleared when this full.
ROW_MEMO_ROWS = 20_000
PROBLEM_RED = QColor("#c62828")


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
        self.refs = list(refs)
        self._row_of = None
        self.endResetModel()

    def set_thumbnail_size(self, size: int) -> None:
        if size == self.thumb_size:
            return
        self.loader.cancel_pending()
        self.thumb_size = size
        self._pixmaps.clear()
        if self.refs:
            self.dataChanged.emit(self.index(0), self.index(len(self.refs) - 1), [Qt.ItemDataRole.DecorationRole])

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
            text = (
                f"{ref.split} · {self.file_name(row)}\n{n_ann} annotation{'s' * (n_ann != 1)} · "
                f"{n_prob} problem{'s' * (n_prob != 1)}"
            )
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
        # The request names what it asks for (row, file, size): see _current_row.
        self.loader.request((row, *key), key[0], key[1])
        return self.placeholder(broken=False)

    def _remember(self, ref: ImageRef, image: QImage) -> QPixmap:
        pixmap = QPixmap.fromImage(image)
        self._pixmaps[ref] = pixmap
        while len(self._pixmaps) > PIXMAP_CACHE_ROWS:
            self._pixmaps.popitem(last=False)
        return pixmap

    def _current_row(self, key) -> int | None:
        """The row an answer is for, if that row still shows that file at that size; None otherwise.

        An answer asked for by an older list, dataset or thumbnail size names another file or
        size for its row (or a row past the end), so it is recognised and ignored."""
        row, path, size = key
        if row >= len(self.refs):
            return None
        try:
            return row if self._cache_key(self.refs[row]) == (path, size) else None
        except UnsafeFileName:
            return None

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
