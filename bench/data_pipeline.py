"""Benchmark: classification input pipeline, Lightbox vs a hand-written loader.

Both do the same work per image on ONE DataLoader worker: JPEG decode, random
resized crop to 224, horizontal flip, normalise, collate into a float batch.

* baseline: PIL decode + torchvision.transforms.v2 (RandomResizedCrop,
  RandomHorizontalFlip, ToImage, ToDtype, Normalize) + default_collate.
* Lightbox: ``ClassificationDataModule`` with the spec
  ``RandomResizedCrop(224) + HorizontalFlip`` (its real training loader).

Images: 640x480 JPEGs (COCO's typical size), generated once under bench/_data/.
Prints images/s for each and the ratio (target: Lightbox >= 1.3x).

usage: python bench/data_pipeline.py [--images N] [--epochs E] [--batch B]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SPEC = [{"name": "RandomResizedCrop", "size": [224, 224]}, {"name": "HorizontalFlip", "p": 0.5}]


def generate(folder: Path, n: int) -> Path:
    import msgspec
    from PIL import Image, ImageDraw

    ann_file = folder / "annotations.json"
    if ann_file.exists():
        return ann_file
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(n):
        # Smooth colour fields plus shapes: compresses like a photo, unlike pure noise.
        base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((640, 480), Image.BICUBIC)
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x, y = rng.integers(0, 560), rng.integers(0, 400)
            draw.ellipse(
                [x, y, x + rng.integers(20, 80), y + rng.integers(20, 80)],
                fill=tuple(int(v) for v in rng.integers(0, 255, 3)),
            )
        noise = rng.normal(0, 6, (480, 640, 3))
        arr = np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8)
        name = f"{i:05d}.jpg"
        Image.fromarray(arr).save(folder / "images" / name, quality=90)
        images.append({"id": i + 1, "file_name": name, "width": 640, "height": 480})
        annotations.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1 + i % 10,
                "bbox": [10, 10, 100, 100],
                "area": 10000,
                "iscrowd": 0,
            }
        )
    doc = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, 11)],
    }
    ann_file.write_bytes(msgspec.json.encode(doc))
    return ann_file


class BaselineDataset:
    def __init__(self, folder: Path, annotation_file: Path):
        import torch
        from torchvision.transforms import v2

        doc = json.loads(annotation_file.read_text())
        label_of = {a["image_id"]: a["category_id"] - 1 for a in doc["annotations"]}
        self.items = [(folder / "images" / im["file_name"], label_of[im["id"]]) for im in doc["images"]]
        self.transform = v2.Compose(
            [
                v2.RandomResizedCrop(224, antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
            ]
        )

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.items[i]
        with Image.open(path) as im:
            image = im.convert("RGB")
        return self.transform(image), label


def _single_thread(_worker_id: int) -> None:
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def throughput(loader, epochs: int) -> float:
    it_count, start = 0, None
    for epoch in range(epochs):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for batch in loader:
            if start is None:  # the first batch pays for worker start-up
                start = time.perf_counter()
                continue
            images = batch["pixel_values"] if isinstance(batch, dict) else batch[0]
            assert images.dtype.is_floating_point and images.shape[-1] == 224
            it_count += images.shape[0]
    return it_count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    import torch
    from torch.utils.data import DataLoader

    from engine.tasks.classification.datamodule import ClassificationDataModule

    folder = HERE / "_data" / f"pipeline_{args.images}"
    ann_file = generate(folder, args.images)

    baseline_loader = DataLoader(
        BaselineDataset(folder, ann_file),
        batch_size=args.batch,
        shuffle=True,
        num_workers=1,
        worker_init_fn=_single_thread,
        persistent_workers=True,
    )
    data = ClassificationDataModule(
        folder / "images",
        ann_file,
        folder / "images",
        ann_file,
        batch_size=args.batch,
        num_workers=1,
        train_transforms=SPEC,
        pin_memory=False,
    )
    data.setup("fit")
    lightbox_loader = data.train_dataloader()
    lightbox_loader.worker_init_fn = _single_thread

    results = {}
    for _round in range(2):  # alternate so neither gets a warmer machine
        for name, loader in (("baseline", baseline_loader), ("lightbox", lightbox_loader)):
            rate = throughput(loader, args.epochs)
            results[name] = max(results.get(name, 0.0), rate)
    ratio = results["lightbox"] / results["baseline"]
    print(
        json.dumps(
            {
                "images": args.images,
                "batch": args.batch,
                "workers": 1,
                "baseline_img_s": round(results["baseline"], 1),
                "lightbox_img_s": round(results["lightbox"], 1),
                "ratio": round(ratio, 3),
                "target": 1.3,
                "met": ratio >= 1.3,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
