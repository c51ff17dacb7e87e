"""`lightbox eval` and `predict RUN_ID` on another machine, over nested folders, and without overwriting."""

import dataclasses
import shutil
import tomllib
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from PIL import Image

from engine.cli import main
from engine.config import RunConfig
from engine.orchestration import evaluate
from engine.orchestration.local import TrainingError, train
from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


def _config(data, workspace, task="classification", model="resnet-tiny", **overrides):
    base = {
        "data.path": str(data),
        "model.checkpoint": model,
        "optim.epochs": 1,
        "optim.batch_size": 8,
        "optim.lr": 1e-3,
        "data.image_size": 32,
        "data.num_workers": 0,
        "workspace": str(workspace),
    }
    base.update(overrides)
    return RunConfig.from_dict({"task": {"name": task}}).with_overrides(base)


@pytest.fixture(scope="module")
def classification_run(sample_dataset, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("ws")
    result = train(_config(sample_dataset, workspace), progress=False)
    assert result.status == "FINISHED"
    return result, workspace


@pytest.fixture(scope="module")
def segmentation_run(sample_dataset, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("ws")
    result = train(_config(sample_dataset, workspace, "segmentation", "segformer-tiny"), progress=False)
    assert result.status == "FINISHED"
    return result, workspace


# ------------------------------------------------------------------ normalisation decided by this machine


@pytest.mark.parametrize("on_device", [True, False])
def test_eval_follows_the_normalisation_of_the_evaluating_machine(classification_run, monkeypatch, on_device):
    """Trained where the loader normalised; evaluated where the model is told to (a GPU machine)
    and the other way round: the metrics are those of the training machine either way."""
    result, workspace = classification_run
    reference = evaluate.evaluate_run(result.run_id, workspace=str(workspace))["metrics"]
    original = evaluate.speed_settings

    def other_machine(config, family=None):
        return dataclasses.replace(original(config, family), normalize_on_device=on_device)

    monkeypatch.setattr(evaluate, "speed_settings", other_machine)
    checkpoint = evaluate.run_files(result.run_id, workspace=str(workspace))[2]
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    saved["hyper_parameters"]["normalize_on_device"] = not on_device  # what the training machine chose
    torch.save(saved, checkpoint)
    got = evaluate.evaluate_run(result.run_id, workspace=str(workspace))["metrics"]
    assert got == pytest.approx(reference, abs=1e-6)


# ------------------------------------------------------------------ predicted masks


def _nested_images(sample_dataset, folder):
    """a/x.jpg, b/x.jpg (different pictures, same name) and a/x.png."""
    sources = sorted((sample_dataset / "val").glob("*.jpg"))[:2]
    for sub, source in zip(("a", "b"), sources):
        (folder / sub).mkdir(parents=True)
        shutil.copy(source, folder / sub / "x.jpg")
    Image.open(sources[1]).save(folder / "a" / "x.png")
    return folder


def test_predicted_masks_keep_each_images_relative_path(segmentation_run, sample_dataset, tmp_path):
    result, workspace = segmentation_run
    images = _nested_images(sample_dataset, tmp_path / "images")
    out = tmp_path / "preds.json"
    evaluate.predict_run(result.run_id, images, out, workspace=str(workspace))
    import json

    predictions = json.loads(out.read_text())["predictions"]
    files = {p["file_name"]: Path(p["mask_file"]) for p in predictions}
    assert set(files) == {"a/x.jpg", "b/x.jpg", "a/x.png"}
    assert len(set(files.values())) == 3 and all(f.is_file() for f in files.values())
    assert files["a/x.jpg"] == tmp_path / "preds" / "a" / "x.jpg.png"
    for name, mask in files.items():
        with Image.open(mask) as m, Image.open(images / name) as image:
            assert m.size == image.size


def test_predict_never_writes_over_earlier_predictions(segmentation_run, sample_dataset, tmp_path, capsys):
    result, workspace = segmentation_run
    images = _nested_images(sample_dataset, tmp_path / "images")
    out = tmp_path / "preds.json"
    evaluate.predict_run(result.run_id, images, out, workspace=str(workspace))
    before = {p: p.read_bytes() for p in tmp_path.joinpath("preds").rglob("*.png")}
    before[out] = out.read_bytes()
    with pytest.raises(TrainingError, match="preds.json already exists"):
        evaluate.predict_run(result.run_id, images, out, workspace=str(workspace))
    out.rename(tmp_path / "moved.json")  # the masks alone are still refused
    assert main(["predict", result.run_id, str(images), "--out", str(out), "--workspace", str(workspace)]) == 2
    assert "preds already exists" in capsys.readouterr().err
    (tmp_path / "moved.json").rename(out)
    assert {p: p.read_bytes() for p in before} == before


# ------------------------------------------------------------------ dependency floors and safe loading


def _requirement(name):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return next(Requirement(r) for r in project["dependencies"] if Requirement(r).name == name)


def test_floors_exclude_versions_that_fail_silently_and_admit_the_gpu_machine():
    torch_req, lightning_req = _requirement("torch"), _requirement("lightning")
    assert not torch_req.specifier.contains("2.5.1")  # torch.load unpickles anything by default
    assert not lightning_req.specifier.contains("2.6.0")  # set_epoch not passed through the sampler wrapper
    assert torch_req.specifier.contains("2.11.0") and lightning_req.specifier.contains("2.6.1")
    assert _requirement("torchvision").specifier.contains("0.26.0")
    assert _requirement("transformers").specifier.contains("5.17.0")


def test_checkpoints_are_loaded_weights_only(classification_run, monkeypatch):
    result, workspace = classification_run
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    evaluate.evaluate_run(result.run_id, workspace=str(workspace))
    resumed = train(resume_run_id=result.run_id, workspace=workspace, progress=False)  # already at its end
    assert resumed.status == "FINISHED"
    assert calls and all(flag is True for flag in calls), calls
