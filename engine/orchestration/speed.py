"""Where a run trains and how fast: device, precision and the speed switches, from the config.

Every automatic choice follows the machine (a GPU or not) and can be overridden in
``compute`` / ``optim.precision``; the same settings serve training, the learning-rate
finder, evaluation and prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.config import RunConfig
from engine.orchestration.errors import TrainingError

#: model families whose convolutions run faster channels-last on a GPU
CNN_FAMILIES = ("resnet", "detr", "convnext", "efficientnet", "mobilenet", "regnet")


@dataclass
class Speed:
    accelerator: str
    devices: Any
    precision: str
    channels_last: bool
    normalize_on_device: bool
    pin_memory: bool
    compile: bool


def speed_settings(config: RunConfig, family: str | None = None) -> Speed:
    """Device-dependent speed switches; every automatic choice can be overridden in the config."""
    import torch

    compute = config.compute
    has_gpu = torch.cuda.is_available()
    if compute.accelerator == "gpu" and not has_gpu:
        raise TrainingError(
            "a GPU was requested (compute.accelerator: gpu) but PyTorch sees no CUDA device; "
            "use --accelerator cpu, or check the NVIDIA driver and the CUDA build of torch"
        )
    on_gpu = compute.accelerator == "gpu" or (compute.accelerator == "auto" and has_gpu)
    if on_gpu and compute.devices != "auto" and int(compute.devices) > torch.cuda.device_count():
        raise TrainingError(f"{compute.devices} GPUs requested but only {torch.cuda.device_count()} are visible")
    precision = config.optim.precision
    if precision == "auto":
        precision = "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"
    elif precision == "32":
        precision = "32-true"
    if precision == "16-mixed" and not on_gpu:
        raise TrainingError("16-mixed precision needs a GPU; use 32 or bf16-mixed on the CPU")
    channels_last = compute.channels_last
    if channels_last is None:
        channels_last = on_gpu and (family or "") in CNN_FAMILIES
    normalize = compute.gpu_normalize if compute.gpu_normalize is not None else on_gpu
    pin = compute.pin_memory if compute.pin_memory is not None else on_gpu
    # On the CPU, "auto" is one process; a number is that many processes (DDP over gloo).
    devices = compute.devices if on_gpu or compute.devices != "auto" else 1
    return Speed(
        "gpu" if on_gpu else "cpu",
        devices,
        precision,
        bool(channels_last),
        bool(normalize),
        bool(pin),
        bool(compute.compile),
    )


def process_count(speed: Speed, config: RunConfig) -> int:
    """How many training processes the Trainer will run (devices per node x nodes)."""
    import torch

    devices = speed.devices
    if devices == "auto":
        devices = torch.cuda.device_count() if speed.accelerator == "gpu" else 1
    return max(int(devices), 1) * config.compute.num_nodes


__all__ = ["CNN_FAMILIES", "Speed", "process_count", "speed_settings"]
