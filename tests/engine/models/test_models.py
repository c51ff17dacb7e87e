"""Model presets and loading. Only tiny presets run forward passes, so this stays fast on CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.catalog.checkpoints import ModelLoadError, checkpoint_kind
from engine.catalog.presets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PRESET_FOR_HUB_ID,
    PRESETS,
    TASKS,
    list_presets,
)
from engine.models.loading import (
    default_image_size,
    load_backbone,
    load_model,
    normalization_stats,
)
from tests.conftest import REPO_ROOT


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _save(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def resnet_folder(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = load_model("resnet-tiny", "classification", num_labels=3)
    return _save(model, tmp_path_factory.mktemp("resnet-tiny"))


@pytest.fixture(scope="module")
def detr_folder(tmp_path_factory) -> Path:
    torch.manual_seed(2)
    model = load_model("detr-tiny", "detection", num_labels=3)
    return _save(model, tmp_path_factory.mktemp("detr-tiny"))


# --- presets --------------------------------------------------------------------


def test_import_stays_light():
    code = (
        "import sys, engine.models, engine.catalog.presets;"
        "from engine.catalog.presets import list_presets; list_presets();"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_a_config(name):
    preset = PRESETS[name]
    assert preset.tasks and set(preset.tasks) <= set(TASKS)
    assert len(preset.mean) == len(preset.std) == 3 and preset.image_size > 0
    for task in preset.tasks:
        config = preset.build_config(task, 4, {0: "a", 1: "b", 2: "c", 3: "d"})
        assert config.num_labels == 4
        assert config.label2id == {"a": 0, "b": 1, "c": 2, "d": 3}
    for task in set(TASKS) - set(preset.tasks):
        with pytest.raises(ValueError, match=task):
            preset.build_config(task, 4)


def test_preset_lists_and_hub_map():
    assert {p.name for p in list_presets()} == set(PRESETS)
    assert {p.name for p in list_presets("detection")} == {
        "detr-resnet-50",
        "detr-tiny",
        "conditional-detr-resnet-50",
        "conditional-detr-tiny",
        "rt-detr-v2-r18",
        "rt-detr-v2-r50",
        "rt-detr-v2-tiny",
    }
    assert all("segmentation" in p.tasks for p in list_presets("segmentation"))
    assert all(name in PRESETS for name in PRESET_FOR_HUB_ID.values())
    assert PRESET_FOR_HUB_ID["microsoft/resnet-50"] == "resnet-50"
    with pytest.raises(ValueError):
        list_presets("depth")


def test_full_size_layouts():
    b2 = PRESETS["segformer-b2"].build_config("segmentation", 2)
    assert list(b2.depths) == [3, 4, 6, 3] and list(b2.hidden_sizes) == [64, 128, 320, 512]
    assert b2.decoder_hidden_size == 768
    detr = PRESETS["detr-resnet-50"].build_config("detection", 91)
    assert detr.backbone_config.model_type == "resnet"  # not timm
    # The one full-size model built here: ResNet-50 as microsoft/resnet-50.
    model = load_model("resnet-50", "classification", num_labels=1000)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(25.56e6, rel=0.01)


# --- forward with labels on the tiny presets ---------------------------------------


@pytest.mark.parametrize("name", ["resnet-tiny", "vit-tiny"])
def test_tiny_classifier_trains(name):
    size = PRESETS[name].image_size
    model = load_model(name, "classification", num_labels=3)
    out = model(pixel_values=torch.randn(2, 3, size, size), labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3)
    assert torch.isfinite(out.loss)
    out.loss.backward()


def test_single_class_classifier_uses_cross_entropy():
    model = load_model("resnet-tiny", "classification", num_labels=1)
    assert model.config.problem_type == "single_label_classification"


def test_tiny_detr_loss_and_backward():
    size = PRESETS["detr-tiny"].image_size
    model = load_model("detr-tiny", "detection", num_labels=3)
    labels = [
        {
            "class_labels": torch.tensor([0, 2]),
            "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.3, 0.6, 0.1, 0.1]]),
        },
        # An image without objects must work too.
        {"class_labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)},
    ]
    out = model(pixel_values=torch.randn(2, 3, size, size), labels=labels)
    assert out.logits.shape == (2, 20, 4)  # 20 queries, 3 classes + "no object"
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.class_labels_classifier.weight.grad is not None


def test_tiny_segformer_loss():
    size = PRESETS["segformer-tiny"].image_size
    model = load_model("segformer-tiny", "segmentation", num_labels=3)
    labels = torch.randint(0, 3, (2, size, size))
    labels[:, :4] = 255  # ignored pixels
    out = model(pixel_values=torch.randn(2, 3, size, size), labels=labels)
    assert out.logits.shape == (2, 3, size // 4, size // 4)
    assert torch.isfinite(out.loss)
    out.loss.backward()


# --- folders --------------------------------------------------------------------------


def test_folder_replaces_head_and_keeps_backbone(resnet_folder):
    original = load_model(resnet_folder, "classification", num_labels=3)
    names = {str(i): f"c{i}" for i in range(5)}  # string keys, as after JSON
    model = load_model(str(resnet_folder), "classification", num_labels=5, id2label=names)
    assert model.classifier[-1].out_features == 5
    assert model.config.id2label[4] == "c4" and model.config.label2id["c0"] == 0
    conv = "resnet.embedder.embedder.convolution.weight"
    assert torch.equal(model.state_dict()[conv], original.state_dict()[conv])
    # The same number of classes keeps the head as well.
    same = load_model(resnet_folder, "classification", num_labels=3)
    head = "classifier.1.weight"
    assert torch.equal(same.state_dict()[head], original.state_dict()[head])


def test_folder_without_weights_when_not_pretrained(resnet_folder):
    original = load_model(resnet_folder, "classification", num_labels=3)
    scratch = load_model(resnet_folder, "classification", num_labels=2, pretrained=False)
    conv = "resnet.embedder.embedder.convolution.weight"
    assert scratch.classifier[-1].out_features == 2
    assert not torch.equal(scratch.state_dict()[conv], original.state_dict()[conv])


def test_detr_folder_new_classes(detr_folder):
    model = load_model(detr_folder, "detection", num_labels=6)
    assert model.class_labels_classifier.out_features == 7
    original = load_model(detr_folder, "detection", num_labels=3)
    key = "model.query_position_embeddings.weight"
    assert torch.equal(model.state_dict()[key], original.state_dict()[key])


def test_folder_of_wrong_task(detr_folder):
    with pytest.raises(ModelLoadError, match="classification") as err:
        load_model(detr_folder, "classification", num_labels=2)
    assert "resnet-tiny" in str(err.value)


def test_missing_and_bad_folders(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(str(tmp_path / "no" / "such-model"), "classification", num_labels=2)
    with pytest.raises(ModelLoadError, match="not found"):
        checkpoint_kind("./missing-model")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="file"):
        checkpoint_kind(tmp_path / "weights.bin")
    with pytest.raises(ModelLoadError, match="config.json"):
        load_model(tmp_path, "classification", num_labels=2)


# --- names and errors ---------------------------------------------------------------------


def test_checkpoint_kinds(resnet_folder):
    assert checkpoint_kind("resnet-50") == "preset"
    assert checkpoint_kind("ResNet-50") == "preset"
    assert checkpoint_kind(resnet_folder) == "folder"
    assert checkpoint_kind("microsoft/resnet-50") == "hub"


def test_offline_hub_id_suggests_preset(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable at import time; make sure it is on.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError) as err:
        load_model("microsoft/resnet-50", "classification", num_labels=2)
    message = str(err.value)
    assert "microsoft/resnet-50" in message and "cache" in message
    assert "'resnet-50'" in message and "lightbox models" in message

    with pytest.raises(ModelLoadError, match="segformer-tiny"):
        load_model("someone/unknown-model", "segmentation", num_labels=2)


def test_typo_suggests_preset():
    with pytest.raises(ModelLoadError, match="did you mean 'resnet-18'"):
        load_model("resnet18", "classification", num_labels=2)
    with pytest.raises(ModelLoadError, match="'detr-tiny'"):
        checkpoint_kind("detr-tiy")


def test_preset_of_wrong_task():
    with pytest.raises(ModelLoadError, match="classification") as err:
        load_model("detr-tiny", "classification", num_labels=2)
    assert "'detr-tiny'" in str(err.value) and "resnet-tiny" in str(err.value)


def test_bad_labels_and_task():
    with pytest.raises(ModelLoadError, match="num_labels"):
        load_model("resnet-tiny", "classification", num_labels=0)
    with pytest.raises(ModelLoadError, match="id2label"):
        load_model("resnet-tiny", "classification", num_labels=3, id2label={0: "a"})
    with pytest.raises(ModelLoadError, match="task"):
        load_model("resnet-tiny", "depth", num_labels=3)


# --- preprocessing facts and backbones -----------------------------------------------------------


def test_normalization_stats(resnet_folder, tmp_path):
    assert normalization_stats("resnet-tiny") == (IMAGENET_MEAN, IMAGENET_STD)
    assert normalization_stats("vit-base") == ((0.5,) * 3, (0.5,) * 3)
    assert normalization_stats(resnet_folder) == (IMAGENET_MEAN, IMAGENET_STD)
    folder = tmp_path / "m"
    folder.mkdir()
    processor = {
        "image_mean": [0.1, 0.2, 0.3],
        "image_std": [0.4, 0.5, 0.6],
        "size": {"height": 96, "width": 96},
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    assert normalization_stats(folder) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert default_image_size(folder, "segmentation") == 96


def test_default_image_size(resnet_folder, tmp_path):
    assert default_image_size("detr-tiny", "detection") == 128
    assert default_image_size(resnet_folder, "classification") == 224  # task default
    vit = _save(load_model("vit-tiny", "classification", num_labels=2), tmp_path / "vit")
    assert default_image_size(vit, "classification") == 32


def test_load_backbone_preset():
    backbone, channels = load_backbone("resnet-tiny")
    assert channels == 32
    features = backbone(torch.randn(2, 3, 64, 64))
    assert features.shape == (2, channels, 8, 8)
    _, detr_channels = load_backbone("detr-tiny")
    assert detr_channels == 64
    with pytest.raises(ModelLoadError, match="backbone"):
        load_backbone("vit-tiny")


def test_load_backbone_folder_keeps_weights(resnet_folder):
    classifier = load_model(resnet_folder, "classification", num_labels=3)
    backbone, channels = load_backbone(resnet_folder)
    assert channels == 32
    assert torch.equal(
        backbone.backbone.embedder.embedder.convolution.weight,
        classifier.resnet.embedder.embedder.convolution.weight,
    )
    scratch, _ = load_backbone(resnet_folder, pretrained=False)
    assert not torch.equal(
        scratch.backbone.embedder.embedder.convolution.weight,
        classifier.resnet.embedder.embedder.convolution.weight,
    )


def test_timm_backbone_config_explains(tmp_path):
    import importlib.util

    from transformers import DetrConfig

    if importlib.util.find_spec("timm") is not None:
        pytest.skip("timm is installed, so timm backbones load")
    # What facebook/detr-* configs look like: a timm backbone.
    DetrConfig().save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="timm"):
        load_model(tmp_path, "detection", num_labels=2, pretrained=False)
