"""`lightbox lr-find`: a learning-rate range test on the demo data with a tiny preset."""

import json
import math

import pytest

from engine.cli import main
from engine.config import RunConfig
from engine.orchestration.lr_find import find_lr


def _config(data, **overrides):
    base = {
        "data.path": str(data),
        "model.checkpoint": "resnet-tiny",
        "optim.batch_size": 8,
        "data.image_size": 32,
        "data.num_workers": 0,
    }
    base.update(overrides)
    return RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(base)


@pytest.mark.slow
def test_find_lr_sweeps_the_range_and_suggests_a_rate_inside_it(sample_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = find_lr(_config(sample_dataset), min_lr=1e-5, max_lr=1.0, num_steps=20)
    assert result.steps == len(result.lrs) == len(result.losses) and 5 <= result.steps <= 20
    assert result.lrs == sorted(result.lrs) and result.lrs[0] >= 1e-5 and result.lrs[-1] <= 1.0
    assert result.lr is not None and 1e-5 <= result.lr <= 1.0
    assert any(math.isfinite(x) for x in result.losses)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_find_lr_rejects_a_bad_range(sample_dataset):
    with pytest.raises(ValueError, match="min_lr"):
        find_lr(_config(sample_dataset), min_lr=1.0, max_lr=0.1)


def test_cli_prints_the_suggestion_and_json(sample_dataset, capsys):
    code = main(
        [
            "lr-find",
            "--data",
            str(sample_dataset),
            "--task",
            "classification",
            "--model",
            "resnet-tiny",
            "--batch-size",
            "8",
            "--image-size",
            "32",
            "--num-workers",
            "0",
            "--steps",
            "12",
            "--no-progress",
        ]
    )
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert code == (0 if result["lr"] is not None else 1)
    assert len(result["lrs"]) == result["steps"]
    if result["lr"] is not None:
        assert "suggested learning rate" in out.err


def test_cli_names_a_missing_dataset(tmp_path, capsys):
    code = main(["lr-find", "--data", str(tmp_path / "nowhere"), "--task", "classification", "--model", "resnet-tiny"])
    assert code == 2 and "lightbox lr-find:" in capsys.readouterr().err
