"""One rule says which models leave trainable parameters out of the loss (DDP must then look for them)."""

import pytest

from engine.models.ddp import has_unused_parameters


def _parameters_without_gradient(module, datamodule, *, without_boxes: bool = False) -> list[str]:
    import torch

    batch = next(iter(datamodule.train_dataloader()))
    batch = module.on_after_batch_transfer(batch, 0)
    if without_boxes:  # a batch of negatives: images with no annotation
        for target in batch["labels"]:
            target["class_labels"] = target["class_labels"][:0]
            target["boxes"] = target["boxes"][:0]
    module.zero_grad(set_to_none=True)
    loss, _ = module.compute_loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    return [name for name, p in module.named_parameters() if p.requires_grad and p.grad is None]


@pytest.mark.parametrize(
    "task, checkpoint",
    [
        ("detection", "conditional-detr-tiny"),
        ("detection", "detr-tiny"),
        ("detection", "rt-detr-v2-tiny"),
        ("classification", "resnet-tiny"),
        ("classification", "vit-tiny"),
        ("segmentation", "segformer-tiny"),
    ],
)
def test_the_rule_agrees_with_the_gradients_of_a_training_step(task, checkpoint, sample_dataset):
    from engine.config import RunConfig
    from engine.orchestration.builders import build_datamodule, build_module
    from engine.orchestration.speed import speed_settings

    config = RunConfig.from_dict({"task": {"name": task}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": checkpoint,  # each at its own size
            "optim.batch_size": 2,
            "optim.lr": 1e-3,
            "optim.scheduler": "none",
            "data.num_workers": 0,
            "compute.accelerator": "cpu",
        }
    )
    speed = speed_settings(config)
    datamodule = build_datamodule(config, speed)
    module = build_module(config, datamodule, speed)
    unused = _parameters_without_gradient(module, datamodule)
    if task == "detection":  # detection keeps images without boxes: a batch may hold only those
        unused += _parameters_without_gradient(module, datamodule, without_boxes=True)
    assert has_unused_parameters(module.model) == bool(unused), unused
