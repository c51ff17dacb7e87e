"""Problems found in a dataset, shared by the COCO loader and the health check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, precise enough to find and fix it.

    ``code`` is a stable machine name (tests and the app filter on it);
    ``message`` is for people and already names the offending item.
    """

    code: str
    message: str
    file: str
    severity: Severity = "error"
    image_id: int | None = None
    annotation_id: int | None = None
    category_id: int | None = None
    line: int | None = None
    column: int | None = None

    def where(self) -> str:
        """``file:line:col`` when known, else the file."""
        if self.line is not None:
            return f"{self.file}:{self.line}:{self.column or 1}"
        return self.file

    def __str__(self) -> str:
        return f"{self.where()}: {self.severity}: {self.message} [{self.code}]"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


class DatasetError(Exception):
    """A dataset cannot be used; ``problems`` lists everything that was found."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems = list(problems or [])
        detail = "".join(f"\n  {p}" for p in self.problems[:20])
        more = len(self.problems) - 20
        if more > 0:
            detail += f"\n  ... and {more} more"
        super().__init__(message + detail)


class CocoFormatError(DatasetError):
    """The annotation file is not valid JSON or not COCO-shaped enough to index."""
