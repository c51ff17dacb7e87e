"""Which weights a run starts from, said plainly, and the pretrained checkpoints already on this machine.

Offline presets are always randomly initialised; a model folder or a hub id starts from its
trained weights when ``pretrained`` is on. Everything here is offline: a hub id is looked up
in the local Hugging Face cache only (``try_to_load_from_cache`` / ``scan_cache_dir``), so the
app can show the answer beside the model picker and tests never reach the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.catalog.checkpoints import checkpoint_kind
from engine.catalog.family import checkpoint_config
from engine.catalog.presets import PRESET_FOR_HUB_ID, get_preset
from engine.tracking.tags import WEIGHTS_TAG  # the run tag this module's summary is written under

__all__ = ["WEIGHTS_TAG", "StartingWeights", "cached_checkpoints", "is_cached", "run_weights", "starting_weights"]

# What save_pretrained writes (one file, or an index of shards).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class StartingWeights:
    # preset | random (pretrained off) | folder | cache | download (hub, not cached) | missing (no weights file)
    source: str
    text: str

    @property
    def pretrained(self) -> bool:
        return self.source in ("folder", "cache", "download")


def is_cached(hub_id: str) -> bool:
    """Whether a weights file of ``hub_id`` is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return any(isinstance(try_to_load_from_cache(hub_id, name), str) for name in WEIGHT_FILES)
    except ValueError:  # not a valid repo id
        return False


def _folder_has_weights(folder: Path) -> bool:
    return any((folder / name).is_file() for name in WEIGHT_FILES)


def starting_weights(
    checkpoint: str, pretrained: bool = True, *, cached: Callable[[str], bool] = is_cached
) -> StartingWeights:
    """What a run of ``checkpoint`` starts from; ModelLoadError for a checkpoint that names nothing.

    ``cached`` says whether a hub id's weights are in the local cache; the app passes the list its
    background scan found, so the GUI thread never reads the cache itself.
    """
    name = str(checkpoint).strip()
    kind = checkpoint_kind(name)
    if kind == "preset":
        preset = get_preset(name)
        text = f"random weights: {preset.name} is an offline preset ({preset.description})"
        if preset.hub_id and cached(preset.hub_id):
            text += f"; the pretrained {preset.hub_id} is in the local Hugging Face cache: pick it to fine-tune"
        return StartingWeights("preset", text)
    if not pretrained:
        return StartingWeights("random", f"random weights in the architecture of {name} (pretrained weights off)")
    if kind == "folder":
        if _folder_has_weights(Path(name).expanduser()):
            return StartingWeights("folder", f"trained weights from the folder {name}")
        return StartingWeights(
            "missing",
            f"{name} holds no weights file (model.safetensors): untick "
            "'Pretrained weights' to train its architecture from random weights",
        )
    if cached(name):
        return StartingWeights("cache", f"pretrained weights of {name} from the local Hugging Face cache")
    return StartingWeights(
        "download",
        f"pretrained weights of {name}, not in the local Hugging Face cache: "
        "downloaded from the hub when the run starts (fails offline)",
    )


def cached_checkpoints(task: str) -> list[str]:
    """Hub ids in the local Hugging Face cache that hold weights and a model for ``task``.

    Checkpoints with the layout of an offline preset come first (their recipe is known), then
    the others by name. Reads the cache folder and small config files: call it off the GUI thread.
    """
    from huggingface_hub import constants, scan_cache_dir

    from engine.models.loading import task_model_types

    try:
        # The cache folder as huggingface_hub resolves it now (HF_HOME / HF_HUB_CACHE), like the loader.
        repos = [r.repo_id for r in scan_cache_dir(constants.HF_HUB_CACHE).repos if r.repo_type == "model"]
    except Exception:  # no cache folder yet, or an unreadable one: nothing cached to offer
        return []
    if not repos:
        return []  # and no need to import transformers' model tables
    can_do = task_model_types(task)
    found = [
        hub_id
        for hub_id in repos
        if is_cached(hub_id) and (checkpoint_config(hub_id) or {}).get("model_type") in can_do
    ]
    return sorted(found, key=lambda hub_id: (hub_id not in PRESET_FOR_HUB_ID, hub_id.lower()))


def run_weights(config) -> str:
    """One line for a run's log and its :data:`WEIGHTS_TAG`: the weights each of its models starts from."""
    if config.task.name == "multitask":
        return "; ".join(
            f"{task}: {starting_weights(ckpt, config.model.pretrained).text}"
            for task, ckpt in config.model.checkpoints.items()
        )
    return starting_weights(config.model.checkpoint, config.model.pretrained).text
