"""Metric state across the processes of a distributed run (DDP, Ray Train).

Each process sees its share of the validation set, so a metric computed from
one process's state scores that share only. These helpers combine the state of
every process; without an initialised process group (one process) they return
their input untouched, so metric code calls them unconditionally. Every process
must call the same helpers in the same order (they are collectives).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DistributedSampler, Sampler


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if _distributed() else 1


def _collective_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo reduces CPU tensors.
    if "nccl" in str(dist.get_backend()) and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_across_ranks(tensor: Tensor) -> Tensor:
    """The element-wise sum of ``tensor`` over every process (a new tensor on its device)."""
    if not _distributed():
        return tensor
    total = tensor.detach().to(_collective_device(), copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(tensor.device)


def gather_to_rank_zero(obj: Any) -> list[Any] | None:
    """Every process's ``obj`` in rank order on rank 0 (``[obj]`` in one process); None elsewhere."""
    if not _distributed():
        return [obj]
    rank = dist.get_rank()
    gathered: list[Any] | None = [None] * dist.get_world_size() if rank == 0 else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def broadcast_from_rank_zero(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not _distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def evaluation_sampler(sampler: Sampler, what: str = "validation samples") -> Sampler:
    """``sampler`` split across the processes with each sample exactly once.

    Lightning's own distributed sampler pads the last batch by repeating
    samples so that every process gets as many, and repeated images count
    twice in every metric. Here the shares differ by at most one sample, which
    is safe for validation (no gradient to synchronise). In one process
    ``sampler`` is returned as it is.
    """
    processes = world_size()
    if processes == 1:
        return sampler
    if len(sampler) < processes:
        raise ValueError(
            f"{len(sampler)} {what} for {processes} processes: every process needs at least one; "
            "add samples or run on fewer devices"
        )
    return EvaluationShards(sampler)


class EvaluationShards(DistributedSampler):
    """Process r takes positions r, r + N, r + 2N, ... of ``sampler``'s order, without padding.

    A DistributedSampler, so Lightning uses it as it is instead of wrapping the
    loader's sampler in its padding one; the epoch is passed on to ``sampler``.
    """

    def __init__(self, sampler: Sampler) -> None:
        super().__init__(range(len(sampler)), shuffle=False, drop_last=False)
        self.sampler = sampler
        self.num_samples = len(range(self.rank, len(sampler), self.num_replicas))
        self.total_size = len(sampler)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.sampler), self.rank, None, self.num_replicas)

    def __len__(self) -> int:
        return self.num_samples
