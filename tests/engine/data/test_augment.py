"""Tests for engine.data.augment: spec validation, presets, pipelines, preview."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import augment as aug
from engine.data.augment import AugmentationSpecError


def _image(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h: int = 96, w: int = 128) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[10:50, 20:80] = 1
    mask[60:90, 90:120] = 2
    return mask


BOXES = [[20.0, 10.0, 60.0, 40.0], [90.0, 60.0, 30.0, 30.0]]
LABELS = [3, 7]


def _same(a: dict, b: dict) -> bool:
    """Byte-for-byte equality of two apply() outputs."""
    for key in ("image", "boxes", "labels", "mask"):
        x, y = a[key], b[key]
        if (x is None) != (y is None):
            return False
        if x is not None and (x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes()):
            return False
    return True


def _assert_output_types(out: dict) -> None:
    assert out["image"].dtype == np.uint8 and out["image"].ndim == 3 and out["image"].shape[2] == 3
    assert out["boxes"].dtype == np.float32 and out["boxes"].ndim == 2 and out["boxes"].shape[1] == 4
    assert out["labels"].dtype == np.int64 and out["labels"].shape == (len(out["boxes"]),)


# --------------------------------------------------------------------------
# Presets


@pytest.mark.parametrize("task", aug.TASKS)
@pytest.mark.parametrize("split", ["train", "val"])
def test_every_preset_builds_and_runs_with_boxes_and_mask(task, split):
    spec = aug.preset(task, split, image_size=64)
    assert aug.validate_spec(spec) == spec  # presets are already normalised
    outs = aug.preview(spec, task, _image(), boxes=BOXES, labels=LABELS, mask=_mask(), n=4, seed=1)
    assert len(outs) == 4
    for out in outs:
        _assert_output_types(out)
        # Every preset ends at a fixed square size.
        assert out["image"].shape == (64, 64, 3)
        assert out["mask"].shape == (64, 64) and out["mask"].dtype == np.uint8
        assert set(out["labels"].tolist()) <= set(LABELS)
        # Masks are resized with nearest neighbour: no invented classes (255 = padding).
        assert set(np.unique(out["mask"]).tolist()) <= {0, 1, 2, aug.MASK_PAD_VALUE}


def test_preset_default_sizes_and_fresh_copies():
    assert aug.preset("classification")[0]["size"] == [224, 224]
    assert aug.preset("detection")[-1]["min_height"] == 800
    assert aug.preset("segmentation", "val")[0]["max_size"] == 512
    assert aug.preset("detection", "val", 640) == [
        {"name": "LongestMaxSize", "max_size": 640},
        {
            "name": "PadIfNeeded",
            "min_height": 640,
            "min_width": 640,
            "border_mode": 0,
            "fill": 0,
            "fill_mask": 0,
            "position": "top_left",
        },
    ]
    for task in aug.TASKS:
        for split in ("train", "val"):
            assert aug.PRESETS[task][split] == aug.preset(task, split)
    spec = aug.preset("classification")
    spec[0]["size"][0] = 1
    assert aug.PRESETS["classification"]["train"][0]["size"] == [224, 224]
    with pytest.raises(ValueError):
        aug.preset("classification", "test")
    with pytest.raises(ValueError):
        aug.preset("nope")
    with pytest.raises(ValueError):
        aug.preset("classification", image_size=0)


# --------------------------------------------------------------------------
# Boxes


def test_horizontal_flip_moves_box_to_mirrored_position_exactly():
    # Width 128: dividing by a power of two is exact, so the result is too.
    image, mask = _image(96, 128), _mask(96, 128)
    pipe = aug.build_pipeline([{"name": "HorizontalFlip", "p": 1.0}], "detection", seed=0)
    out = aug.apply(pipe, image, boxes=[[16, 20, 32, 40]], labels=[5], mask=mask)
    # COCO xywh: x' = W - x - w. Read as xyxy the answer would be [96, 20, 112, 40].
    np.testing.assert_array_equal(out["boxes"], np.array([[80, 20, 32, 40]], np.float32))
    np.testing.assert_array_equal(out["labels"], [5])
    np.testing.assert_array_equal(out["image"], image[:, ::-1])
    np.testing.assert_array_equal(out["mask"], mask[:, ::-1])


def test_longest_max_size_scales_coco_boxes():
    pipe = aug.build_pipeline([{"name": "LongestMaxSize", "max_size": 64}], "detection")
    out = aug.apply(pipe, _image(64, 128), boxes=[[32, 16, 64, 32]], labels=[1])
    assert out["image"].shape == (32, 64, 3)
    np.testing.assert_allclose(out["boxes"], [[16, 8, 32, 16]], atol=1e-4)


def test_detection_boxes_stay_inside_the_image():
    spec = [
        {"name": "Affine", "rotate": [-30, 30], "scale": [0.6, 1.4], "translate_percent": [-0.3, 0.3], "p": 1.0},
        {"name": "RandomResizedCrop", "size": [80, 80], "scale": [0.2, 1.0]},
        *aug.preset("detection", "train", 100),
    ]
    boxes = [[5, 5, 40, 30], [60, 40, 60, 50], [100, 70, 27, 25], [0, 0, 128, 96]]
    outs = aug.preview(spec, "detection", _image(), boxes=boxes, labels=[0, 1, 2, 3], n=30, seed=4)
    seen = 0
    for out in outs:
        _assert_output_types(out)
        h, w = out["image"].shape[:2]
        x, y, bw, bh = out["boxes"].T
        assert np.all(x >= 0) and np.all(y >= 0)
        assert np.all(bw > 0) and np.all(bh > 0)
        assert np.all(x + bw <= w + 1e-3) and np.all(y + bh <= h + 1e-3)
        assert set(out["labels"].tolist()) <= {0, 1, 2, 3}
        seen += len(out["boxes"])
    assert seen > 0  # the checks above ran on real boxes


def test_boxes_leaving_the_image_are_dropped_with_their_labels():
    crop = [{"name": "Crop", "x_min": 0, "y_min": 0, "x_max": 64, "y_max": 64}]
    pipe = aug.build_pipeline(crop, "detection", seed=0)
    boxes = [[4, 4, 20, 20], [90, 70, 20, 20], [50, 50, 30, 30]]
    out = aug.apply(pipe, _image(), boxes=boxes, labels=[1, 2, 3])
    np.testing.assert_array_equal(out["labels"], [1, 3])
    # The third box is clipped to the crop (14 / 30 px wide keeps 22% of it).
    np.testing.assert_allclose(out["boxes"], [[4, 4, 20, 20], [50, 50, 14, 14]], atol=1e-4)

    # All boxes gone, or none given: the same types with N == 0.
    for given in ([[90, 70, 20, 20]], None, []):
        out = aug.apply(pipe, _image(), boxes=given, labels=None if not given else [2])
        _assert_output_types(out)
        assert out["boxes"].shape == (0, 4) and out["labels"].shape == (0,)
        assert out["mask"] is None


def test_apply_rejects_bad_inputs():
    pipe = aug.build_pipeline([], "detection")
    with pytest.raises(ValueError, match="uint8"):
        aug.apply(pipe, _image().astype(np.float32))
    with pytest.raises(ValueError, match="labels"):
        aug.apply(pipe, _image(), boxes=BOXES, labels=[1])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        aug.apply(pipe, _image(), boxes=[[1, 2, 3]])


# --------------------------------------------------------------------------
# Validation errors


def _error(spec, **kwargs) -> AugmentationSpecError:
    with pytest.raises(AugmentationSpecError) as info:
        aug.validate_spec(spec, **kwargs)
    return info.value


def test_out_of_range_probability_names_step_and_param():
    err = _error([{"name": "HorizontalFlip", "p": 2}])
    assert str(err).startswith("step 1 (HorizontalFlip): p: ")
    assert (err.step, err.transform, err.param) == ("1", "HorizontalFlip", "p")


def test_reversed_scale_names_step_and_param():
    err = _error([{"name": "HorizontalFlip"}, {"name": "RandomResizedCrop", "size": [32, 32], "scale": [1, 0.5]}])
    assert str(err).startswith("step 2 (RandomResizedCrop): scale: ")
    assert err.param == "scale"


def test_other_parameter_errors():
    err = _error([{"name": "ColorJitter", "brightness": "lots"}])
    assert str(err).startswith("step 1 (ColorJitter): brightness: ")
    err = _error([{"name": "RandomResizedCrop"}])
    assert str(err) == "step 1 (RandomResizedCrop): size: required parameter is missing"
    err = _error([{"name": "LongestMaxSize"}])  # a model-level check, located by its message
    assert str(err).startswith("step 1 (LongestMaxSize): max_size: ")
    err = _error([{"name": "Blur", "blur_limt": 3}])
    assert err.param == "blur_limt" and "did you mean blur_limit" in str(err)
    err = _error([{"name": "Blur", "blur_limit": np.zeros(2)}])
    assert err.param == "blur_limit" and "ndarray" in str(err)
    err = _error([{"name": "OneOf", "p": 1.5, "transforms": [{"name": "Blur"}]}])
    assert str(err).startswith("step 1 (OneOf): p: ")
    assert "list of steps" in str(_error({"name": "Blur"}))
    assert _error([{"p": 1}]).param == "name"


def test_nested_error_is_located_inside_the_container():
    err = _error(
        [
            {"name": "HorizontalFlip"},
            {"name": "OneOf", "transforms": [{"name": "Blur"}, {"name": "VerticalFlip", "p": -1}]},
        ]
    )
    assert str(err).startswith("step 2.2 (VerticalFlip): p: ")


def test_unknown_transform_suggests_close_names():
    err = _error([{"name": "HorizontalFlp"}])
    assert str(err).startswith("step 1 (HorizontalFlp): unknown transform")
    assert "did you mean HorizontalFlip" in str(err)
    assert "HorizontalFlip" in str(_error([{"name": "horizontalflip"}]))
    assert "OneOf" in str(_error([{"name": "OneOff", "transforms": [{"name": "Blur"}]}]))


@pytest.mark.parametrize("name", ["Normalize", "ToTensorV2", "ToFloat"])
def test_float_and_tensor_conversion_rejected(name):
    err = _error([{"name": "HorizontalFlip"}, {"name": name}])
    assert str(err).startswith(f"step 2 ({name}): not allowed: ")
    if name == "Normalize":
        assert "normalisation is applied later" in str(err)
    for task in aug.TASKS:
        assert name not in aug.available_transforms(task)


def test_task_restrictions():
    spec = [{"name": "MaskDropout", "p": 1.0}]
    assert aug.validate_spec(spec, task="segmentation") == spec
    err = _error(spec, task="detection")
    assert str(err).startswith("step 1 (MaskDropout): cannot be used for detection")
    with pytest.raises(AugmentationSpecError):
        aug.build_pipeline(spec, "classification")
    with pytest.raises(ValueError, match="unknown task"):
        aug.build_pipeline([], "keypoints")


def test_validate_spec_normalises_without_touching_input():
    spec = [{"name": "OneOf", "p": np.float64(0.5), "transforms": [{"name": "RandomResizedCrop", "size": (32, 32)}]}]
    normal = aug.validate_spec(spec)
    assert normal == [{"name": "OneOf", "p": 0.5, "transforms": [{"name": "RandomResizedCrop", "size": [32, 32]}]}]
    assert type(normal[0]["p"]) is float
    assert spec[0]["transforms"][0]["size"] == (32, 32)


# --------------------------------------------------------------------------
# Reproducibility


SPEC = [
    {"name": "RandomResizedCrop", "size": [64, 64], "scale": [0.2, 1.0]},
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "ColorJitter", "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05},
    {"name": "OneOf", "p": 0.5, "transforms": [{"name": "GaussianBlur"}, {"name": "GaussNoise"}]},
]


def test_preview_same_seed_is_identical_and_different_seeds_differ():
    kwargs = dict(boxes=BOXES, labels=LABELS, mask=_mask(), n=6)
    a = aug.preview(SPEC, "detection", _image(), seed=7, **kwargs)
    b = aug.preview(SPEC, "detection", _image(), seed=7, **kwargs)
    c = aug.preview(SPEC, "detection", _image(), seed=8, **kwargs)
    assert all(_same(x, y) for x, y in zip(a, b, strict=True))
    assert not all(_same(x, y) for x, y in zip(a, c, strict=True))
    # The samples within one preview differ from each other too.
    assert not _same(a[0], a[1])


def test_preview_matches_the_training_dataset(sample_dataset):
    """The preview of dataset item i shows, array for array, what training feeds in epochs 0..n-1."""
    from engine.tasks.detection.datamodule import DetectionDataset
    from engine.tasks.segmentation.datamodule import SegmentationDataset

    ann_file = sample_dataset / "annotations" / "instances_train.json"
    for dataset_class, task, size in [(DetectionDataset, "detection", 96), (SegmentationDataset, "segmentation", 64)]:
        spec = aug.preset(task, "train", size)
        dataset = dataset_class(sample_dataset / "train", ann_file, transforms=spec, seed=123)
        i = 5
        image, targets = dataset.load(i)
        shown = aug.preview(spec, task, image, n=3, seed=123, index=i, **targets)
        trained = [dataset.augmented(i, epoch) for epoch in range(3)]
        assert all(_same(x, y) for x, y in zip(trained, shown, strict=True)), task
        # ... and what the data loader really batches is that image.
        fed = dataset[2 * len(dataset) + i]["pixel_values"].permute(1, 2, 0).numpy()
        assert np.array_equal(fed, shown[2]["image"])
        assert not np.array_equal(shown[0]["image"], shown[1]["image"])


def test_transforms_do_not_share_random_draws():
    # Compose(seed=...) alone seeds every transform with the same number, so two
    # flips with p=0.5 would always fire together; all four combinations must occur.
    image = np.zeros((8, 8, 3), np.uint8)
    image[0, 0] = 255
    spec = [{"name": "HorizontalFlip", "p": 0.5}, {"name": "VerticalFlip", "p": 0.5}]
    outs = aug.preview(spec, "classification", image, n=40, seed=3)
    corners = {tuple(int(v) for v in np.argwhere(o["image"][..., 0])[0]) for o in outs}
    assert corners == {(0, 0), (0, 7), (7, 0), (7, 7)}


def test_reseed_restarts_the_stream():
    pipe = aug.build_pipeline(SPEC, "classification", seed=5)
    assert pipe.seed == 5
    first = [aug.apply(pipe, _image()) for _ in range(3)]
    aug.reseed(pipe, 5)
    again = [aug.apply(pipe, _image()) for _ in range(3)]
    assert all(_same(x, y) for x, y in zip(first, again, strict=True))


def test_apply_seeded_depends_only_on_the_seed():
    pipe = aug.build_pipeline(SPEC, "detection")
    seeds = [aug.sample_seed(0, epoch, i) for epoch in range(2) for i in range(3)]
    assert len(set(seeds)) == len(seeds) and seeds[0] == aug.sample_seed(0, 0, 0)
    kwargs = dict(boxes=BOXES, labels=LABELS, mask=_mask())
    forward = [aug.apply_seeded(pipe, s, _image(), **kwargs) for s in seeds]
    # Another pipeline, visiting in reverse order (as a different worker would).
    other = aug.build_pipeline(SPEC, "detection", seed=99)
    backward = [aug.apply_seeded(other, s, _image(), **kwargs) for s in reversed(seeds)]
    assert all(_same(x, y) for x, y in zip(forward, reversed(backward), strict=True))
    assert not _same(forward[0], forward[1])


def test_one_of_nested_spec():
    spec = [
        {
            "name": "OneOf",
            "p": 1.0,
            "transforms": [{"name": "HorizontalFlip", "p": 1.0}, {"name": "VerticalFlip", "p": 1.0}],
        }
    ]
    assert aug.validate_spec(spec) == spec
    image, mask = _image(), _mask()
    outs = aug.preview(spec, "segmentation", image, mask=mask, n=20, seed=0)
    kinds = set()
    for out in outs:
        if np.array_equal(out["image"], image[:, ::-1]):
            kinds.add("h")
            np.testing.assert_array_equal(out["mask"], mask[:, ::-1])
        elif np.array_equal(out["image"], image[::-1]):
            kinds.add("v")
            np.testing.assert_array_equal(out["mask"], mask[::-1])
        else:
            pytest.fail("OneOf applied neither flip")
    assert kinds == {"h", "v"}


# --------------------------------------------------------------------------
# YAML


def test_yaml_round_trip_is_exact_and_byte_stable():
    spec = [
        {"name": "RandomResizedCrop", "size": (224, 224), "scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3)},
        {
            "name": "SomeOf",
            "n": 2,
            "p": 1.0,
            "transforms": [{"name": "ColorJitter", "hue": 0.05}, {"name": "Blur"}, {"name": "ToGray", "p": 0.2}],
        },
        *aug.preset("segmentation", "train", 224),
    ]
    text = aug.spec_to_yaml(spec)
    assert text.startswith("- name: RandomResizedCrop\n")  # keys keep their order, name first
    loaded = aug.spec_from_yaml(text)
    assert loaded == aug.validate_spec(spec)
    assert aug.spec_to_yaml(loaded) == text
    assert aug.spec_to_yaml(spec) == text
    # A spec read back from its file augments exactly like the original.
    a = aug.preview(spec, "segmentation", _image(), mask=_mask(), n=3, seed=2)
    b = aug.preview(loaded, "segmentation", _image(), mask=_mask(), n=3, seed=2)
    assert all(_same(x, y) for x, y in zip(a, b, strict=True))


def test_yaml_errors():
    assert aug.spec_from_yaml("") == []
    with pytest.raises(AugmentationSpecError, match="invalid YAML"):
        aug.spec_from_yaml("- name: [unclosed")
    with pytest.raises(AugmentationSpecError, match=r"step 1 \(HorizontalFlip\): p: "):
        aug.spec_from_yaml("- {name: HorizontalFlip, p: 3}\n")


# --------------------------------------------------------------------------
# Introspection


def test_describe_transform():
    info = aug.describe_transform("RandomResizedCrop")
    assert info["name"] == "RandomResizedCrop" and info["kind"] == "dual"
    params = {p["name"]: p for p in info["params"]}
    assert params["size"]["required"] and params["size"]["annotation"] == "tuple[int, int]"
    assert params["scale"]["default"] == [0.08, 1.0] and not params["scale"]["required"]
    assert all(isinstance(p["annotation"], str) for p in info["params"])
    assert params["area_for_downscale"]["choices"] == [None, "image", "image_mask"]
    assert aug.describe_transform("ColorJitter")["kind"] == "image"
    one_of = aug.describe_transform("OneOf")
    assert one_of["kind"] == "container" and "transforms" in [p["name"] for p in one_of["params"]]
    with pytest.raises(AugmentationSpecError, match="did you mean ColorJitter"):
        aug.describe_transform("ColourJitter")
    with pytest.raises(AugmentationSpecError, match="not allowed"):
        aug.describe_transform("Normalize")


def test_available_transforms():
    cls, det, seg = (aug.available_transforms(t) for t in aug.TASKS)
    for names in (cls, det, seg):
        assert names == sorted(names)
        assert {"HorizontalFlip", "ColorJitter", "RandomResizedCrop", "PadIfNeeded"} <= set(names)
        assert not {"Normalize", "Lambda", "Mosaic", "OneOf"} & set(names)
        # Every listed name is something describe_transform can show.
        assert all(aug.describe_transform(n)["name"] == n for n in names)
    assert "MaskDropout" in seg and "MaskDropout" not in det and "MaskDropout" not in cls
    assert "CenterCrop3D" not in cls  # volumes are not images
    with pytest.raises(ValueError):
        aug.available_transforms("keypoints")
