"""A run's checkpoints: the callbacks that write them, finding the newest, resuming safely.

A run keeps two: the best by its task module's monitor, and the latest, written every N
steps and when training ends on an exception. Neither is written once the loss stopped
being finite, so the last good one survives.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import RunConfig
from engine.orchestration.errors import TrainingError

#: the state at the end of training, written whenever a run ends without a NaN loss
FINAL_CHECKPOINT = "last.ckpt"


def guarded_checkpoint_class():
    """ModelCheckpoint that writes nothing once the loss went NaN, so the last good one survives."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    class GuardedCheckpoint(ModelCheckpoint):
        def _should_skip_saving_checkpoint(self, trainer) -> bool:
            module = trainer.lightning_module
            if getattr(module, "nonfinite_step", None) is not None:
                return True
            return super()._should_skip_saving_checkpoint(trainer)

        def _should_save_on_exception(self, trainer) -> bool:
            if getattr(trainer.lightning_module, "nonfinite_step", None) is not None:
                return False
            return super()._should_save_on_exception(trainer)

    return GuardedCheckpoint


def periodic_checkpoint_class():
    """The every-N-steps checkpoint, except that one due at an epoch's last batch waits until
    that epoch's validation ran: resumed from it, a run does not validate the epoch again."""
    Guarded = guarded_checkpoint_class()

    class PeriodicCheckpoint(Guarded):
        _due_after_validation = False

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            last_batch = batch_idx + 1 >= trainer.num_training_batches
            every = self._every_n_train_steps
            if last_batch and trainer.enable_validation and every > 0 and trainer.global_step % every == 0:
                self._due_after_validation = True
                return
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

        def _save_if_due(self, trainer) -> None:
            if self._due_after_validation:
                self._due_after_validation = False
                if not self._should_skip_saving_checkpoint(trainer):
                    self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

        def on_validation_end(self, trainer, pl_module) -> None:
            super().on_validation_end(trainer, pl_module)
            self._save_if_due(trainer)

        def on_train_epoch_end(self, trainer, pl_module) -> None:  # the epoch had no validation after all
            super().on_train_epoch_end(trainer, pl_module)
            self._save_if_due(trainer)

    return PeriodicCheckpoint


def newest_checkpoint(folder: Path) -> Path | None:
    found = [p for p in folder.glob("*.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def checkpoint_batching(checkpoint: Path) -> dict[str, int] | None:
    """The batch size and process count a checkpoint was trained with (None for checkpoints
    written before the data module recorded them)."""
    import torch

    from engine.tasks.common.base_datamodule import BATCHING_STATE

    # mmap: only the small dictionaries are read, not every tensor.
    state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    for value in state.values():
        if isinstance(value, dict) and BATCHING_STATE in value:
            return value[BATCHING_STATE]
    return None


def check_same_batching(checkpoint: Path, config: RunConfig, processes: int, run_file: Path) -> None:
    """Refuse to resume with other batches than the checkpoint's: the loop goes on from a count of
    batches, so a new batch size (or process count) would train some images of the epoch twice
    and others never."""
    recorded = checkpoint_batching(checkpoint)
    if recorded is None:
        return
    if int(recorded["batch_size"]) != config.optim.batch_size:
        raise TrainingError(
            f"{run_file}: optim.batch_size is {config.optim.batch_size} but the run trained with "
            f"{recorded['batch_size']} up to its checkpoint {checkpoint.name}; resuming with another batch size "
            f"would train some images twice and skip others. Set optim.batch_size back to "
            f"{recorded['batch_size']} in {run_file.name}, or start a new run"
        )
    if int(recorded["processes"]) != processes:
        raise TrainingError(
            f"{run_file}: this resume would train on {processes} process(es) but the run trained on "
            f"{recorded['processes']} up to its checkpoint {checkpoint.name} (compute.devices / num_nodes); "
            f"each process's share of the images would change mid-epoch. Resume with "
            f"{recorded['processes']} process(es), or start a new run"
        )


__all__ = [
    "FINAL_CHECKPOINT",
    "check_same_batching",
    "checkpoint_batching",
    "guarded_checkpoint_class",
    "newest_checkpoint",
    "periodic_checkpoint_class",
]
