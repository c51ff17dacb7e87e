"""What a run uses for a task when its config leaves the choice empty."""

__all__ = ["DEFAULT_CHECKPOINTS", "DEFAULT_IMAGE_SIZE"]

# Used when model.checkpoint (or a multitask entry) is left empty.
DEFAULT_CHECKPOINTS: dict[str, str] = {
    "classification": "resnet-18",
    # Chosen by bench/detection_demo.py: from random weights RT-DETR v2 learns the demo
    # boxes in minutes on a CPU, where DETR and Conditional DETR stay near mAP50 0.
    "detection": "rt-detr-v2-tiny",
    "segmentation": "segformer-b0",
}

# Square input side for a task when neither data.image_size, the preset nor the
# checkpoint's own files give one; also the size of the augmentation presets.
DEFAULT_IMAGE_SIZE: dict[str, int] = {"classification": 224, "detection": 800, "segmentation": 512}
