"""The export dialog's Qt-free model: which run an export takes (a search's best finished trial),
the engine's defaults, each bad field named, the request as the engine and the CLI take it, and
the parity report as table rows and a verdict."""

import json

import pytest

from app.training.export_model import (
    ExportForm,
    ExportOutcome,
    can_export,
    default_destination,
    default_fields,
    export_choices,
    parity_rows,
    raw_rows,
    search_note,
    validate,
    verdict,
    worst_rows,
)
from app.training.runs_model import RunRow
from engine.export.build import PARITY_IMAGES
from engine.export.manifest import MANIFEST_NAME
from engine.export.tolerance import Tolerance
from engine.tracking.tags import BEST_RUN_TAG, PARENT_RUN_TAG, SEARCH_TAG


def _row(run_id, status="FINISHED", best="val/accuracy 0.5", **tags):
    params = {"data.path": "/data/shapes", "search.metric": "val/accuracy", "search.mode": "max"}
    return RunRow(
        run_id, f"name-{run_id}", status, "classification", "resnet-tiny", best, 1, 1.0, None, tags=tags, params=params
    )


def _search():
    search = _row("s", status="RUNNING", best="", **{SEARCH_TAG: "true"})
    trials = [
        _row("t1", best="val/accuracy 0.6", **{PARENT_RUN_TAG: "s"}),
        _row("t2", best="val/accuracy 0.9", **{PARENT_RUN_TAG: "s"}),
        _row("t3", status="RUNNING", best="val/accuracy 0.95", **{PARENT_RUN_TAG: "s"}),
    ]
    trials[0].metrics["val/accuracy"], trials[1].metrics["val/accuracy"] = 0.6, 0.9
    trials[2].metrics["val/accuracy"] = 0.95
    return search, trials


def _form(tmp_path, **changes):
    fields = {**default_fields(), **changes}
    formats = fields.pop("formats", ["hf", "onnx"])
    return ExportForm("abc", formats, fields.pop("destination", str(tmp_path / "out")), **fields)


def test_a_finished_run_is_exported_and_an_unfinished_one_is_not():
    assert [c.run_id for c in export_choices(_row("a"), [])] == ["a"]
    for status in ("RUNNING", "FAILED", "KILLED", "LOST"):
        assert not can_export(_row("a", status=status), [])
    assert not can_export(None, [])


def test_a_search_exports_its_best_finished_trial_first_and_says_so():
    search, trials = _search()
    rows = [search, *trials]
    choices = export_choices(search, rows)
    assert [c.run_id for c in choices] == ["t2", "t1"]  # t3 scores higher but is still running
    assert choices[0].best and "best trial of search name-s" in choices[0].label
    assert "name-t2" in search_note(search, choices) and "val/accuracy 0.9" in search_note(search, choices)
    search.tags[BEST_RUN_TAG] = "t1"  # the search named its best when it ended
    assert export_choices(search, rows)[0].run_id == "t1"
    assert not can_export(search, [search])  # no finished trial yet


def test_defaults_come_from_the_engine_and_the_destination_is_new(tmp_path):
    fields, tol = default_fields(), Tolerance()
    assert float(fields["metric"]) == tol.metric and float(fields["per_class"]) == tol.per_class
    assert fields["atol"] == "" and fields["min_agreement"] == ""  # the engine reports these only
    assert int(fields["parity_images"]) == PARITY_IMAGES
    source = export_choices(_row("a"), [])[0]
    first = default_destination(tmp_path, source)
    assert first == tmp_path / "exports" / "name-a"
    first.mkdir(parents=True)
    assert default_destination(tmp_path, source) == tmp_path / "exports" / "name-a-2"


def test_an_existing_folder_is_refused_unless_replaced_and_only_an_export_may_be_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    request, errors = validate(_form(tmp_path))
    assert request is None and "already exists" in errors["destination"] and "Replace it whole" in errors["destination"]
    request, errors = validate(_form(tmp_path, replace=True))
    assert request is None and "not a Lightbox export" in errors["destination"]
    (out / "notes.txt").unlink()
    (out / MANIFEST_NAME).write_text(json.dumps({}))
    request, errors = validate(_form(tmp_path, replace=True))
    assert errors == {} and request.replace
    (tmp_path / "file").write_text("x")
    assert "is a file" in validate(_form(tmp_path, destination=str(tmp_path / "file" / "sub")))[1]["destination"]
    assert "choose a folder" in validate(_form(tmp_path, destination="  "))[1]["destination"]


@pytest.mark.parametrize(
    ("field", "text", "says"),
    [
        ("metric", "abc", "Task metric ±: 'abc' is not a number"),
        ("metric", "", "Task metric ±: give a number"),
        ("per_class", "-0.1", "Per class ±: must be 0 or more"),
        ("atol", "nan", "Raw output ±: must be 0 or more"),
        ("min_agreement", "1.5", "Agreement at least: a share"),
        ("parity_images", "0", "Parity images: a whole number"),
        ("parity_images", "2.5", "Parity images: a whole number"),
    ],
)
def test_each_bad_tolerance_is_named_at_its_field(tmp_path, field, text, says):
    request, errors = validate(_form(tmp_path, **{field: text}))
    assert request is None and list(errors) == [field] and errors[field].startswith(says)


def test_tolerances_are_not_checked_without_onnx_and_formats_are_needed(tmp_path):
    assert validate(_form(tmp_path, formats=["hf"], metric="abc"))[1] == {}
    assert "tick at least one" in validate(_form(tmp_path, formats=[]))[1]["formats"]


@pytest.mark.parametrize(
    ("name", "alias", "field", "says"),
    [
        ("", "best", "model_name", "Model name: give a name"),
        ("a/b", "best", "model_name", "may not contain '/'"),
        ("shapes", "latest", "alias", "reserved by MLflow"),
        ("shapes", "v3", "alias", "names version 3"),
        ("shapes", "my alias", "alias", "only letters, digits"),
        ("shapes", "", "alias", "Alias: give an alias"),
    ],
)
def test_registration_name_and_alias_are_checked_as_mlflow_does(tmp_path, name, alias, field, says):
    _, errors = validate(_form(tmp_path, register=True, model_name=name, alias=alias))
    assert list(errors) == [field] and says in errors[field]
    assert validate(_form(tmp_path, register=False, model_name=name, alias=alias))[1] == {}


def test_the_request_is_what_the_cli_would_run(tmp_path):
    from engine.cli import build_parser

    form = _form(tmp_path, atol="0.001", min_agreement="0.99", parity_images="8", register=True, model_name="m")
    request, errors = validate(form, tracking_uri="sqlite:///x.db", workspace=tmp_path)
    assert errors == {}
    kwargs = request.engine_kwargs()
    assert kwargs["tolerance"] == Tolerance(metric=0.01, per_class=0.05, atol=0.001, min_agreement=0.99)
    assert kwargs["parity_images"] == 8 and kwargs["formats"] == ["hf", "onnx"] and not kwargs["force"]
    args = build_parser().parse_args(request.command())
    assert (args.max_metric_diff, args.max_class_diff, args.atol, args.min_agreement) == (0.01, 0.05, 0.001, 0.99)
    assert (args.parity_images, args.register, args.alias, args.out) == (8, "m", "best", str(tmp_path / "out"))


def _parity(passed=False):
    per_class = {
        "circle": {"checkpoint": 0.5, "onnx": 0.5, "difference": 0.0},
        "square": {"checkpoint": 0.8, "onnx": 0.6, "difference": -0.2},
        "triangle": {"checkpoint": float("nan"), "onnx": float("nan"), "difference": float("nan")},
    }
    return {
        "images": 16,
        "max_abs_diff": 0.3,
        "max_rel_diff": 0.1,
        "decision": "top-1 agreement",
        "agreement": 0.875,
        "excused_near_ties": 1,
        "metric": {
            "name": "accuracy",
            "checkpoint": 0.75,
            "onnx": 0.6875,
            "difference": -0.0625,
            "per_class": per_class,
            "per_class_name": "F1",
        },
        "worst_images": [{"image_id": 3, "file_name": "val/003.jpg", "what": "top-1 square -> circle"}],
        "diverging_images": 2,
        "tolerance": {"metric": 0.01, "per_class": 0.05, "atol": None, "min_agreement": 0.9},
        "failures": []
        if passed
        else ["accuracy moved from 0.7500 (checkpoint) to 0.6875 (ONNX), -0.0625 beyond ±0.01"],
        "passed": passed,
    }


def test_the_parity_report_becomes_rows_with_the_moves_in_red():
    rows = parity_rows(_parity())
    assert rows[0].cells == ("accuracy (all 16 images)", "0.7500", "0.6875", "-0.0625", "±0.01") and not rows[0].ok
    by_name = {r.cells[0]: r for r in rows[1:]}
    assert by_name["F1 · circle"].ok and not by_name["F1 · square"].ok
    assert by_name["F1 · triangle"].cells[1:4] == ("n/a", "n/a", "n/a") and by_name["F1 · triangle"].ok
    raw = raw_rows(_parity())
    assert raw[0].cells[1] == "3.00e-01" and raw[0].ok  # no raw limit asked: reported only
    assert "1 near-ties excused" in raw[-1].cells[0] and not raw[-1].ok  # 0.875 below the asked 0.9
    assert worst_rows(_parity())[0].cells == ("val/003.jpg", "top-1 square -> circle")


def test_a_failed_parity_says_what_moved_by_how_much_on_which_images(tmp_path):
    text = verdict(ExportOutcome(False, tmp_path, "refused", parity=_parity()))
    assert "accuracy moved from 0.7500" in text and "-0.0625 beyond ±0.01" in text
    assert "val/003.jpg and 1 more" in text and "Nothing was exported" in text
    passed = verdict(ExportOutcome(True, tmp_path, "ok", parity=_parity(passed=True)))
    assert passed.startswith("Parity passed on 16 validation images: accuracy 0.7500")
