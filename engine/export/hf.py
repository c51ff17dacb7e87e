"""The Hugging Face folder: safetensors weights, config with labels and COCO ids, image processor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .manifest import ExportError

AUTO_CLASSES = {
    "classification": "AutoModelForImageClassification",
    "detection": "AutoModelForObjectDetection",
    "segmentation": "AutoModelForSemanticSegmentation",
}


def _step(spec: list[dict], k: int, name: str) -> dict | None:
    return spec[k] if len(spec) > k and spec[k].get("name") == name else None


#: Each model family's own image processor: its post-processing knows how the family scores
#: (DETR: softmax with a no-object class; Conditional DETR and RT-DETR: sigmoid, no such class).
DETECTION_PROCESSORS = {
    "detr": "DetrImageProcessor",
    "conditional_detr": "ConditionalDetrImageProcessor",
    "deformable_detr": "DeformableDetrImageProcessor",
    "rt_detr": "RTDetrImageProcessor",
    "rt_detr_v2": "RTDetrImageProcessor",
}
SEGMENTATION_PROCESSORS = {"segformer": "SegformerImageProcessor"}


def _processor_class(table: dict[str, str], model_type: str, task: str) -> type[Any]:
    import transformers

    if model_type not in table:
        raise ExportError(
            f"no Hugging Face image processor is known for a {task} model of type '{model_type}' "
            f"(known: {', '.join(sorted(table))}); export --format onnx only"
        )
    return getattr(transformers, table[model_type])


def image_processor_for(task: str, preprocessing: dict[str, Any], model_type: str | None = None) -> Any:
    """The model family's HF image processor reproducing the validation transform, or an ExportError
    naming the step.

    Classification: a plain resize maps to ViT's processor; resize-shorter-side-then-centre-crop to
    ConvNext's ``crop_pct`` (both post-process as a softmax over logits, whatever the backbone).
    Detection: resize-longer-side then pad bottom/right maps to the family's processor with
    ``max_height``/``max_width`` + ``pad_size``. Segmentation: SegFormer's processor resizes the
    longer side and does not pad (it cannot); its ``post_process_semantic_segmentation`` then maps
    the logits back to each image's size exactly.
    """
    spec, mean, std = preprocessing["transforms"], list(preprocessing["mean"]), list(preprocessing["std"])
    common: dict[str, Any] = dict(
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=mean, image_std=std, resample=2
    )  # bilinear, as albumentations' default interpolation
    resize = _step(spec, 0, "Resize")
    smallest, crop = _step(spec, 0, "SmallestMaxSize"), _step(spec, 1, "CenterCrop")
    longest, pad = _step(spec, 0, "LongestMaxSize"), _step(spec, 1, "PadIfNeeded")
    if task == "classification" and len(spec) == 1 and resize:
        from transformers import ViTImageProcessor

        return ViTImageProcessor(size={"height": int(resize["height"]), "width": int(resize["width"])}, **common)
    if task == "classification" and len(spec) == 2 and smallest and crop and crop["height"] == crop["width"]:
        from transformers import ConvNextImageProcessor

        size = int(crop["height"])
        return ConvNextImageProcessor(size={"shortest_edge": size}, crop_pct=size / int(smallest["max_size"]), **common)
    if task == "detection" and len(spec) == 2 and longest and pad and pad.get("position") == "top_left":
        cls = _processor_class(DETECTION_PROCESSORS, str(model_type), task)
        size = int(longest["max_size"])
        return cls(
            size={"max_height": size, "max_width": size},
            do_pad=True,
            pad_size={"height": int(pad["min_height"]), "width": int(pad["min_width"])},
            **common,
        )
    if task == "segmentation" and 1 <= len(spec) <= 2 and longest and (len(spec) == 1 or pad):
        cls = _processor_class(SEGMENTATION_PROCESSORS, str(model_type), task)
        size = int(longest["max_size"])
        return cls(size={"max_height": size, "max_width": size}, do_reduce_labels=False, **common)
    steps = ", ".join(str(s.get("name")) for s in spec) or "no steps"
    raise ExportError(
        f"the run's validation transform ({steps}) has no Hugging Face image processor "
        f"equivalent for {task}; export --format onnx only (Lightbox's own predict reproduces it)"
    )


HF_USAGE = {
    "detection": "processor(images) -> model(pixel_values=...) (no pixel_mask: the model was trained without one) "
    "-> processor.post_process_object_detection(outputs, threshold, target_sizes=[(L, L)]) with L the "
    "image's longer side: boxes are relative to the padded square canvas",
    "segmentation": "processor(images) -> model(pixel_values=...) -> processor.post_process_semantic_segmentation("
    "outputs, target_sizes=[(height, width)]); the class map's 0 is background",
    "classification": "processor(images) -> model(pixel_values=...) -> logits.softmax(-1)",
}


def write_hf_folder(
    model: Any, folder: Path, task: str, label_to_category_id: dict[int, int], preprocessing: dict[str, Any]
) -> dict[str, Any]:
    """Save the model and its image processor; return what the manifest records about them."""
    config = model.config
    processor = image_processor_for(task, preprocessing, config.model_type)
    config.id2label = {int(k): v for k, v in config.id2label.items()}
    config.label2id = {v: int(k) for k, v in config.id2label.items()}
    config.coco_category_ids = {str(k): int(v) for k, v in label_to_category_id.items()}
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if not (folder / "model.safetensors").is_file() and not list(folder.glob("model-*.safetensors")):
        raise ExportError(f"{folder}: save_pretrained wrote no safetensors weights")
    return {
        "auto_class": AUTO_CLASSES[task],
        "image_processor": type(processor).__name__,
        "model_type": config.model_type,
        "usage": HF_USAGE[task],
        "note": "resizes with torchvision/PIL (Lightbox with OpenCV: pixels differ slightly)"
        + (
            "; pads with 0 after normalising, Lightbox pads black before, and may make the short side "
            "1 px shorter (it floors, albumentations rounds): predict with `lightbox predict` for the "
            "exact validation pixels"
            if task == "detection"
            else ""
        )
        + ("; does not pad (Lightbox pads the short side black)" if task == "segmentation" else ""),
    }
