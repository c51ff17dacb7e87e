"""The detection validation loss is a mean over images, whatever the batches."""

import pytest
import torch

from engine.models.loading import load_model
from engine.tasks.detection.image_losses import image_wise_loss

LABELS = [
    {"class_labels": torch.tensor([1, 2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.2]])},
    {"class_labels": torch.tensor([0]), "boxes": torch.tensor([[0.4, 0.5, 0.3, 0.2]])},
    {"class_labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)},
]


@pytest.mark.parametrize(
    "checkpoint, auxiliary",
    [("detr-tiny", False), ("detr-tiny", True), ("conditional-detr-tiny", True), ("rt-detr-v2-tiny", True)],
)
def test_each_images_loss_in_a_batch_is_its_loss_alone(checkpoint, auxiliary):
    torch.manual_seed(0)
    model = load_model(
        checkpoint, "detection", num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, pretrained=False
    ).eval()
    if hasattr(model.config, "auxiliary_loss"):
        # per-layer outputs: (layers, batch) in DETR, (batch, layers) in RT-DETR
        model.config.auxiliary_loss = auxiliary
    pixels = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        alone = torch.stack([model(pixel_values=pixels[i : i + 1], labels=[LABELS[i]]).loss for i in range(3)])
        with image_wise_loss(model) as split:
            out = model(pixel_values=pixels, labels=LABELS)
        batched = model(pixel_values=pixels, labels=LABELS).loss  # the model's own loss function is back
    assert split.image_losses == pytest.approx(alone, rel=1e-5)
    assert float(out.loss) == pytest.approx(float(alone.mean()), rel=1e-5)
    assert float(batched) != pytest.approx(float(alone.mean()), rel=1e-3)  # batch-normalised: not a mean
