"""Turn a checkpoint string into a transformers model for a task.

A checkpoint is one of:

* an offline preset name (``resnet-50``, ``detr-tiny``...): random weights, no network;
* a local folder written by ``save_pretrained`` (or any folder with a config.json);
* a HuggingFace hub id (``org/name``), served from the local cache when offline.

An exact preset name wins over a folder of the same name in the working
directory; write ``./resnet-18`` to mean the folder.

Every failure a user can cause raises :class:`ModelLoadError`, whose message
names the checkpoint and says what to do instead. torch and transformers are
imported inside the functions so that importing this module (for example to
catch ModelLoadError) stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from engine.catalog.checkpoints import CheckpointKind, ModelLoadError, checkpoint_file, checkpoint_kind, presets_hint
from engine.catalog.presets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PRESET_FOR_HUB_ID,
    TASKS,
    Preset,
    get_preset,
    list_presets,
    normalise_id2label,
)
from engine.config.task_defaults import DEFAULT_IMAGE_SIZE

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

Stats = tuple[tuple[float, float, float], tuple[float, float, float]]


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ModelLoadError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def _labels(checkpoint: str, num_labels: int, id2label: Mapping[int, str] | None) -> dict[int, str]:
    try:
        return normalise_id2label(num_labels, id2label)
    except ValueError as err:
        raise ModelLoadError(f"cannot load {checkpoint!r}: {err}") from err


# --- task support -------------------------------------------------------------


def task_model_types(task: str) -> Mapping[str, str]:
    """model_type -> class name for the Auto class behind ``task``."""
    from transformers.models.auto import modeling_auto as auto

    return {
        "classification": auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
        "detection": auto.MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES,
        "segmentation": auto.MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES,
    }[task]


def _auto_class(task: str):
    import transformers

    return {
        "classification": transformers.AutoModelForImageClassification,
        "detection": transformers.AutoModelForObjectDetection,
        "segmentation": transformers.AutoModelForSemanticSegmentation,
    }[task]


def _cannot_do(checkpoint: str, task: str, what: str) -> ModelLoadError:
    return ModelLoadError(f"{checkpoint!r} ({what}) cannot do {task}; {presets_hint(task)}")


def _check_config_task(checkpoint: str, config: PretrainedConfig, task: str) -> None:
    if config.model_type not in task_model_types(task):
        raise _cannot_do(checkpoint, task, f"model type {config.model_type!r}")


# --- loading ------------------------------------------------------------------


def load_model(
    checkpoint: str | os.PathLike,
    task: str,
    *,
    num_labels: int,
    id2label: Mapping[int, str] | None = None,
    pretrained: bool = True,
) -> PreTrainedModel:
    """A model for ``task`` with a head of ``num_labels`` classes.

    Presets get random weights. Folders and hub ids load their weights
    (``pretrained=True``); a head trained for another number of classes is
    replaced by a fresh one while the rest keeps its weights, which is what
    fine-tuning wants. ``pretrained=False`` keeps only the architecture.
    For segmentation ``num_labels`` counts the background class; for
    detection it excludes DETR's internal "no object" class.
    """
    _check_task(task)
    name = str(checkpoint).strip()
    labels = _labels(name, num_labels, id2label)
    kind = checkpoint_kind(name)

    if kind == "preset":
        preset = get_preset(name)
        if not preset.supports(task):
            raise _cannot_do(name, task, f"a {preset.family} preset for {', '.join(preset.tasks)}")
        config = preset.build_config(task, num_labels, labels)
        return train_conv_backbone(_auto_class(task).from_config(config), pretrained_weights=False)

    source = str(Path(name).expanduser()) if kind == "folder" else name
    config = _load_config(name, kind, source)
    _check_config_task(name, config, task)
    config.id2label = labels
    config.label2id = {label: i for i, label in labels.items()}
    if task == "classification":
        config.problem_type = "single_label_classification"

    auto = _auto_class(task)
    try:
        if not pretrained:
            return train_conv_backbone(auto.from_config(config), pretrained_weights=False)
        # The config above already carries the new labels, so a head of
        # another size shows up as a shape mismatch and is re-initialised.
        model = auto.from_pretrained(source, config=config, ignore_mismatched_sizes=True)
        return train_conv_backbone(model, pretrained_weights=True)
    except ImportError as err:
        raise ModelLoadError(_missing_package_message(name, err)) from err
    except OSError as err:
        raise ModelLoadError(_weights_message(name, kind, err)) from err


def _is_conv_encoder(module: torch.nn.Module) -> bool:
    # DetrConvEncoder and its relatives (Conditional / Deformable DETR...) wrap the
    # backbone as ``.model`` and freeze it by parameter name at construction.
    from torch import nn

    return type(module).__name__.endswith("ConvEncoder") and isinstance(getattr(module, "model", None), nn.Module)


def _thaw_batch_norm(module: torch.nn.Module) -> None:
    """Swap transformers' frozen BatchNorm back for a trainable ``nn.BatchNorm2d`` (same values)."""
    import torch
    from torch import nn

    for child_name, child in module.named_children():
        if type(child).__name__.endswith("FrozenBatchNorm2d"):
            norm = nn.BatchNorm2d(child.weight.numel())
            with torch.no_grad():
                norm.weight.copy_(child.weight)
                norm.bias.copy_(child.bias)
                norm.running_mean.copy_(child.running_mean)
                norm.running_var.copy_(child.running_var)
            module._modules[child_name] = norm.to(child.weight.device)
        else:
            _thaw_batch_norm(child)


def train_conv_backbone(model: PreTrainedModel, *, pretrained_weights: bool) -> PreTrainedModel:
    """Make a detector's convolutional backbone trainable.

    transformers' DETR encoder freezes every backbone parameter whose name lacks
    ``stage.1/2/3``, but its ResNet backbone names them ``encoder.stages.N``,
    so nothing in it would ever train; it also swaps BatchNorm for a frozen one.
    With pretrained weights everything but the stem (``embedder``) trains and the
    frozen BatchNorm stays (the DETR recipe: small batches, ImageNet statistics);
    with random weights everything trains, BatchNorm included.
    """
    for encoder in [m for m in model.modules() if _is_conv_encoder(m)]:
        backbone = encoder.model
        if not pretrained_weights:
            _thaw_batch_norm(backbone)
        for param_name, param in backbone.named_parameters():
            param.requires_grad_(not pretrained_weights or "embedder" not in param_name)
    return model


def _load_config(name: str, kind: CheckpointKind, source: str) -> PretrainedConfig:
    from transformers import AutoConfig

    if kind == "folder" and not (Path(source) / "config.json").is_file():
        raise ModelLoadError(
            f"model folder {name!r} has no config.json; give a folder written by "
            f"save_pretrained, or use a preset ({presets_hint()})"
        )
    try:
        return AutoConfig.from_pretrained(source)
    except ImportError as err:
        raise ModelLoadError(_missing_package_message(name, err)) from err
    except (OSError, ValueError) as err:
        # OSError: not cached / unreachable / no such repo. ValueError: a
        # config of a model_type this transformers version does not know.
        if kind == "hub":
            raise ModelLoadError(_hub_message(name, err)) from err
        raise ModelLoadError(f"cannot read the config of model folder {name!r}: {err}") from err


def _preset_instead(name: str) -> str:
    preset = PRESET_FOR_HUB_ID.get(name)
    if preset:
        return f"use the offline preset {preset!r} (same architecture, random weights)"
    return f"use an offline preset ({presets_hint()})"


def _hub_message(hub_id: str, err: Exception) -> str:
    instead = _preset_instead(hub_id)
    offline = " (HF_HUB_OFFLINE is set)" if _hub_offline() else ""
    return (
        f"cannot load {hub_id!r} from the HuggingFace hub{offline}: it is not in the local "
        f"cache and the hub could not be reached, or no such model exists. "
        f"Download it while online (or copy a save_pretrained folder) and pass that folder, "
        f"or {instead}; see `lightbox models`. Detail: {_first_line(err)}"
    )


def _weights_message(name: str, kind: CheckpointKind, err: Exception) -> str:
    if kind == "hub":
        return _hub_message(name, err)
    return (
        f"cannot load the weights of model folder {name!r}: {_first_line(err)}; "
        "pass pretrained=False to train this architecture from scratch"
    )


def _missing_package_message(name: str, err: ImportError) -> str:
    # e.g. hub DETR checkpoints whose config asks for a timm backbone.
    return (
        f"{name!r} needs a package that is not installed ({_first_line(err)}); install it, or {_preset_instead(name)}"
    )


def _hub_offline() -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; ask it, not os.environ.
    from huggingface_hub import constants

    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --- preprocessing facts --------------------------------------------------------


def normalization_stats(checkpoint: str | os.PathLike) -> Stats:
    """Per-channel (mean, std) for 0..1 RGB input the checkpoint expects."""
    name = str(checkpoint).strip()
    preset = _preset_or_none(name)
    if preset is not None:
        return preset.mean, preset.std
    processor = checkpoint_file(name, "preprocessor_config.json") or {}
    mean, std = processor.get("image_mean"), processor.get("image_std")
    if _is_triplet(mean) and _is_triplet(std):
        return tuple(float(v) for v in mean), tuple(float(v) for v in std)
    return IMAGENET_MEAN, IMAGENET_STD


def _is_triplet(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 3


def default_image_size(checkpoint: str | os.PathLike, task: str) -> int:
    """The square input side the checkpoint was built for, else a task default."""
    _check_task(task)
    name = str(checkpoint).strip()
    preset = _preset_or_none(name)
    if preset is not None:
        return preset.image_size
    # Models with fixed position embeddings (ViT) record the size in config.json.
    config = checkpoint_file(name, "config.json") or {}
    if isinstance(config.get("image_size"), int):
        return config["image_size"]
    processor = checkpoint_file(name, "preprocessor_config.json") or {}
    size = processor.get("size")
    if isinstance(size, int):
        return size
    if isinstance(size, dict):
        for key in ("shortest_edge", "height"):
            if isinstance(size.get(key), int):
                return size[key]
    return DEFAULT_IMAGE_SIZE[task]


def _preset_or_none(name: str) -> Preset | None:
    return get_preset(name) if checkpoint_kind(name) == "preset" else None


# --- backbones --------------------------------------------------------------------


def _backbone_form(name: str):
    """(kind, source, architecture config, backbone class or None) of a checkpoint; builds no weights."""
    from transformers import MODEL_FOR_BACKBONE_MAPPING

    kind = checkpoint_kind(name)
    if kind == "preset":
        config = get_preset(name).architecture()
        # A detector preset carries its own backbone config.
        config = getattr(config, "backbone_config", None) or config
        source = None
    else:
        source = str(Path(name).expanduser()) if kind == "folder" else name
        config = _load_config(name, kind, source)
    backbone_class = MODEL_FOR_BACKBONE_MAPPING.get(type(config), None)
    if not hasattr(config, "stage_names"):
        backbone_class = None
    return kind, source, config, backbone_class


def has_backbone_form(checkpoint: str | os.PathLike) -> bool:
    """Whether :func:`load_backbone` can use this checkpoint (reads its config only)."""
    return _backbone_form(str(checkpoint).strip())[3] is not None


def load_backbone(checkpoint: str | os.PathLike, *, pretrained: bool = True) -> tuple[torch.nn.Module, int]:
    """A feature extractor returning the last stage map (B, C, H/s, W/s), and C.

    Works for presets and checkpoints whose architecture transformers offers
    as a backbone (ResNet, ConvNeXt, Swin, DINOv2...); DETR presets give their
    ResNet backbone. The stride ``s`` is 32 for full ResNets (less for the tiny ones).
    """
    from engine.models.backbone import LastFeatureMap

    name = str(checkpoint).strip()
    kind, source, config, backbone_class = _backbone_form(name)
    if backbone_class is None:
        usable = ", ".join(
            p.name for p in list_presets() if p.family in {"resnet", "detr", "conditional_detr", "rt_detr_v2"}
        )
        raise ModelLoadError(
            f"{name!r} (model type {config.model_type!r}) has no backbone form in "
            f"transformers; use a ResNet-like checkpoint or one of the presets {usable}"
        )
    config.out_features = [config.stage_names[-1]]

    if source is None or not pretrained:
        backbone = backbone_class(config)
    else:
        # Not AutoBackbone.from_pretrained: in transformers 5.x it asks the hub
        # whether the repo exists first and so rejects local folders.
        try:
            backbone = backbone_class.from_pretrained(source, config=config)
        except OSError as err:
            raise ModelLoadError(_weights_message(name, kind, err)) from err
    return LastFeatureMap(backbone), int(backbone.channels[-1])
