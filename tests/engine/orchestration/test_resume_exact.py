"""Issue 7 fix 5: a resumed run sees exactly the batches an uninterrupted one would, logs no step twice,
does not validate again an epoch whose validation the checkpoint already holds, and validates one
whose validation a kill cut short."""

from collections import Counter
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from engine.config import RunConfig
from engine.orchestration.checkpoints import newest_checkpoint
from engine.orchestration.local import TrainingError, train
from engine.tracking.history import metric_history

BATCHES_PER_EPOCH = 6  # 48 demo training images, batch 8


class _Interrupted(RuntimeError):
    pass


class _RecordBatches(pl.Callback):
    """The image ids of every batch the training loop trained on, and each validation's epoch."""

    def __init__(self):
        self.batches: list[list[int]] = []
        self.validated_epochs: list[int] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches.append(batch["image_ids"].tolist())

    def on_validation_end(self, trainer, pl_module):
        self.validated_epochs.append(trainer.current_epoch)


class _InterruptAt(pl.Callback):
    """Ends the run before the batch that would make optimizer step ``step`` + 1, at the end of
    ``epoch`` (after its validation and its checkpoints), or as the validation of ``validating`` starts.
    ``like_a_kill``: as SIGKILL does, it leaves no checkpoint of the moment it died (Lightbox writes
    one on an exception)."""

    def __init__(self, step=None, epoch=None, validating=None, like_a_kill=True):
        self.step, self.epoch, self.validating, self.like_a_kill = step, epoch, validating, like_a_kill

    def _die(self, trainer):
        if self.like_a_kill:
            for checkpoint in trainer.checkpoint_callbacks:
                checkpoint.save_on_exception = False
        raise _Interrupted(f"interrupted at step {trainer.global_step}")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            self._die(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            self._die(trainer)

    def on_validation_start(self, trainer, pl_module):
        if trainer.current_epoch == self.validating:
            self._die(trainer)


def _config(data, workspace, workers, lr=3e-3):
    return RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(data),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 2,
            "optim.batch_size": 8,
            "optim.lr": lr,
            "data.image_size": 32,
            "data.num_workers": workers,
            "workspace": str(workspace),
            "tracking.log_every_n_steps": 1,
        }
    )


@pytest.fixture(scope="module")
def uninterrupted(sample_dataset, tmp_path_factory):
    """The batches of an uninterrupted run, per number of workers (each run once)."""
    runs = {}

    def batches(workers):
        if workers not in runs:
            record = _RecordBatches()
            train(
                _config(sample_dataset, tmp_path_factory.mktemp("whole"), workers),
                progress=False,
                callbacks=[record],
                checkpoint_every_n_steps=100,
            )
            assert len(record.batches) == 2 * BATCHES_PER_EPOCH
            runs[workers] = record.batches
        return runs[workers]

    return batches


def _interrupted_then_resumed(config, interrupt, every_n_steps):
    """What a run ended by ``interrupt`` and then resumed trained on, the step it resumed from, its result."""
    first, second = _RecordBatches(), _RecordBatches()
    with pytest.raises(_Interrupted):
        train(config, progress=False, callbacks=[first, interrupt], checkpoint_every_n_steps=every_n_steps)
    run_dir = next((Path(config.workspace) / "runs").iterdir())
    newest = newest_checkpoint(run_dir / "checkpoints")
    resumed_from = torch.load(newest, map_location="cpu", weights_only=False)["global_step"]
    result = train(
        resume_run_id=run_dir.name,
        workspace=config.workspace,
        progress=False,
        callbacks=[second],
        checkpoint_every_n_steps=every_n_steps,
    )
    assert result.status == "FINISHED"
    return first, second, resumed_from, result


def _assert_no_step_twice(result):
    history = metric_history(result.tracking_uri, result.run_id)
    assert history
    for key, points in history.items():
        repeated = [step for step, count in Counter(step for step, _, _ in points).items() if count > 1]
        assert not repeated, f"{key} logged twice at steps {repeated}"
    return history


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_a_kill_mid_epoch_sees_the_batches_of_an_uninterrupted_run(
    sample_dataset, tmp_path, uninterrupted, workers
):
    # Checkpoints at steps 4 and 8 (batch 2 of epoch 1), killed before step 10: steps 9 and 10 are replayed.
    first, second, resumed_from, result = _interrupted_then_resumed(
        _config(sample_dataset, tmp_path, workers), _InterruptAt(step=10), every_n_steps=4
    )
    assert resumed_from == 8 and len(first.batches) == 10
    assert first.batches[:8] + second.batches == uninterrupted(workers)

    history = _assert_no_step_twice(result)
    assert [step for step, _, _ in history["train/loss"]] == list(range(1, 2 * BATCHES_PER_EPOCH + 1))
    assert len(history["val/accuracy"]) == 2


def test_resume_from_the_checkpoint_of_an_exception_redoes_the_batch_it_held(sample_dataset, tmp_path, uninterrupted):
    # The exception comes with batch 11 in hand but not trained on: the resumed run starts with it.
    first, second, resumed_from, result = _interrupted_then_resumed(
        _config(sample_dataset, tmp_path, 0), _InterruptAt(step=10, like_a_kill=False), every_n_steps=4
    )
    assert resumed_from == 10
    assert first.batches + second.batches == uninterrupted(0)
    _assert_no_step_twice(result)


def test_resume_after_an_epochs_validation_does_not_validate_it_again(sample_dataset, tmp_path):
    # A step checkpoint falls on epoch 1's last batch and its validation brings no new best (lr ~ 0),
    # so the newest checkpoint is that step one; killed after the validation.
    config = _config(sample_dataset, tmp_path, 0, lr=1e-12)
    first, second, resumed_from, result = _interrupted_then_resumed(
        config, _InterruptAt(epoch=1), every_n_steps=BATCHES_PER_EPOCH
    )
    checkpoints = {p.name for p in next((tmp_path / "runs").iterdir()).glob("checkpoints/*.ckpt")}
    assert "best-epoch=0-step=6.ckpt" in checkpoints and not any("epoch=1" in name for name in checkpoints)
    assert resumed_from == 2 * BATCHES_PER_EPOCH
    assert first.validated_epochs == [0, 1]
    assert second.validated_epochs == [] and second.batches == []
    history = _assert_no_step_twice(result)
    assert [step for step, _, _ in history["val/accuracy"]] == [BATCHES_PER_EPOCH, 2 * BATCHES_PER_EPOCH]


@pytest.mark.slow
def test_a_kill_during_an_epochs_validation_is_resumed_with_that_validation(sample_dataset, tmp_path):
    # The step checkpoint due at epoch 0's last batch waits for its validation, which the kill
    # cuts short: the run resumes from step 3 and validates epoch 0 (it used to resume after the
    # epoch as if validated, and epoch 0 never had its validation or its chance to be the best).
    config = _config(sample_dataset, tmp_path, 0)
    first, second, resumed_from, result = _interrupted_then_resumed(config, _InterruptAt(validating=0), every_n_steps=3)
    assert resumed_from == 3
    assert first.validated_epochs == [] and second.validated_epochs == [0, 1]
    history = _assert_no_step_twice(result)
    assert [step for step, _, _ in history["val/accuracy"]] == [BATCHES_PER_EPOCH, 2 * BATCHES_PER_EPOCH]


@pytest.mark.slow
def test_resume_refuses_a_batch_size_changed_in_run_yaml(sample_dataset, tmp_path):
    """The loop resumes from a count of batches: in batches of another size that count would
    train some images of the epoch twice and skip others."""
    config = _config(sample_dataset, tmp_path, 0)
    with pytest.raises(_Interrupted):
        train(config, progress=False, callbacks=[_InterruptAt(step=3)], checkpoint_every_n_steps=2)
    run_dir = next((tmp_path / "runs").iterdir())
    run_file = run_dir / "run.yaml"
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    run_file.write_text(run_file.read_text().replace("batch_size: 8", "batch_size: 4"))
    assert RunConfig.load(run_file).optim.batch_size == 4
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    before = client.get_run(run_dir.name).info
    with pytest.raises(TrainingError) as refused:
        train(resume_run_id=run_dir.name, workspace=tmp_path, progress=False)
    message = str(refused.value)
    assert str(run_file) in message and "optim.batch_size is 4" in message and "trained with 8" in message
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == checkpoints  # nothing lost
    after = client.get_run(run_dir.name).info  # refused before the run was reopened
    assert (after.status, after.end_time) == (before.status, before.end_time)

    run_file.write_text(run_file.read_text().replace("batch_size: 4", "batch_size: 8"))
    assert train(resume_run_id=run_dir.name, workspace=tmp_path, progress=False).status == "FINISHED"
