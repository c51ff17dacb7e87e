"""export_run tells each step as it starts; a failed parity carries its figures; a killed export
is tidied (its half-built folder removed, an earlier export put back); a bad registry name or
alias is refused before anything is exported."""

import os

import pytest

from engine.cli import main
from engine.config import RunConfig
from engine.export.build import discard_unfinished, export_run
from engine.export.manifest import MANIFEST_NAME, ExportError, ParityError
from engine.export.parity import Tolerance
from engine.export.registry import registration_problem
from engine.orchestration.local import train


@pytest.fixture(scope="module")
def tiny_run(sample_dataset, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("progress-ws")
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )
    result = train(config, progress=False)
    assert result.status == "FINISHED"
    return result.run_id, workspace


def test_each_step_is_told_as_it_starts(tiny_run, tmp_path):
    run_id, workspace = tiny_run
    told = []
    export_run(
        run_id,
        tmp_path / "x",
        workspace=str(workspace),
        parity_images=8,
        say=lambda _: None,
        progress=lambda *a: told.append(a),
    )
    assert [text for text, _, _ in told] == [
        "loading the checkpoint and the validation images",
        "writing the Hugging Face folder",
        "tracing the model and exporting ONNX",
        "checking parity on 8 validation images",
        "writing the export folder",
    ]
    assert [(step, steps) for _, step, steps in told] == [(k, 5) for k in range(5)]
    told.clear()
    export_run(
        run_id,
        tmp_path / "y",
        formats="hf",
        workspace=str(workspace),
        say=lambda _: None,
        progress=lambda *a: told.append(a),
    )
    assert [(text, step, steps) for text, step, steps in told] == [
        ("loading the checkpoint and the validation images", 0, 3),
        ("writing the Hugging Face folder", 1, 3),
        ("writing the export folder", 2, 3),
    ]


def test_a_failed_parity_carries_its_figures_and_writes_nothing(tiny_run, tmp_path):
    run_id, workspace = tiny_run
    with pytest.raises(ParityError, match="beyond tolerance") as caught:
        export_run(run_id, tmp_path / "x", workspace=str(workspace), tolerance=Tolerance(atol=0.0), say=lambda _: None)
    parity = caught.value.parity
    assert not parity["passed"] and parity["failures"][0].startswith("max abs diff")
    assert parity["metric"]["name"] == "accuracy" and parity["metric"]["per_class"]
    assert isinstance(caught.value, ExportError)  # callers that catch ExportError still do
    assert list(tmp_path.iterdir()) == []


def test_a_killed_swap_puts_the_earlier_export_back(tmp_path):
    out, pid = tmp_path / "x", 4242
    partial = tmp_path / f".x.partial-{pid}"
    partial.mkdir()
    (partial / "model.onnx").write_text("half")
    moved = tmp_path / f".x.replaced-{pid}-1700000000"  # killed between the swap's two renames
    moved.mkdir()
    (moved / MANIFEST_NAME).write_text("{}")
    other = tmp_path / ".x.replaced-999-1700000000"  # another process's: not ours to touch
    other.mkdir()
    discard_unfinished(out, pid)
    assert (out / MANIFEST_NAME).read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "x"]


def test_a_completed_swap_is_left_complete(tmp_path):
    out, pid = tmp_path / "x", os.getpid()
    out.mkdir()
    (out / MANIFEST_NAME).write_text("new")
    (tmp_path / f".x.replaced-{pid}-1700000000").mkdir()  # killed while removing the old one
    discard_unfinished(out, pid)
    assert (out / MANIFEST_NAME).read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["x"]


@pytest.mark.parametrize(
    ("name", "alias", "says"),
    [
        ("shapes", "best", None),
        ("shapes", "production-2", None),
        (" ", "best", "model name: give a name"),
        ("a:b", "best", "may not contain"),
        ("..up", "best", "may not start with '..'"),
        ("shapes", "Latest", "reserved by MLflow"),
        ("shapes", "V12", "names version 12"),
        ("shapes", "my best", "only letters"),
        ("shapes", "bést", None),  # MLflow's word characters are Unicode's
    ],
)
def test_registration_problems_follow_mlflow(name, alias, says):
    problem = registration_problem(name, alias)
    assert problem is None if says is None else says in problem


def test_a_bad_alias_is_refused_before_exporting(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["export", "0123abcd", "--out", str(out), "--register", "shapes", "--alias", "latest"]) == 2
    assert "--alias" in capsys.readouterr().err and not out.exists()
