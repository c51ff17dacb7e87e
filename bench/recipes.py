"""Lightbox's default recipe against a plain hand-written PyTorch loop, on real image sets.

Image sets (real pictures that ship inside installed packages; only ``demo`` is generated):

* ``digits``   scikit-learn's handwritten digits (8x8, 10 classes), upscaled;
* ``photos``   crops of 9 colour photos shipped by scikit-image, scikit-learn and
               matplotlib; the class is the photo a crop comes from;
* ``textures`` crops of 10 grey images shipped by scikit-image (brick, grass, ...);
* ``faces``    scikit-image's LFW subset: 100 faces and 100 non-faces, 25x25 grey;
* ``scans``    crops of 6 scientific pictures (retina, cells, microaneurysms from
               scikit-image; an MRI slice, a fault's elevation map and a topography
               grid from matplotlib);
* ``scenes``   crops of 5 more scikit-image pictures (motorcycle, clock, colour wheel,
               logo, horse silhouette);
* ``demo``     Lightbox's demo set (engine.data.sample), one shape per image.

Crops for training come from the left 60% of each picture and crops for
validation from the right 40%, so no pixel is in both.

Both sides train the same model (the ``resnet-tiny`` preset, same seed) at the
same image size, epochs, batch size and learning rate, and report the top-1
accuracy on the same validation images after the last epoch. Lightbox runs
``engine.orchestration.local.train`` with everything else at its defaults
(augmentation strength, schedule and warm-up on "auto"); the plain loop is
AdamW at a constant learning rate on images only resized.

    .venv/bin/python bench/recipes.py [--epochs 5] [--size 32] [--batch 64] [--lr 1e-3] [--seeds 0 1 2 3 4]

Each set is run with every seed on both sides; the table gives the mean top-1 and the
spread (lowest-highest) over the seeds, and the difference of the means. A set counts
as won when Lightbox's mean is at least the plain loop's mean less the larger of the
two spreads.

Needs scikit-learn, scikit-image and matplotlib (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


# ----------------------------------------------------------------------------- image sets
def _write_coco(root: Path, samples: dict[str, list[tuple[np.ndarray, str]]], names: list[str]) -> Path:
    """samples: split -> [(uint8 RGB image, class name)]; one full-image box per image."""
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    ids = {n: i + 1 for i, n in enumerate(names)}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, items in samples.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for k, (pixels, name) in enumerate(items, 1):
            h, w = pixels.shape[:2]
            file_name = f"{k:05d}.png"
            Image.fromarray(pixels).save(root / split / file_name)
            images.append({"id": k, "file_name": file_name, "width": w, "height": h})
            annotations.append(
                {
                    "id": k,
                    "image_id": k,
                    "category_id": ids[name],
                    "bbox": [0, 0, w, h],
                    "area": float(w * h),
                    "iscrowd": 0,
                    "segmentation": [[0, 0, w, 0, w, h, 0, h]],
                }
            )
        doc = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
    return root


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (255 * (image.astype(np.float32) / max(float(image.max()), 1e-6))).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def digits(root: Path) -> Path:
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.target))
    cut = int(0.8 * len(order))
    samples: dict[str, list] = {"train": [], "val": []}
    for split, rows in (("train", order[:cut]), ("val", order[cut:])):
        for r in rows:
            pixels = (data.images[r] * (255 / 16)).astype(np.uint8)
            big = np.asarray(Image.fromarray(pixels).resize((32, 32), Image.BILINEAR))
            samples[split].append((_rgb(big), str(data.target[r])))
    return _write_coco(root, samples, [str(d) for d in range(10)])


def _crops(pictures: dict[str, np.ndarray], root: Path, train_per_class=120, val_per_class=40) -> Path:
    rng = np.random.default_rng(0)
    samples: dict[str, list] = {"train": [], "val": []}
    for name, picture in pictures.items():
        picture = _rgb(picture)
        h, w = picture.shape[:2]
        scale = 256 / min(h, w)  # comparable detail whatever the picture's resolution
        picture = np.asarray(Image.fromarray(picture).resize((round(w * scale), round(h * scale)), Image.BILINEAR))
        h, w = picture.shape[:2]
        cut = int(0.6 * w)
        for split, count, (x0, x1) in (("train", train_per_class, (0, cut)), ("val", val_per_class, (cut, w))):
            for _ in range(count):
                side = int(rng.integers(40, min(96, x1 - x0, h) + 1))
                x = int(rng.integers(x0, x1 - side + 1))
                y = int(rng.integers(0, h - side + 1))
                samples[split].append((picture[y : y + side, x : x + side].copy(), name))
    return _write_coco(root, samples, list(pictures))


def photos(root: Path) -> Path:
    import matplotlib.cbook
    import skimage.data as sk
    from sklearn.datasets import load_sample_image

    pictures = {
        n: getattr(sk, n)()
        for n in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
    }
    pictures["china"] = load_sample_image("china.jpg")
    pictures["flower"] = load_sample_image("flower.jpg")
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        pictures["grace_hopper"] = np.asarray(Image.open(f).convert("RGB"))
    return _crops(pictures, root)


def textures(root: Path) -> Path:
    import skimage.data as sk

    names = ("brick", "grass", "gravel", "camera", "moon", "text", "page", "coins", "horse", "cell")
    return _crops({n: getattr(sk, n)() for n in names}, root)


def faces(root: Path) -> Path:
    import skimage.data as sk

    images = sk.lfw_subset()  # the first 100 are faces, the last 100 are not
    rng = np.random.default_rng(0)
    samples: dict[str, list] = {"train": [], "val": []}
    for label, rows in (("face", np.arange(100)), ("other", np.arange(100, 200))):
        rows = rng.permutation(rows)
        for split, part in (("train", rows[:70]), ("val", rows[70:])):
            samples[split].extend((_rgb(images[r]), label) for r in part)
    return _write_coco(root, samples, ["face", "other"])


def _matplotlib_sample(name: str) -> np.ndarray:
    import matplotlib.cbook

    if name == "mri":  # a 256x256 big-endian 16-bit slice (get_sample_data opens the .gz itself)
        with matplotlib.cbook.get_sample_data("s1045.ima.gz") as f:
            return np.frombuffer(f.read(), ">u2").reshape(256, 256).astype(np.float32)
    file, key = {"elevation": ("jacksboro_fault_dem.npz", "elevation"), "topography": ("topobathy.npz", "topo")}[name]
    with matplotlib.cbook.get_sample_data(file) as data:  # an open NpzFile
        grid = data[key].astype(np.float32)
    return grid - grid.min()


def scans(root: Path) -> Path:
    import skimage.data as sk

    pictures = {"retina": sk.retina(), "cells": sk.cell(), "microaneurysms": sk.microaneurysms()}
    pictures.update({n: _matplotlib_sample(n) for n in ("mri", "elevation", "topography")})
    return _crops(pictures, root)


def scenes(root: Path) -> Path:
    import skimage.data as sk

    pictures = {
        "motorcycle": sk.stereo_motorcycle()[0],
        "clock": sk.clock(),
        "colourwheel": sk.colorwheel(),
        "logo": sk.logo(),
        "horse": sk.horse().astype(np.uint8) * 255,
    }
    return _crops(pictures, root)


def demo(root: Path) -> Path:
    from engine.data.sample import write_sample_dataset

    return write_sample_dataset(root, train_images=240, val_images=80)


SETS = {
    "digits": digits,
    "photos": photos,
    "textures": textures,
    "faces": faces,
    "scans": scans,
    "scenes": scenes,
    "demo": demo,
}


# ----------------------------------------------------------------------------- the two sides
def lightbox(data: Path, workspace: Path, args) -> float:
    from engine.config import RunConfig
    from engine.orchestration.local import train

    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(data),
            "model.checkpoint": "resnet-tiny",
            "data.image_size": args.size,
            "optim.epochs": args.epochs,
            "optim.batch_size": args.batch,
            "optim.lr": args.lr,
            "data.num_workers": 0,
            "workspace": str(workspace),
            "optim.seed": args.seed,
        }
    )
    result = train(config, progress=False)
    if result.status != "FINISHED":
        raise RuntimeError(f"Lightbox run on {data} ended {result.status}: {result.message}")
    return result.metrics["val/accuracy"]


def _load_split(data: Path, split: str, size: int, classes: list[int] | None):
    doc = json.loads((data / "annotations" / f"instances_{split}.json").read_text())
    largest: dict[int, tuple[float, int]] = {}
    for a in doc["annotations"]:
        if a.get("iscrowd"):
            continue
        if a["area"] > largest.get(a["image_id"], (-1.0, 0))[0]:
            largest[a["image_id"]] = (a["area"], a["category_id"])
    classes = classes or sorted(c["id"] for c in doc["categories"])
    xs, ys = [], []
    for im in doc["images"]:
        if im["id"] not in largest:
            continue
        pixels = Image.open(data / split / im["file_name"]).convert("RGB").resize((size, size), Image.BILINEAR)
        xs.append((np.asarray(pixels, np.float32) / 255 - MEAN) / STD)
        ys.append(classes.index(largest[im["id"]][1]))
    return np.stack(xs).transpose(0, 3, 1, 2), np.array(ys), classes


def plain_loop(data: Path, args) -> float:
    """The 30-line script: AdamW, constant lr, resize only."""
    import torch
    from transformers import ResNetForImageClassification

    from engine.catalog.presets import get_preset

    x_train, y_train, classes = _load_split(data, "train", args.size, None)
    x_val, y_val, _ = _load_split(data, "val", args.size, classes)
    torch.manual_seed(args.seed)
    model = ResNetForImageClassification(get_preset("resnet-tiny").build_config("classification", len(classes)))
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr)
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(args.epochs):
        model.train()
        for rows in torch.randperm(len(y_train)).split(args.batch):
            loss = torch.nn.functional.cross_entropy(model(pixel_values=x_train[rows]).logits, y_train[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(pixel_values=torch.from_numpy(x)).logits for x in np.array_split(x_val, 8)])
    return float((logits.argmax(1).numpy() == y_val).mean())


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}" if len(values) > 1 else "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    args = parser.parse_args(argv)

    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
        f"resnet-tiny, {args.size} px, {args.epochs} epochs, batch {args.batch}, lr {args.lr}, "
        f"seeds {args.seeds}"
    )
    print("| set | train/val | Lightbox mean (spread) | plain mean (spread) | difference | won | time s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    diffs, wins = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            data = SETS[name](Path(tmp) / name)
            counts = [
                len(json.loads((data / "annotations" / f"instances_{s}.json").read_text())["images"])
                for s in ("train", "val")
            ]
            start = time.perf_counter()
            ours, theirs = [], []
            for seed in args.seeds:
                args.seed = seed
                ours.append(lightbox(data, Path(tmp) / f"ws-{name}-{seed}", args))
                theirs.append(plain_loop(data, args))
            mean_ours, mean_theirs = float(np.mean(ours)), float(np.mean(theirs))
            spread = max(max(ours) - min(ours), max(theirs) - min(theirs))
            won = mean_ours >= mean_theirs - spread
            wins += won
            diffs.append(mean_ours - mean_theirs)
            print(
                f"| {name} | {counts[0]}/{counts[1]} | {mean_ours:.3f} ({_spread(ours)}) | {mean_theirs:.3f} "
                f"({_spread(theirs)}) | {100 * diffs[-1]:+.1f} | {'yes' if won else 'NO'} | "
                f"{time.perf_counter() - start:.0f} |",
                flush=True,
            )
    mean = 100 * sum(diffs) / len(diffs)
    print(
        f"mean difference: {mean:+.1f} points; Lightbox >= plain within the seed spread on {wins}/{len(diffs)} "
        f"sets; load at end {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
