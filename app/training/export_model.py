"""The export dialog's model, Qt-free: which run an export takes, the form's defaults and checks,
the engine call it becomes, and the engine's parity report as table rows.

Every default comes from the engine (``engine.export``: formats, tolerances, parity images,
alias), so the dialog and ``lightbox export`` cannot drift apart. A check answers with the
field it belongs to, so the dialog shows each message beside its field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.export.build import FORMAT_TITLES, FORMATS, PARITY_IMAGES
from engine.export.manifest import MANIFEST_NAME
from engine.export.registry import DEFAULT_ALIAS, registration_problem
from engine.export.tolerance import Tolerance

from .runs_model import RunRow, best_trial, trials_of

EXPORTS_FOLDER = "exports"  # under the workspace
FINISHED = "FINISHED"
# The form's fields, as the checks name them.
FORMATS_FIELD, DESTINATION_FIELD, IMAGES_FIELD = "formats", "destination", "parity_images"
NAME_FIELD, ALIAS_FIELD = "model_name", "alias"
TOLERANCE_FIELDS = {  # field -> (label, Tolerance attribute, may be blank, upper bound)
    "metric": ("Task metric ±", "metric", False, None),
    "per_class": ("Per class ±", "per_class", False, None),
    "atol": ("Raw output ±", "atol", True, None),
    "min_agreement": ("Agreement at least", "min_agreement", True, 1.0),
}
REPORT_ONLY = "blank: reported, not enforced"


# ---------------------------------------------------------------------- which run
@dataclass(frozen=True)
class ExportSource:
    """A run the dialog can export, as the user reads it."""

    run_id: str
    name: str
    score: str  # "val/accuracy 0.91", "" before it validated
    task: str
    dataset: str
    search: str | None = None  # the search's name, for a trial
    best: bool = False  # the search's best finished trial

    @property
    def label(self) -> str:
        text = f"{self.name} ({self.score})" if self.score else self.name
        if self.search is not None:
            text += f", {'best trial' if self.best else 'trial'} of search {self.search}"
        return text


def export_choices(row: RunRow, rows: list[RunRow]) -> list[ExportSource]:
    """What an export of ``row`` may take: the run itself once finished; for a search, its
    finished trials, its best one first (the search's own run has no checkpoint)."""
    if not row.is_search:
        return [_source(row)] if row.status == FINISHED else []
    finished = [t for t in trials_of(rows).get(row.run_id, []) if t.status == FINISHED]
    best = best_trial(row, finished)
    if best is None:
        return []
    ordered = [best] + [t for t in finished if t is not best]
    return [_source(t, search=row, best=t is best) for t in ordered]


def can_export(row: RunRow | None, rows: list[RunRow]) -> bool:
    return row is not None and bool(export_choices(row, rows))


def _source(row: RunRow, search: RunRow | None = None, best: bool = False) -> ExportSource:
    return ExportSource(
        row.run_id,
        row.name,
        row.best,
        row.task,
        row.params.get("data.path", ""),
        search.name if search is not None else None,
        best,
    )


def search_note(row: RunRow, choices: list[ExportSource]) -> str | None:
    """What the dialog says about a search: which of its trials it exports unless told otherwise."""
    if not row.is_search or not choices:
        return None
    best = choices[0]
    score = f" ({best.score})" if best.score else ""
    return (
        f"{row.name} is a search: its best finished trial, {best.name}{score}, is exported unless you choose another."
    )


# ---------------------------------------------------------------------- defaults
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "export"


def default_destination(workspace: str | Path, source: ExportSource) -> Path:
    """``WORKSPACE/exports/<run name>``, numbered where that folder exists already."""
    base = Path(workspace) / EXPORTS_FOLDER / _slug(source.name)
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def default_model_name(source: ExportSource) -> str:
    """One registered model per dataset and task, so each export becomes its next version."""
    dataset = Path(source.dataset).name if source.dataset else ""
    return _slug(f"{dataset}-{source.task}" if dataset else source.task)


def _text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def default_fields() -> dict[str, str]:
    """The form's starting text, from the engine's defaults."""
    tol = Tolerance()
    fields = {key: _text(getattr(tol, attr)) for key, (_, attr, _, _) in TOLERANCE_FIELDS.items()}
    return {**fields, IMAGES_FIELD: str(PARITY_IMAGES), ALIAS_FIELD: DEFAULT_ALIAS}


# ---------------------------------------------------------------------- the form and its checks
@dataclass
class ExportForm:
    """What the dialog holds, as typed."""

    run_id: str
    formats: list[str]
    destination: str
    replace: bool = False
    metric: str = ""
    per_class: str = ""
    atol: str = ""
    min_agreement: str = ""
    parity_images: str = ""
    register: bool = False
    model_name: str = ""
    alias: str = DEFAULT_ALIAS


@dataclass(frozen=True)
class ExportRequest:
    """One export, checked: what ``engine.export.build.export_run`` (and the registry) are given."""

    run_id: str
    out: Path
    formats: tuple[str, ...]
    replace: bool
    tolerance: Tolerance
    parity_images: int
    register: str | None
    alias: str
    tracking_uri: str | None
    workspace: str | None

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``export_run`` (``say`` and ``progress`` are the caller's)."""
        return {
            "run_id": self.run_id,
            "out": str(self.out),
            "formats": list(self.formats),
            "force": self.replace,
            "tolerance": self.tolerance,
            "parity_images": self.parity_images,
            "tracking_uri": self.tracking_uri,
            "workspace": self.workspace,
        }

    def command(self) -> list[str]:
        """The same export as a ``lightbox export`` command line."""
        tol = self.tolerance
        args = ["export", self.run_id, "--out", str(self.out), "--format", ",".join(self.formats)]
        args += ["--max-metric-diff", f"{tol.metric:g}", "--max-class-diff", f"{tol.per_class:g}"]
        args += ["--atol", f"{tol.atol:g}"] if tol.atol is not None else []
        args += ["--min-agreement", f"{tol.min_agreement:g}"] if tol.min_agreement is not None else []
        args += ["--parity-images", str(self.parity_images)]
        args += ["--force"] if self.replace else []
        args += ["--register", self.register, "--alias", self.alias] if self.register else []
        args += ["--tracking-uri", self.tracking_uri] if self.tracking_uri else []
        args += ["--workspace", self.workspace] if self.workspace else []
        return args


def destination_problem(text: str, replace: bool) -> str | None:
    """Why the export may not go to ``text`` (None: it may)."""
    if not text.strip():
        return "Destination: choose a folder to write the export to"
    out = Path(text.strip()).expanduser()
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            return f"Destination: {parent} is a file, so no folder can be made under it"
    if not out.exists():
        return None
    if not out.is_dir():
        return f"Destination: {out} is a file, not a folder"
    if not replace:
        return (
            f"Destination: {out} already exists; tick 'Replace it whole' to replace it (it is replaced "
            "only once the new export is complete and passed parity) or choose another folder"
        )
    if (out / MANIFEST_NAME).is_file() or not any(out.iterdir()):
        return None
    # Replacing removes the whole folder: only an earlier export (or an empty folder) may go.
    return (
        f"Destination: {out} is not a Lightbox export (it has no {MANIFEST_NAME}); replacing it whole "
        "would delete everything in it: choose a new folder"
    )


def _number(key: str, text: str) -> tuple[float | None, str | None]:
    label, _, may_be_blank, upper = TOLERANCE_FIELDS[key]
    if not text.strip():
        return (None, None) if may_be_blank else (None, f"{label}: give a number")
    try:
        value = float(text)
    except ValueError:
        return None, f"{label}: '{text}' is not a number"
    if not math.isfinite(value) or value < 0:
        return None, f"{label}: must be 0 or more"
    if upper is not None and value > upper:
        return None, f"{label}: a share, between 0 and {upper:g}"
    return value, None


def validate(
    form: ExportForm, *, tracking_uri: str | None = None, workspace: str | Path | None = None
) -> tuple[ExportRequest | None, dict[str, str]]:
    """The request, or None and a message per field that is wrong."""
    errors: dict[str, str] = {}
    formats = [f for f in FORMATS if f in form.formats]
    if not formats:
        errors[FORMATS_FIELD] = f"Formats: tick at least one of {', '.join(FORMAT_TITLES[f] for f in FORMATS)}"
    problem = destination_problem(form.destination, form.replace)
    if problem:
        errors[DESTINATION_FIELD] = problem
    values: dict[str, float | None] = {}
    if "onnx" in formats:  # tolerances only matter to the parity check
        for key in TOLERANCE_FIELDS:
            values[key], message = _number(key, getattr(form, key))
            if message:
                errors[key] = message
        try:
            images = int(form.parity_images)
            if images < 1:
                raise ValueError
        except ValueError:
            errors[IMAGES_FIELD] = (
                f"Parity images: a whole number of validation images, 1 or more (not '{form.parity_images}')"
            )
    if form.register:
        problem = registration_problem(form.model_name, form.alias)
        if problem:
            errors[ALIAS_FIELD if problem.startswith("alias") else NAME_FIELD] = problem[0].upper() + problem[1:]
    if errors:
        return None, errors
    defaults = Tolerance()
    tolerance = Tolerance(
        metric=_or(values.get("metric"), defaults.metric),
        per_class=_or(values.get("per_class"), defaults.per_class),
        atol=values.get("atol"),
        min_agreement=values.get("min_agreement"),
    )
    request = ExportRequest(
        run_id=form.run_id,
        out=Path(form.destination.strip()).expanduser(),
        formats=tuple(formats),
        replace=form.replace,
        tolerance=tolerance,
        parity_images=int(form.parity_images) if "onnx" in formats else PARITY_IMAGES,
        register=form.model_name.strip() if form.register else None,
        alias=form.alias,
        tracking_uri=tracking_uri,
        workspace=str(workspace) if workspace is not None else None,
    )
    return request, {}


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


# ---------------------------------------------------------------------- outcome and parity table
@dataclass
class ExportOutcome:
    """How an export ended, for the dialog."""

    ok: bool
    out: Path
    message: str
    manifest: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None  # also on a failed parity: the figures that failed
    registered: dict[str, Any] | None = None
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)  # what the engine said on the way


@dataclass(frozen=True)
class TableRow:
    cells: tuple[str, ...]
    ok: bool = True  # False: beyond tolerance (drawn in red)


PARITY_COLUMNS = ("Measure", "Checkpoint", "ONNX", "Difference", "Allowed")
RAW_COLUMNS = ("Raw output", "Value", "Limit")
WORST_COLUMNS = ("Image", "What differed")


def _figure(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.4f}"


def parity_rows(parity: dict[str, Any]) -> list[TableRow]:
    """The task metric of both models, then each class's, with the move and the tolerance."""
    metric, tol = parity["metric"], parity["tolerance"]
    rows = [_metric_row(f"{metric['name']} (all {parity['images']} images)", metric, tol["metric"])]
    for name, values in metric["per_class"].items():
        rows.append(_metric_row(f"{metric['per_class_name']} · {name}", values, tol["per_class"]))
    return rows


def _metric_row(what: str, values: dict[str, Any], allowed: float) -> TableRow:
    difference = values["difference"]
    moved = isinstance(difference, (int, float)) and not math.isnan(difference) and abs(difference) > allowed
    shown = "n/a" if _figure(difference) == "n/a" else f"{float(difference):+.4f}"
    cells = (what, _figure(values["checkpoint"]), _figure(values["onnx"]), shown, f"±{allowed:g}")
    return TableRow(cells, not moved)


def raw_rows(parity: dict[str, Any]) -> list[TableRow]:
    """The raw outputs' largest differences and the share of matched decisions, with their limits."""
    tol = parity["tolerance"]
    atol, agreement = tol.get("atol"), tol.get("min_agreement")
    rows = [
        TableRow(
            ("largest |difference|", f"{parity['max_abs_diff']:.2e}", "reported" if atol is None else f"≤ {atol:g}"),
            atol is None or parity["max_abs_diff"] <= atol,
        ),
        TableRow(("largest relative difference", f"{parity['max_rel_diff']:.2e}", "reported")),
    ]
    if "max_abs_diff_queries_paired" in parity:
        rows.append(
            TableRow(
                ("largest |difference|, queries paired", f"{parity['max_abs_diff_queries_paired']:.2e}", "reported")
            )
        )
    rows.append(
        TableRow(
            (
                f"{parity['decision']} ({parity['excused_near_ties']} near-ties excused)",
                f"{parity['agreement']:.4f}",
                "reported" if agreement is None else f"≥ {agreement:g}",
            ),
            agreement is None or parity["agreement"] >= agreement,
        )
    )
    return rows


def worst_rows(parity: dict[str, Any]) -> list[TableRow]:
    """The images where the two models differed most (none: they decided alike everywhere)."""
    return [TableRow((w["file_name"], w["what"]), False) for w in parity["worst_images"]]


def verdict(outcome: ExportOutcome) -> str:
    """One line above the table: passed, or what moved by how much on which images."""
    if outcome.cancelled:
        return outcome.message
    parity = outcome.parity
    if parity is None:
        return outcome.message
    if parity["passed"]:
        metric = parity["metric"]
        return (
            f"Parity passed on {parity['images']} validation images: {metric['name']} "
            f"{_figure(metric['checkpoint'])} (checkpoint) against {_figure(metric['onnx'])} (ONNX)."
        )
    worst = ", ".join(w["file_name"] for w in parity["worst_images"]) or "no image in particular"
    more = parity.get("diverging_images", 0) - len(parity["worst_images"])
    worst += f" and {more} more" if more > 0 else ""
    return f"Parity failed: {'; '.join(parity['failures'])}. Images that differ most: {worst}. Nothing was exported."
