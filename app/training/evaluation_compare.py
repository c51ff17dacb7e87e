"""Two runs' evaluations side by side (no Qt): their classes matched, each figure for A, B and B − A.

Classes are matched by name (what the user reads), and among classes of one name by id first; a
class only one run has gets a row with the other run's figures empty. Every figure here is
"higher is better", so a negative difference is a loss for run B. Runs evaluated on different
data may be compared, but the comparison says so; runs of different tasks cannot be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .evaluation_model import PER_CLASS_FIELDS, Evaluation, sort_rows

DIFF = "diff"  # the suffix of a difference column: "<figure>_diff"
SAME = 0.0005  # a difference smaller than this reads as 0.000 and is coloured as none
FINISHED = ("FINISHED",)  # the runs the Runs table offers Evaluate for


class ComparisonError(ValueError):
    """Two evaluations that cannot be compared; the message names both runs."""


@dataclass(frozen=True)
class RunSide:
    """One of the two runs as the comparison's header names it."""

    name: str
    run_id: str = ""
    best: str = ""  # its best metric as the Runs table shows it ("val/accuracy 0.81")

    def label(self) -> str:
        parts = [self.name]
        if self.run_id and not self.name.startswith(self.run_id[:8]):
            parts.append(f"({self.run_id[:8]})")
        if self.best:
            parts.append(f"· {self.best}")
        return " ".join(parts)


def figure(value) -> float | None:
    """A figure as a number, None when it has none: null, NaN, or COCO's -1 for "no such objects"."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return None if math.isnan(value) or value < 0 else value


def difference(a, b) -> float | None:
    a, b = figure(a), figure(b)
    return None if a is None or b is None else b - a


def change(value: float | None) -> int:
    """+1 better, -1 worse, 0 the same (or no difference to tell)."""
    if value is None or abs(value) < SAME:
        return 0
    return 1 if value > 0 else -1


def _pairs(rows_a: list[dict], rows_b: list[dict]) -> list[tuple[dict | None, dict | None]]:
    """The per-class rows of A and B paired by name (among classes of one name, same id first), in A's
    order, then the classes only B has."""
    left_b = list(rows_b)
    match: dict[int, dict] = {}  # index in A -> B's row
    for same_id in (True, False):
        for k, row in enumerate(rows_a):
            if k in match:
                continue
            found = next(
                (
                    r
                    for r in left_b
                    if str(r.get("name")) == str(row.get("name")) and (not same_id or r.get("id") == row.get("id"))
                ),
                None,
            )
            if found is not None:
                match[k] = found
                left_b.remove(found)
    pairs: list[tuple[dict | None, dict | None]] = [(row, match.get(k)) for k, row in enumerate(rows_a)]
    return pairs + [(None, row) for row in left_b]


def data_difference(a: Evaluation, b: Evaluation) -> str | None:
    """A sentence saying how the data the two were evaluated on differs, None when it does not."""
    keys = ("path", "split", "num_images")
    if all(a.data.get(k) == b.data.get(k) for k in keys):
        return None

    def where(e: Evaluation) -> str:
        n = e.data.get("num_images")
        return f"{e.data.get('path', '?')} ({e.data.get('split', '?')} split, {n if n is not None else '?'} images)"

    differ = ", ".join(
        {"path": "dataset", "split": "split", "num_images": "image count"}[k]
        for k in keys
        if a.data.get(k) != b.data.get(k)
    )
    return (
        f"Evaluated on different data ({differ}): A on {where(a)}, B on {where(b)}. "
        "The differences mix the models with the data."
    )


@dataclass
class Comparison:
    """Run A against run B: per-class rows, summary rows, the classes only one has, a data note."""

    a: RunSide
    b: RunSide
    task: str
    fields: tuple[str, ...]
    rows: list[dict]  # name, id_a, id_b, support_a, support_b, <f>_a, <f>_b, <f>_diff for each figure
    summary: list[dict]  # name, a, b, diff
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    data_note: str | None = None

    @property
    def columns(self) -> list[str]:
        """The per-class table's keys, in order: name, supports, then A / B / B − A per figure."""
        keys = ["name", "support_a", "support_b"]
        for name in self.fields:
            keys += [f"{name}_a", f"{name}_b", f"{name}_{DIFF}"]
        return keys

    def header(self, key: str) -> str:
        """A column's title on two lines (narrow columns): ``AP`` over ``A``, ``B`` or ``B−A``."""
        if key == "name":
            return "class"
        base, side = key.rsplit("_", 1)
        return f"{base.replace('_', ' ')}\n{'B−A' if side == DIFF else side.upper()}"

    def sorted_rows(self, key: str, descending: bool) -> list[dict]:
        """Rows by ``key``; rows without a number there last either way."""
        return sort_rows(self.rows, key, descending)

    def notes(self) -> list[str]:
        """What the user should know before reading the table, plainly."""
        out = []
        if self.data_note:
            out.append(self.data_note)
        if self.only_a:
            out.append(f"Only in A ({self.a.name}): {', '.join(self.only_a)}.")
        if self.only_b:
            out.append(f"Only in B ({self.b.name}): {', '.join(self.only_b)}.")
        return out


def compare(a: Evaluation, b: Evaluation, side_a: RunSide | None = None, side_b: RunSide | None = None) -> Comparison:
    """Run A's evaluation against run B's; ComparisonError when they are of different tasks."""
    side_a = side_a or RunSide(_name_of(a))
    side_b = side_b or RunSide(_name_of(b))
    if a.task != b.task:
        raise ComparisonError(
            f"{side_a.name} is a {a.task} run and {side_b.name} a {b.task} run: only runs of one task can be compared."
        )
    fields = PER_CLASS_FIELDS[a.task]
    rows, only_a, only_b = [], [], []
    for row_a, row_b in _pairs(a.per_class, b.per_class):
        either = row_a if row_a is not None else row_b
        assert either is not None
        name = str(either.get("name"))
        if row_b is None:
            only_a.append(name)
        if row_a is None:
            only_b.append(name)
        ra, rb = row_a or {}, row_b or {}
        row: dict = {
            "name": name,
            "id": either.get("id"),
            "id_a": ra.get("id"),
            "id_b": rb.get("id"),
            "support_a": ra.get("support"),
            "support_b": rb.get("support"),
        }
        for f in fields:
            row[f"{f}_a"], row[f"{f}_b"] = figure(ra.get(f)), figure(rb.get(f))
            row[f"{f}_{DIFF}"] = difference(ra.get(f), rb.get(f))
        rows.append(row)
    names = list(a.summary) + [k for k in b.summary if k not in a.summary]
    summary = [
        {
            "name": k,
            "a": figure(a.summary.get(k)),
            "b": figure(b.summary.get(k)),
            "diff": difference(a.summary.get(k), b.summary.get(k)),
        }
        for k in names
    ]
    return Comparison(side_a, side_b, a.task, fields, rows, summary, only_a, only_b, data_difference(a, b))


def _name_of(evaluation: Evaluation) -> str:
    return (evaluation.source.get("run_id") or "")[:8] or Path(evaluation.path).parent.name


def comparable_runs(rows: list, run_id: str, task: str) -> list:
    """The runs run ``run_id`` (of ``task``) can be compared with: other finished runs of its task, no
    searches (RunRow-like objects, in the order given)."""
    return [
        r
        for r in rows
        if r.run_id != run_id and r.status in FINISHED and not r.is_search and (not task or r.task == task)
    ]
