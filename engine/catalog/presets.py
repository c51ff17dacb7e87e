"""Offline model presets: architectures built from a config, with random weights.

A preset needs no network: it is a named transformers config. The full-size
presets copy the layout of a well-known hub checkpoint (``hub_id``) so a model
trained from scratch here has the same shape as one fine-tuned from the hub;
the tiny presets exist so tests and demos train in seconds on a CPU.

transformers is imported only inside the config builders, so listing presets
(``lightbox models``) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.catalog.task_names import SINGLE_TASKS

if TYPE_CHECKING:
    from transformers import PretrainedConfig

# Builds a preset's transformers config; transformers is imported only when it is called.
ConfigBuilder = Callable[[], "PretrainedConfig"]

# Presets are built per single task (a multitask model takes its backbone from one).
TASKS = SINGLE_TASKS

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
# google/vit-* processors normalise to [-1, 1]; the ViT presets keep that so a
# switch to the hub weights does not change the input pipeline.
HALF_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
HALF_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
# RT-DETR's processors only rescale to 0..1 (no mean/std); its presets keep that.
ZERO_MEAN: tuple[float, float, float] = (0.0, 0.0, 0.0)
UNIT_STD: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Preset:
    name: str
    tasks: tuple[str, ...]
    description: str
    family: str
    image_size: int
    # Builds the architecture config without any label information.
    architecture: Callable[[], PretrainedConfig]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    hub_id: str | None = None

    def supports(self, task: str) -> bool:
        return task in self.tasks

    def build_config(self, task: str, num_labels: int, id2label: Mapping[int, str] | None = None) -> PretrainedConfig:
        """The transformers config for ``task`` with ``num_labels`` classes."""
        if task not in self.tasks:
            raise ValueError(f"preset {self.name!r} cannot do {task!r}; it supports {', '.join(self.tasks)}")
        id2label = normalise_id2label(num_labels, id2label)
        config = self.architecture()
        config.id2label = id2label
        config.label2id = {name: i for i, name in id2label.items()}
        if task == "classification":
            # Without this, transformers treats num_labels == 1 as regression (MSE).
            config.problem_type = "single_label_classification"
        return config


def normalise_id2label(num_labels: int, id2label: Mapping[int, str] | None) -> dict[int, str]:
    """``id2label`` with int keys, or a generated one; checked against ``num_labels``."""
    if not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be an integer >= 1, got {num_labels!r}")
    if id2label is None:
        return {i: f"class_{i}" for i in range(num_labels)}
    # Keys arrive as strings after a JSON round trip.
    out = {int(k): str(v) for k, v in id2label.items()}
    if sorted(out) != list(range(num_labels)):
        raise ValueError(
            f"id2label must have the keys 0..{num_labels - 1} (num_labels={num_labels}), got {sorted(out)}"
        )
    return out


# --- architecture builders -------------------------------------------------


def _resnet(embedding_size: int, hidden_sizes: Sequence[int], depths: Sequence[int], layer_type: str) -> ConfigBuilder:
    def build() -> PretrainedConfig:
        from transformers import ResNetConfig

        # out_features is taken by the backbone mixin at run time; the typed signature omits it.
        return ResNetConfig(  # type: ignore[call-arg]
            embedding_size=embedding_size,
            hidden_sizes=list(hidden_sizes),
            depths=list(depths),
            layer_type=layer_type,
            downsample_in_first_stage=False,
            # The last stage is the feature map a backbone user wants.
            out_features=[f"stage{len(depths)}"],
        )

    return build


def _vit(
    image_size: int, patch_size: int, hidden_size: int, layers: int, heads: int, intermediate: int
) -> ConfigBuilder:
    def build() -> PretrainedConfig:
        from transformers import ViTConfig

        return ViTConfig(
            image_size=image_size,
            patch_size=patch_size,
            hidden_size=hidden_size,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=intermediate,
        )

    return build


def _detr_layout(
    config_name: str, backbone: ConfigBuilder, d_model: int, layers: int, heads: int, ffn: int, queries: int
) -> ConfigBuilder:
    """A DETR-family config (``DetrConfig`` or ``ConditionalDetrConfig``: the same fields)."""

    def build() -> PretrainedConfig:
        import transformers

        # The DETR configs default to a timm backbone, and timm is not a dependency:
        # give them the transformers ResNet backbone instead. backbone=None and
        # use_pretrained_backbone=False keep transformers 4.x from rejecting the
        # mix or fetching weights; 5.x ignores them.
        return getattr(transformers, config_name)(
            use_timm_backbone=False,
            backbone=None,
            use_pretrained_backbone=False,
            backbone_config=backbone(),
            d_model=d_model,
            encoder_layers=layers,
            decoder_layers=layers,
            encoder_attention_heads=heads,
            decoder_attention_heads=heads,
            encoder_ffn_dim=ffn,
            decoder_ffn_dim=ffn,
            num_queries=queries,
        )

    return build


def _detr(*layout: Any) -> ConfigBuilder:
    return _detr_layout("DetrConfig", *layout)


def _conditional_detr(*layout: Any) -> ConfigBuilder:
    # Conditional DETR: DETR's layout with conditional cross-attention and a sigmoid
    # focal classifier; it converges several times faster than DETR from scratch.
    return _detr_layout("ConditionalDetrConfig", *layout)


def _rt_detr_resnet(
    embedding_size: int, hidden_sizes: Sequence[int], depths: Sequence[int], layer_type: str
) -> ConfigBuilder:
    def build() -> PretrainedConfig:
        from transformers import RTDetrResNetConfig

        # RT-DETR's ResNet-vd (deep stem, average-pool shortcut); the hybrid encoder
        # reads the last three stages (strides 8, 16, 32).
        return RTDetrResNetConfig(  # type: ignore[call-arg]  # out_features: see _resnet
            embedding_size=embedding_size,
            hidden_sizes=list(hidden_sizes),
            depths=list(depths),
            layer_type=layer_type,
            downsample_in_bottleneck=True,
            out_features=["stage2", "stage3", "stage4"],
        )

    return build


def _rt_detr_v2(
    backbone: ConfigBuilder,
    encoder_in: Sequence[int],
    d_model: int,
    ffn: int,
    heads: int,
    decoder_layers: int,
    queries: int,
    denoising: int,
    expansion: float,
) -> ConfigBuilder:
    def build() -> PretrainedConfig:
        from transformers import RTDetrV2Config

        # RT-DETR v2: a CNN + hybrid encoder whose top-scoring features seed the
        # queries, denoising queries and a varifocal loss; it needs far fewer epochs
        # from scratch than DETR's learned queries.
        return RTDetrV2Config(
            backbone_config=backbone(),
            encoder_in_channels=list(encoder_in),
            encoder_hidden_dim=d_model,
            encoder_ffn_dim=ffn,
            encoder_attention_heads=heads,
            hidden_expansion=expansion,
            d_model=d_model,
            decoder_in_channels=[d_model] * 3,
            decoder_ffn_dim=ffn,
            decoder_attention_heads=heads,
            decoder_layers=decoder_layers,
            num_queries=queries,
            num_denoising=denoising,
        )

    return build


def _segformer(
    depths: Sequence[int], hidden_sizes: Sequence[int], heads: Sequence[int], decoder_hidden_size: int
) -> ConfigBuilder:
    def build() -> PretrainedConfig:
        from transformers import SegformerConfig

        return SegformerConfig(
            depths=list(depths),
            hidden_sizes=list(hidden_sizes),
            num_attention_heads=list(heads),
            decoder_hidden_size=decoder_hidden_size,
        )

    return build


_RESNET_18 = _resnet(64, [64, 128, 256, 512], [2, 2, 2, 2], "basic")
_RESNET_50 = _resnet(64, [256, 512, 1024, 2048], [3, 4, 6, 3], "bottleneck")
_RESNET_TINY = _resnet(16, [16, 32], [1, 1], "basic")
# Three stages so the detector sees stride 16, enough cells for a 128 px image.
_RESNET_DETR_TINY = _resnet(16, [16, 32, 64], [1, 1, 1], "basic")
_RT_RESNET_18 = _rt_detr_resnet(64, [64, 128, 256, 512], [2, 2, 2, 2], "basic")
_RT_RESNET_50 = _rt_detr_resnet(64, [256, 512, 1024, 2048], [3, 4, 6, 3], "bottleneck")
_RT_RESNET_TINY = _rt_detr_resnet(16, [16, 32, 64, 128], [1, 1, 1, 1], "basic")

_PRESETS: tuple[Preset, ...] = (
    Preset(
        name="resnet-18",
        tasks=("classification",),
        description="ResNet-18 (11.7M parameters), layout of microsoft/resnet-18",
        family="resnet",
        image_size=224,
        architecture=_RESNET_18,
        hub_id="microsoft/resnet-18",
    ),
    Preset(
        name="resnet-50",
        tasks=("classification",),
        description="ResNet-50 (25.6M parameters), layout of microsoft/resnet-50",
        family="resnet",
        image_size=224,
        architecture=_RESNET_50,
        hub_id="microsoft/resnet-50",
    ),
    Preset(
        name="resnet-tiny",
        tasks=("classification",),
        description="Two-stage toy ResNet for tests and CPU demos",
        family="resnet",
        image_size=64,
        architecture=_RESNET_TINY,
    ),
    Preset(
        name="vit-base",
        tasks=("classification",),
        description="ViT-B/16 (86M parameters), layout of google/vit-base-patch16-224",
        family="vit",
        image_size=224,
        architecture=_vit(224, 16, 768, 12, 12, 3072),
        mean=HALF_MEAN,
        std=HALF_STD,
        hub_id="google/vit-base-patch16-224",
    ),
    Preset(
        name="vit-tiny",
        tasks=("classification",),
        description="Two-layer toy ViT on 32 px images for tests and CPU demos",
        family="vit",
        image_size=32,
        architecture=_vit(32, 8, 32, 2, 2, 64),
        mean=HALF_MEAN,
        std=HALF_STD,
    ),
    Preset(
        name="detr-resnet-50",
        tasks=("detection",),
        description=("DETR with a ResNet-50 backbone (41.5M parameters), layout of facebook/detr-resnet-50"),
        family="detr",
        image_size=800,
        architecture=_detr(_RESNET_50, 256, 6, 8, 2048, 100),
        hub_id="facebook/detr-resnet-50",
    ),
    Preset(
        name="detr-tiny",
        tasks=("detection",),
        description="Toy DETR (1 encoder + 1 decoder layer, 20 queries) for tests and CPU demos",
        family="detr",
        image_size=128,
        architecture=_detr(_RESNET_DETR_TINY, 32, 1, 2, 64, 20),
    ),
    Preset(
        name="conditional-detr-resnet-50",
        tasks=("detection",),
        description=(
            "Conditional DETR with a ResNet-50 backbone (43.5M parameters), "
            "layout of microsoft/conditional-detr-resnet-50"
        ),
        family="conditional_detr",
        image_size=800,
        architecture=_conditional_detr(_RESNET_50, 256, 6, 8, 2048, 300),
        hub_id="microsoft/conditional-detr-resnet-50",
    ),
    Preset(
        name="conditional-detr-tiny",
        tasks=("detection",),
        description="Toy Conditional DETR (1 encoder + 1 decoder layer, 20 queries) for tests and CPU demos",
        family="conditional_detr",
        image_size=128,
        architecture=_conditional_detr(_RESNET_DETR_TINY, 32, 1, 2, 64, 20),
    ),
    Preset(
        name="rt-detr-v2-r18",
        tasks=("detection",),
        description="RT-DETR v2 with a ResNet-18-vd backbone (20M parameters), layout of PekingU/rtdetr_v2_r18vd",
        family="rt_detr_v2",
        image_size=640,
        architecture=_rt_detr_v2(_RT_RESNET_18, [128, 256, 512], 256, 1024, 8, 3, 300, 100, 0.5),
        mean=ZERO_MEAN,
        std=UNIT_STD,
        hub_id="PekingU/rtdetr_v2_r18vd",
    ),
    Preset(
        name="rt-detr-v2-r50",
        tasks=("detection",),
        description="RT-DETR v2 with a ResNet-50-vd backbone (43M parameters), layout of PekingU/rtdetr_v2_r50vd",
        family="rt_detr_v2",
        image_size=640,
        architecture=_rt_detr_v2(_RT_RESNET_50, [512, 1024, 2048], 256, 1024, 8, 6, 300, 100, 1.0),
        mean=ZERO_MEAN,
        std=UNIT_STD,
        hub_id="PekingU/rtdetr_v2_r50vd",
    ),
    Preset(
        name="rt-detr-v2-tiny",
        tasks=("detection",),
        description="Toy RT-DETR v2 (64-wide hybrid encoder, 3 decoder layers, 50 queries) for tests and CPU demos",
        family="rt_detr_v2",
        image_size=128,
        architecture=_rt_detr_v2(_RT_RESNET_TINY, [32, 64, 128], 64, 256, 4, 3, 50, 50, 0.5),
        mean=ZERO_MEAN,
        std=UNIT_STD,
    ),
    Preset(
        name="segformer-b0",
        tasks=("segmentation",),
        description="SegFormer MiT-b0 (3.7M parameters), layout of nvidia/mit-b0",
        family="segformer",
        image_size=512,
        architecture=_segformer([2, 2, 2, 2], [32, 64, 160, 256], [1, 2, 5, 8], 256),
        hub_id="nvidia/mit-b0",
    ),
    Preset(
        name="segformer-b2",
        tasks=("segmentation",),
        description="SegFormer MiT-b2 (27M parameters), layout of nvidia/mit-b2",
        family="segformer",
        image_size=512,
        architecture=_segformer([3, 4, 6, 3], [64, 128, 320, 512], [1, 2, 5, 8], 768),
        hub_id="nvidia/mit-b2",
    ),
    Preset(
        name="segformer-tiny",
        tasks=("segmentation",),
        description="Toy SegFormer (one block per stage) for tests and CPU demos",
        family="segformer",
        image_size=64,
        architecture=_segformer([1, 1, 1, 1], [8, 16, 24, 32], [1, 1, 1, 1], 32),
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}

# Hub ids (including common fine-tuned variants) -> the preset of the same
# layout, so an offline error can point at something that works without network.
PRESET_FOR_HUB_ID: dict[str, str] = {p.hub_id: p.name for p in _PRESETS if p.hub_id}
PRESET_FOR_HUB_ID.update(
    {
        "google/vit-base-patch16-224-in21k": "vit-base",
        "nvidia/segformer-b0-finetuned-ade-512-512": "segformer-b0",
        "nvidia/segformer-b2-finetuned-ade-512-512": "segformer-b2",
        "nvidia/segformer-b0-finetuned-cityscapes-1024-1024": "segformer-b0",
        "nvidia/segformer-b2-finetuned-cityscapes-1024-1024": "segformer-b2",
    }
)


def get_preset(name: str) -> Preset | None:
    """The preset called ``name`` (case-insensitive), or None."""
    return PRESETS.get(name.strip().lower())


def list_presets(task: str | None = None) -> list[Preset]:
    """All presets, or those that can do ``task``, in a stable order."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return [p for p in _PRESETS if task is None or task in p.tasks]
