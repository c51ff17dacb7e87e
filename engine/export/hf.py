"""The Hugging Face folder: safetensors weights, config with labels and COCO ids, image processor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .manifest import ExportError

AUTO_CLASSES = {"classification": "AutoModelForImageClassification",
                "detection": "AutoModelForObjectDetection",
                "segmentation": "AutoModelForSemanticSegmentation"}


def _step(spec: list[dict], k: int, name: str) -> dict | None:
    return spec[k] if len(spec) > k and spec[k].get("name") == name else None


def image_processor_for(task: str, preprocessing: dict[str, Any]):
    """An HF image processor reproducing the validation transform, or an ExportError naming the step.

    A plain resize maps to ViT's processor; resize-shorter-side-then-centre-crop maps to ConvNext's ``crop_pct``; resize-longer-side
    then pad bottom/right maps to DETR's processor (``max_height``/``max_width`` + ``pad_size``).
    """
    spec, mean, std = preprocessing["transforms"], list(preprocessing["mean"]), list(preprocessing["std"])
    common = dict(do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=mean, image_std=std,
                  resample=2)  # bilinear, as albumentations' default interpolation
    resize = _step(spec, 0, "Resize")
    if len(spec) == 1 and resize:
        from transformers import ViTImageProcessor

        return ViTImageProcessor(size={"height": int(resize["height"]), "width": int(resize["width"])}, **common)
    smallest, crop = _step(spec, 0, "SmallestMaxSize"), _step(spec, 1, "CenterCrop")
    if len(spec) == 2 and smallest and crop and crop["height"] == crop["width"]:
        from transformers import ConvNextImageProcessor

        size = int(crop["height"])
        return ConvNextImageProcessor(size={"shortest_edge": size}, crop_pct=size / int(smallest["max_size"]),
                                      **common)
    longest, pad = _step(spec, 0, "LongestMaxSize"), _step(spec, 1, "PadIfNeeded")
    if len(spec) == 2 and longest and pad and pad.get("position") == "top_left":
        from transformers import DetrImageProcessor

        size = int(longest["max_size"])
        return DetrImageProcessor(size={"max_height": size, "max_width": size}, do_pad=True,
                                  pad_size={"height": int(pad["min_height"]), "width": int(pad["min_width"])},
                                  **common)
    steps = ", ".join(str(s.get("name")) for s in spec) or "no steps"
    raise ExportError(f"the run's validation transform ({steps}) has no Hugging Face image processor "
                      "equivalent; export --format onnx only (Lightbox's own predict reproduces it)")


def write_hf_folder(model, folder: Path, task: str, label_to_category_id: dict[int, int],
                    preprocessing: dict[str, Any]) -> dict[str, Any]:
    """Save the model and its image processor; return what the manifest records about them."""
    processor = image_processor_for(task, preprocessing)
    config = model.config
    config.id2label = {int(k): v for k, v in config.id2label.items()}
    config.label2id = {v: int(k) for k, v in config.id2label.items()}
    config.coco_category_ids = {str(k): int(v) for k, v in label_to_category_id.items()}
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if not (folder / "model.safetensors").is_file() and not list(folder.glob("model-*.safetensors")):
        raise ExportError(f"{folder}: save_pretrained wrote no safetensors weights")
    return {"auto_class": AUTO_CLASSES[task], "image_processor": type(processor).__name__,
            "model_type": config.model_type,
            "note": "resizes with PIL (Lightbox with OpenCV: pixels differ slightly)"
                    + ("; pads with 0 after normalising, Lightbox pads black before, and may make the short side "
                       "1 px shorter (it floors, albumentations rounds): predict with `lightbox predict` for the "
                       "exact validation pixels" if hasattr(processor, "pad_size") else "")}
