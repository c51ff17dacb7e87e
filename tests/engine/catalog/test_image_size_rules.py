"""Image sizes a model cannot take are refused before a run starts; which weights a run starts from.

Issue #16 items 5 and 7: image size 400 was accepted and crashed rt-detr-v2-tiny at its first
step ("Sizes of tensors must match ... 26 but got 25"); every offline preset trains from random
weights while nothing said so. Nothing here touches the network: a "hub" checkpoint is a tiny
model the test writes with save_pretrained into a temporary Hugging Face cache layout.
"""

import json
import os
import subprocess
import sys

import pytest

from engine.config import ConfigError, RunConfig
from tests.conftest import REPO_ROOT, write_cached_model

ROOT = REPO_ROOT


def _config(task, checkpoint, size):
    model = {"checkpoint": checkpoint} if checkpoint else {}
    return RunConfig.from_dict({"task": {"name": task}, "model": model, "data": {"image_size": size}}, "run.yaml")


def test_a_size_rt_detr_cannot_take_is_refused_with_the_nearest_valid_sizes():
    with pytest.raises(ConfigError) as caught:
        _config("detection", "rt-detr-v2-tiny", 400)
    ((path, message),) = caught.value.problems
    assert path == "data.image_size"
    assert "multiple of 32" in message and "384 or 416" in message and "(got 400)" in message
    assert str(caught.value).startswith("run.yaml: data.image_size: rt-detr-v2-tiny")
    # The task default for detection is rt-detr-v2-tiny: an empty checkpoint is checked the same way.
    with pytest.raises(ConfigError, match="384 or 416"):
        _config("detection", None, 400)
    assert _config("detection", "rt-detr-v2-tiny", 416).data.image_size == 416
    assert _config("detection", "detr-tiny", 400).data.image_size == 400  # DETR pads: any size
    assert _config("segmentation", "segformer-tiny", 100).data.image_size == 100
    assert _config("classification", "resnet-tiny", 33).data.image_size == 33


def test_a_vit_takes_only_its_own_size():
    with pytest.raises(ConfigError, match=r"takes only 32 px images.*use 32 \(got 64\)"):
        _config("classification", "vit-tiny", 64)
    assert _config("classification", "vit-tiny", 32).data.image_size == 32


def test_the_rule_holds_for_overrides_and_for_a_model_folder(tmp_path):
    base = _config("detection", "rt-detr-v2-tiny", 128)
    with pytest.raises(ConfigError, match="nearest valid sizes: 96 or 128"):
        base.with_overrides({"data.image_size": 100})
    folder = tmp_path / "my-detector"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "rt_detr_v2"}))
    with pytest.raises(ConfigError, match=r"my-detector \(rt_detr_v2\) needs a multiple of 32"):
        _config("detection", str(folder), 200)


def test_the_command_line_refuses_the_size_before_training(tmp_path, sample_dataset):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "train",
            "--data",
            str(sample_dataset),
            "--task",
            "detection",
            "--model",
            "rt-detr-v2-tiny",
            "--image-size",
            "400",
            "--workspace",
            str(tmp_path / "ws"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "data.image_size" in done.stderr and "384 or 416" in done.stderr
    assert not (tmp_path / "ws" / "runs").exists()  # refused before any run was opened


# ---------------------------------------------------------------------- which weights
_write_cached_model = write_cached_model


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_an_offline_preset_says_random_weights(hf_cache):
    from engine.models.weights import run_weights, starting_weights

    weights = starting_weights("rt-detr-v2-tiny")
    assert weights.source == "preset" and not weights.pretrained
    assert weights.text.startswith("random weights: rt-detr-v2-tiny is an offline preset")
    assert run_weights(RunConfig.from_dict({"task": "detection"})) == weights.text
    # pretrained: true in the config changes nothing for a preset: it has no trained weights.
    assert starting_weights("resnet-18", pretrained=True).source == "preset"


def test_a_cached_checkpoint_is_found_offline_and_said_to_be_pretrained(hf_cache):
    from engine.catalog.family import family_of
    from engine.catalog.input_size import size_rule
    from engine.models.weights import cached_checkpoints, starting_weights

    assert cached_checkpoints("classification") == []
    assert starting_weights("lightbox-test/tiny-resnet").source == "download"
    _write_cached_model(hf_cache, "lightbox-test/tiny-resnet")
    _write_cached_model(hf_cache, "lightbox-test/config-only", with_weights=False)
    assert cached_checkpoints("classification") == ["lightbox-test/tiny-resnet"]  # weights, and the task
    assert cached_checkpoints("detection") == []
    weights = starting_weights("lightbox-test/tiny-resnet")
    assert weights.source == "cache" and weights.pretrained
    assert weights.text == "pretrained weights of lightbox-test/tiny-resnet from the local Hugging Face cache"
    assert starting_weights("lightbox-test/tiny-resnet", pretrained=False).source == "random"
    assert family_of("lightbox-test/tiny-resnet") == "resnet" and size_rule("lightbox-test/tiny-resnet") is None


def test_a_model_folder_with_and_without_weights(tmp_path):
    from engine.models.loading import load_model
    from engine.models.weights import starting_weights

    folder = tmp_path / "mine"
    load_model("resnet-tiny", "classification", num_labels=2).save_pretrained(folder)
    assert starting_weights(str(folder)).source == "folder"
    (folder / "model.safetensors").unlink()
    missing = starting_weights(str(folder))
    assert missing.source == "missing" and "untick 'Pretrained weights'" in missing.text


def test_a_multitask_run_says_the_weights_of_each_model():
    from engine.models.weights import run_weights

    config = RunConfig.from_dict(
        {
            "task": {"name": "multitask", "tasks": ["classification", "detection"]},
            "model": {"checkpoints": {"classification": "resnet-tiny"}},
        }
    )
    line = run_weights(config)
    assert line.startswith("classification: random weights: resnet-tiny is an offline preset")
    assert "; detection: random weights: rt-detr-v2-tiny is an offline preset" in line
