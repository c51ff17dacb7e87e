"""Export: a trained tiny run of each task -> HF folder + ONNX, parity, registry, predict, bad inputs."""

import json
import shutil

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from engine.cli import main
from engine.config import RunConfig
from engine.export.build import export_run
from engine.export.manifest import MANIFEST_NAME, ExportError, read_manifest
from engine.export.parity import Tolerance
from engine.orchestration.local import train

MODELS = {"classification": "resnet-tiny", "detection": "detr-tiny", "segmentation": "segformer-tiny"}
AUTO = {
    "classification": "AutoModelForImageClassification",
    "detection": "AutoModelForObjectDetection",
    "segmentation": "AutoModelForSemanticSegmentation",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("export-ws")


@pytest.fixture(scope="module")
def runs(sample_dataset, workspace):
    """One finished tiny run per task, trained once for the module."""
    out = {}
    for task, model in MODELS.items():
        config = RunConfig.from_dict({"task": {"name": task}}).with_overrides(
            {
                "data.path": str(sample_dataset),
                "model.checkpoint": model,
                "optim.epochs": 1,
                "optim.batch_size": 8,
                "data.image_size": 64,
                "data.num_workers": 0,
                "workspace": str(workspace),
            }
        )
        result = train(config, progress=False)
        assert result.status == "FINISHED"
        out[task] = result.run_id
    return out


def _train(dataset, workspace, task, model, size, epochs=1):
    config = RunConfig.from_dict({"task": {"name": task}}).with_overrides(
        {
            "data.path": str(dataset),
            "model.checkpoint": model,
            "optim.epochs": epochs,
            "optim.batch_size": 8,
            "optim.lr": 1e-3,
            "data.image_size": size,
            "data.num_workers": 0,
            "workspace": str(workspace),
        }
    )
    result = train(config, progress=False)
    assert result.status == "FINISHED"
    return result.run_id


@pytest.fixture(scope="module")
def default_detector(sample_dataset, workspace):
    """The default detector (rt-detr-v2-tiny) trained for an epoch at 128 px, exported both ways."""
    run_id = _train(sample_dataset, workspace, "detection", "rt-detr-v2-tiny", 128)
    folder = workspace / "export-rt-detr"
    assert main(["export", run_id, "--format", "hf,onnx", "--out", str(folder), "--workspace", str(workspace)]) == 0
    return run_id, folder


@pytest.fixture(scope="module")
def exports(runs, workspace):
    folders = {}
    for task, run_id in runs.items():
        folder = workspace / f"export-{task}"
        code = main(
            [
                "export",
                run_id,
                "--format",
                "hf,onnx",
                "--out",
                str(folder),
                "--workspace",
                str(workspace),
                "--register",
                f"shapes-{task}",
            ]
        )
        assert code == 0
        folders[task] = folder
    return folders


@pytest.mark.parametrize("task", list(MODELS))
def test_export_reloads_with_from_pretrained_and_passes_parity(task, exports, sample_dataset):
    import transformers
    from transformers import AutoImageProcessor

    folder = exports[task]
    manifest = read_manifest(folder)
    assert manifest["task"] == task
    index = json.loads((sample_dataset / "annotations" / "instances_train.json").read_text())
    coco_ids = sorted(c["id"] for c in index["categories"])
    assert sorted(manifest["label_to_category_id"].values()) == coco_ids
    model = getattr(transformers, AUTO[task]).from_pretrained(str(folder))
    assert {int(k): v for k, v in model.config.id2label.items()} == {int(k): v for k, v in manifest["id2label"].items()}
    assert model.config.label2id == {v: int(k) for k, v in manifest["id2label"].items()}
    assert sorted(model.config.coco_category_ids.values()) == coco_ids
    processor = AutoImageProcessor.from_pretrained(str(folder))
    assert list(processor.image_mean) == manifest["preprocessing"]["mean"]
    assert (folder / "model.safetensors").is_file() and (folder / "model.onnx").is_file()
    parity = manifest["parity"]
    assert parity["passed"] and parity["images"] > 0 and not parity["failures"]
    assert parity["max_abs_diff"] <= 1e-3 and parity["agreement"] >= 0.99
    metric = parity["metric"]  # the task metric of both models on the validation images
    assert metric["name"] == {"classification": "accuracy", "detection": "map", "segmentation": "miou"}[task]
    assert abs(metric["onnx"] - metric["checkpoint"]) <= 0.01 and metric["per_class"]
    assert manifest["onnx"]["exporter"] in ("dynamo", "torchscript")
    assert manifest["onnx"]["dynamic_axes"] == {"pixel_values": [0, 2, 3]}
    assert manifest["onnx"]["dynamic_size"] and manifest["onnx"]["input_shape"][2:] == [None, None]
    assert not list(folder.parent.glob(f".{folder.name}.partial-*"))


@pytest.mark.parametrize("task", list(MODELS))
def test_onnx_takes_two_image_sizes_like_the_hf_model(task, exports):
    import transformers

    from engine.export.runtime import OnnxBackend, TorchBackend

    folder = exports[task]
    onnx, hf = (
        OnnxBackend(folder / "model.onnx"),
        TorchBackend(getattr(transformers, AUTO[task]).from_pretrained(str(folder)).eval(), task),
    )
    generator = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 64, 64), (1, 3, 96, 128)]:
        pixels = torch.randn(*shape, generator=generator)
        got, reference = onnx(pixels), hf(pixels)
        assert [o.shape for o in got] == [r.shape for r in reference]
        assert max(float((a - b).abs().max()) for a, b in zip(got, reference)) < 1e-3
        if task == "segmentation":
            assert tuple(got[0].shape[-2:]) == shape[-2:]


def test_hf_image_processor_reproduces_the_validation_transform(exports, sample_dataset):
    from PIL import Image
    from transformers import AutoImageProcessor

    from engine.export.runtime import collate_for, dataset_for, image_index

    folder = exports["classification"]
    manifest = read_manifest(folder)
    paths = sorted((sample_dataset / "val").glob("*.jpg"))[:4]
    root, index = image_index(paths)
    dataset = dataset_for("classification", root, index, manifest["preprocessing"])
    ours = collate_for("classification", manifest["preprocessing"])([dataset[i] for i in range(4)])["pixel_values"]
    theirs = AutoImageProcessor.from_pretrained(str(folder))(
        images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt"
    )["pixel_values"]
    assert ours.shape == theirs.shape
    assert float((ours - theirs).abs().mean()) < 0.05  # OpenCV vs PIL bilinear resampling only


def test_hf_detr_processor_reproduces_the_validation_pixels_but_its_documented_padding(exports, sample_dataset):
    """Resize (longest side) and normalisation match; the pad differs as the manifest says:
    DetrImageProcessor pads with 0 after normalising, Lightbox pads black before."""
    from PIL import Image
    from transformers import AutoImageProcessor

    from engine.export.runtime import collate_for, dataset_for, image_index

    folder = exports["detection"]
    manifest = read_manifest(folder)
    assert "pads with 0 after normalising" in manifest["hf"]["note"]
    paths = sorted((sample_dataset / "val").glob("*.jpg"))[:4]
    root, index = image_index(paths)
    dataset = dataset_for("detection", root, index, manifest["preprocessing"])
    samples = [dataset[i] for i in range(len(paths))]
    ours = collate_for("detection", manifest["preprocessing"])(samples)["pixel_values"]
    encoded = AutoImageProcessor.from_pretrained(str(folder))(
        images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt"
    )
    theirs, their_mask = encoded["pixel_values"], encoded["pixel_mask"].bool()
    assert ours.shape == theirs.shape
    pre = manifest["preprocessing"]
    black = torch.tensor([(0 - m) / s for m, s in zip(pre["mean"], pre["std"])]).view(3, 1)
    padded = 0
    for k, sample in enumerate(samples):
        x, y, w, h = (int(round(v)) for v in sample["labels"]["content_box"].tolist())
        assert (x, y) == (0, 0)  # top-left placement, as pad_size pads bottom/right
        their_h, their_w = int(their_mask[k].any(1).sum()), int(their_mask[k].any(0).sum())
        assert abs(their_h - h) <= 1 and abs(their_w - w) <= 1  # HF floors the short side, albumentations rounds
        common_h, common_w = min(h, their_h), min(w, their_w)
        content = (ours[k, :, :common_h, :common_w] - theirs[k, :, :common_h, :common_w]).abs().mean()
        assert float(content) < 0.05  # OpenCV vs PIL resampling only
        pad = torch.ones(ours.shape[-2:], dtype=torch.bool)
        pad[: max(h, their_h), : max(w, their_w)] = False
        if pad.any():
            padded += 1
            assert torch.allclose(ours[k][:, pad], black.expand(3, int(pad.sum())), atol=1e-5)
            assert float(theirs[k][:, pad].abs().max()) == 0.0
    assert padded  # the demo images are not square: the difference was really looked at


@pytest.mark.parametrize("task", list(MODELS))
def test_registered_alias_resolves_to_the_export(task, exports, runs, workspace):
    import mlflow

    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    client = MlflowClient(uri)
    version = client.get_model_version_by_alias(f"shapes-{task}", "best")
    assert version.run_id == runs[task]
    mlflow.set_tracking_uri(uri)
    try:
        local = mlflow.artifacts.download_artifacts(
            f"models:/shapes-{task}@best", dst_path=str(workspace / f"dl-{task}")
        )
    finally:
        mlflow.set_tracking_uri(None)
    assert json.loads((workspace / f"dl-{task}" / MANIFEST_NAME).read_text())["source"]["run_id"] == runs[task]
    assert local


def _load_res(preds_file, manifest):
    from pycocotools.coco import COCO

    preds = json.loads(preds_file.read_text())
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i} for i in sorted({p["image_id"] for p in preds})],
        "annotations": [],
        "categories": manifest["categories"],
    }
    gt.createIndex()
    return preds, gt.loadRes(str(preds_file))


@pytest.mark.parametrize("task", list(MODELS))
def test_predict_on_the_export_writes_coco_results_equal_to_the_checkpoint(
    task, exports, runs, workspace, sample_dataset, tmp_path
):
    folder, manifest = exports[task], read_manifest(exports[task])
    images = sample_dataset / "val"
    onnx_out, torch_out, run_out = tmp_path / "onnx.json", tmp_path / "torch.json", tmp_path / "run.json"
    assert main(["predict", str(folder), str(images), "--out", str(onnx_out)]) == 0
    assert main(["predict", str(folder), str(images / "*.jpg"), "--out", str(torch_out), "--backend", "torch"]) == 0
    assert main(["predict", runs[task], str(images), "--out", str(run_out), "--workspace", str(workspace)]) == 0
    preds, res = _load_res(onnx_out, manifest)
    assert preds and len(res.getAnnIds()) == len(preds)
    cat_ids = {c["id"] for c in manifest["categories"]}
    assert {p["category_id"] for p in preds} <= cat_ids
    other = json.loads(torch_out.read_text())
    from_run = json.loads(run_out.read_text())["predictions"]
    if task == "classification":
        assert all(len(p["scores"]) == len(manifest["id2label"]) for p in preds)
        by_id = {r["image_id"]: r for r in from_run}
        cat_of = {int(k): v for k, v in manifest["label_to_category_id"].items()}
        for p in preds:
            assert p["category_id"] == cat_of[by_id[p["image_id"]]["label"]]
            assert abs(p["score"] - by_id[p["image_id"]]["score"]) < 1e-3
        assert [p["category_id"] for p in other] == [p["category_id"] for p in preds]
    elif task == "detection":
        from engine.export.parity import detection_agreement

        assert all(len(p["bbox"]) == 4 for p in preds)
        assert detection_agreement(from_run, preds, Tolerance()) >= 0.99
        assert detection_agreement(other, preds, Tolerance()) >= 0.99
    else:
        from PIL import Image
        from pycocotools import mask as mask_utils

        label_of = {v: int(k) for k, v in manifest["label_to_category_id"].items()}
        agree = []
        for record in from_run:
            reference = np.array(Image.open(record["mask_file"]))
            ours = np.zeros_like(reference)
            for p in preds:
                if p["image_id"] == record["image_id"]:
                    ours[mask_utils.decode(p["segmentation"]).astype(bool)] = label_of[p["category_id"]]
            agree.append((ours == reference).mean())
        assert min(agree) >= 0.99
        assert len(other) == len(preds)


# ---------------------------------------------------------------------- bad input
def test_unknown_run_id_is_refused(workspace, runs, tmp_path, capsys):
    assert main(["export", "0123456789abcdef", "--out", str(tmp_path / "x"), "--workspace", str(workspace)]) == 2
    assert "0123456789abcdef" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_run_without_checkpoint_is_refused(workspace, runs, tmp_path):
    fake = workspace / "runs" / "nockpt000"
    (fake / "checkpoints").mkdir(parents=True)
    shutil.copy(workspace / "runs" / runs["classification"] / "run.yaml", fake / "run.yaml")
    with pytest.raises(ExportError, match="no checkpoint"):
        export_run("nockpt000", tmp_path / "x", workspace=str(workspace), say=lambda _: None)
    assert not (tmp_path / "x").exists()


def test_running_run_exports_its_best_checkpoint_so_far(workspace, runs, tmp_path):
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = runs["classification"]
    client.update_run(run_id, status="RUNNING")
    said = []
    try:
        manifest = export_run(run_id, tmp_path / "x", formats="onnx", workspace=str(workspace), say=said.append)
    finally:
        client.update_run(run_id, status="FINISHED")
    assert any("still running" in s and "best checkpoint so far" in s for s in said)
    assert manifest["source"]["run_status"] == "RUNNING" and "best-" in manifest["source"]["checkpoint"]
    assert (tmp_path / "x" / "model.onnx").is_file() and not (tmp_path / "x" / "config.json").exists()


def test_existing_output_needs_force_and_a_failed_export_keeps_the_old_one(workspace, runs, tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    (out / "keep.txt").write_text("earlier")
    run_id = runs["classification"]
    assert main(["export", run_id, "--out", str(out), "--workspace", str(workspace)]) == 2
    assert "--force" in capsys.readouterr().err and (out / "keep.txt").read_text() == "earlier"
    # Parity that cannot pass: the export fails and the earlier folder is untouched, no partial left.
    assert main(["export", run_id, "--out", str(out), "--force", "--atol", "-1", "--workspace", str(workspace)]) == 2
    assert "beyond tolerance" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
    assert main(["export", run_id, "--out", str(out), "--force", "--workspace", str(workspace)]) == 0
    assert (out / MANIFEST_NAME).is_file() and not (out / "keep.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_unreadable_image_is_skipped_and_named(exports, sample_dataset, tmp_path, capsys):
    images = tmp_path / "imgs"
    shutil.copytree(sample_dataset / "val", images)
    (images / "broken.jpg").write_bytes(b"not an image at all")
    out = tmp_path / "p.json"
    assert main(["predict", str(exports["classification"]), str(images), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err
    preds = json.loads(out.read_text())
    assert len(preds) == len(list((sample_dataset / "val").glob("*.jpg")))
    assert all("broken" not in p["file_name"] for p in preds)


@pytest.mark.parametrize(("key", "value"), [("lightbox_version", "99.0.0"), ("format_version", 99)])
def test_export_from_a_newer_lightbox_is_refused(key, value, exports, sample_dataset, tmp_path, capsys):
    folder = tmp_path / "newer"
    shutil.copytree(exports["classification"], folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest[key] = value
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="99"):
        read_manifest(folder)
    assert main(["predict", str(folder), str(sample_dataset / "val"), "--out", str(tmp_path / "p.json")]) == 2
    assert "upgrade Lightbox" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_best_of_one_task_with_a_fixed_size_then_predict(runs, workspace, sample_dataset, tmp_path, capsys):
    """The fixture's runs share experiment 'lightbox' (three tasks): --task picks within one."""
    out = tmp_path / "best"
    assert main(["export", "--best", "--experiment", "lightbox", "--out", str(out), "--workspace", str(workspace)]) == 2
    assert "several tasks" in capsys.readouterr().err and not out.exists()
    assert (
        main(
            [
                "export",
                "--best",
                "--experiment",
                "lightbox",
                "--task",
                "classification",
                "--format",
                "onnx",
                "--fixed-size",
                "--out",
                str(out),
                "--workspace",
                str(workspace),
            ]
        )
        == 0
    )
    assert "best finished classification run" in capsys.readouterr().err
    manifest = read_manifest(out)
    assert manifest["source"]["run_id"] == runs["classification"]
    assert not manifest["onnx"]["dynamic_size"] and manifest["onnx"]["input_shape"] == [None, 3, 64, 64]
    preds = tmp_path / "p.json"
    assert main(["predict", str(out), str(sample_dataset / "val"), "--out", str(preds)]) == 0
    assert len(json.loads(preds.read_text())) == len(list((sample_dataset / "val").glob("*.jpg")))


def _scored_runs(uri, experiment_name, runs):
    """Runs (name, task, value, finished) with the task's metric logged; name -> run id."""
    from engine.tasks.registry import get_task

    client = MlflowClient(uri)
    experiment = client.create_experiment(experiment_name)
    ids = {}
    for name, task, value, finished in runs:
        run = client.create_run(experiment, tags={"lightbox.task": task}, run_name=name)
        client.log_metric(run.info.run_id, get_task(task).module_class.monitor, value)
        if finished:
            client.set_terminated(run.info.run_id, "FINISHED")
        ids[name] = run.info.run_id
    return ids


def test_best_picks_the_finished_run_with_the_best_task_metric(tmp_path):
    from engine.export.source import best_run
    from engine.tracking.store import resolve_tracking_uri

    uri = resolve_tracking_uri(None, tmp_path)
    ids = _scored_runs(
        uri,
        "pick-best",
        [
            ("worse", "classification", 0.3, True),
            ("better", "classification", 0.8, True),
            ("unfinished", "classification", 0.99, False),
        ],
    )
    best = best_run("pick-best", workspace=str(tmp_path))
    assert (best.run_id, best.task, best.metric, best.value, best.compared) == (
        ids["better"],
        "classification",
        "val/accuracy",
        0.8,
        2,
    )
    with pytest.raises(ExportError, match="no experiment named 'nope'"):
        best_run("nope", workspace=str(tmp_path))


def test_best_uses_the_score_of_the_checkpoint_that_would_be_exported(tmp_path):
    from engine.export.source import best_run
    from engine.tracking.callback import BEST_MONITOR_TAG, BEST_SCORE_METRIC
    from engine.tracking.store import resolve_tracking_uri

    uri = resolve_tracking_uri(None, tmp_path)
    ids = _scored_runs(
        uri, "by-checkpoint", [("steady", "classification", 0.6, True), ("peaked", "classification", 0.4, True)]
    )
    client = MlflowClient(uri)
    client.set_tag(ids["peaked"], BEST_MONITOR_TAG, "val/accuracy")  # its best checkpoint scored 0.9
    client.log_metric(ids["peaked"], BEST_SCORE_METRIC, 0.9)
    assert best_run("by-checkpoint", workspace=str(tmp_path)).run_id == ids["peaked"]


def test_best_in_an_experiment_of_several_tasks_needs_task(tmp_path, capsys):
    from engine.export.source import best_run
    from engine.tracking.store import resolve_tracking_uri

    uri = resolve_tracking_uri(None, tmp_path)
    # mAP and accuracy are not comparable: the classification run's higher number must not win by itself.
    ids = _scored_runs(
        uri,
        "mixed",
        [("cls", "classification", 0.9, True), ("det-a", "detection", 0.2, True), ("det-b", "detection", 0.4, True)],
    )
    with pytest.raises(ExportError, match=r"several tasks: classification \(1 run\), detection \(2 runs\).*--task"):
        best_run("mixed", workspace=str(tmp_path))
    assert best_run("mixed", task="detection", workspace=str(tmp_path)).run_id == ids["det-b"]
    assert best_run("mixed", task="classification", workspace=str(tmp_path)).run_id == ids["cls"]
    with pytest.raises(ExportError, match=r"no finished segmentation run.*classification \(1 run\), detection"):
        best_run("mixed", task="segmentation", workspace=str(tmp_path))
    with pytest.raises(ExportError, match="unknown task 'nope'"):
        best_run("mixed", task="nope", workspace=str(tmp_path))
    out = tmp_path / "never"
    assert main(["export", "--best", "--experiment", "mixed", "--out", str(out), "--workspace", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "classification (1 run), detection (2 runs)" in err and "--task" in err and not out.exists()


# ---------------------------------------------------------------------- the default detector, HF route
def test_the_default_detector_exports_and_passes_parity(default_detector, sample_dataset, tmp_path):
    """rt-detr-v2-tiny: the dynamo exporter no longer fails, parity holds in mAP, predict works both ways."""
    _, folder = default_detector
    manifest = read_manifest(folder)
    assert manifest["onnx"]["exporter"] == "dynamo" and manifest["onnx"]["fallback_reason"] is None
    parity = manifest["parity"]
    assert parity["passed"], parity["failures"]
    assert abs(parity["metric"]["difference"]) <= 0.01
    assert manifest["postprocessing"]["activation"] == "sigmoid" and "sigmoid" in manifest["postprocessing"]["type"]
    assert "softmax" not in manifest["postprocessing"]["type"]
    assert manifest["hf"]["image_processor"] == "RTDetrImageProcessor"
    out = tmp_path / "p.json"
    assert main(["predict", str(folder), str(sample_dataset / "val"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())


def _our_batches(folder, manifest, sample_dataset, task):
    """The validation pixels Lightbox's own predict feeds the model, with the image files they came from."""
    from engine.export.runtime import batches, collate_for, dataset_for, image_index

    paths = sorted((sample_dataset / "val").glob("*.jpg"))
    root, index = image_index(paths)
    dataset = dataset_for(task, root, index, manifest["preprocessing"])
    return paths, batches(dataset, collate_for(task, manifest["preprocessing"]), 4, range(len(paths)))


def _hf_route_detections(folder, sample_dataset):
    """Detections through AutoImageProcessor's post-processing of the HF model (on Lightbox's pixels)."""
    from transformers import AutoImageProcessor, AutoModelForObjectDetection

    manifest = read_manifest(folder)
    processor = AutoImageProcessor.from_pretrained(str(folder))
    model = AutoModelForObjectDetection.from_pretrained(str(folder)).eval()
    coco_id = {int(k): int(v) for k, v in model.config.coco_category_ids.items()}
    _, found = _our_batches(folder, manifest, sample_dataset, "detection")
    results = []
    for batch in found:
        with torch.no_grad():
            outputs = model(pixel_values=batch["pixel_values"])
        # the boxes are relative to the square canvas
        sizes = [(max(t["orig_size"].tolist()),) * 2 for t in batch["labels"]]
        for target, one in zip(
            batch["labels"],
            processor.post_process_object_detection(
                outputs, threshold=manifest["postprocessing"]["min_score"], target_sizes=sizes
            ),
        ):
            h, w = target["orig_size"].tolist()
            for score, label, box in zip(one["scores"].tolist(), one["labels"].tolist(), one["boxes"].tolist()):
                x0, y0, x1, y1 = (
                    min(max(box[0], 0), w),
                    min(max(box[1], 0), h),
                    min(max(box[2], 0), w),
                    min(max(box[3], 0), h),
                )
                results.append(
                    {
                        "image_id": int(target["image_id"]),
                        "category_id": coco_id[int(label)],
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "score": float(score),
                    }
                )
    return model, results


@pytest.mark.parametrize("which", ["detr", "rt-detr"])
def test_hf_processor_post_processing_gives_what_lightbox_predict_gives(
    which, exports, default_detector, sample_dataset, tmp_path
):
    from engine.export.parity import detection_agreement

    folder = exports["detection"] if which == "detr" else default_detector[1]
    expected_processor = {"detr": "DetrImageProcessor", "rt-detr": "RTDetrImageProcessor"}[which]
    assert read_manifest(folder)["hf"]["image_processor"] == expected_processor
    model, theirs = _hf_route_detections(folder, sample_dataset)
    out = tmp_path / "ours.json"
    assert main(["predict", str(folder), str(sample_dataset / "val"), "--out", str(out), "--backend", "torch"]) == 0
    ours = json.loads(out.read_text())
    assert ours and theirs
    if which == "rt-detr":  # RT-DETR's processor keeps num_queries (query, class) pairs, Lightbox 100
        keep = model.config.num_queries
        ours = [
            d
            for image in {d["image_id"] for d in ours}
            for d in sorted((d for d in ours if d["image_id"] == image), key=lambda d: -d["score"])[:keep]
        ]
    # Lightbox maps boxes back through the resized image's rounded size, HF through the exact scale: < 0.5 px
    assert detection_agreement(ours, theirs, Tolerance(iou=0.95, score_atol=1e-4)) >= 0.99


def test_hf_segformer_processor_post_processing_gives_the_masks_of_lightbox_predict(exports, sample_dataset, tmp_path):
    """SegFormer's processor (not DETR's, whose semantic post-processing raises) maps logits back to each
    image's size; it does not pad, so the model sees the image without Lightbox's black border."""
    from PIL import Image
    from pycocotools import mask as mask_utils
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    folder = exports["segmentation"]
    manifest = read_manifest(folder)
    assert manifest["hf"]["image_processor"] == "SegformerImageProcessor"
    processor = AutoImageProcessor.from_pretrained(str(folder))
    model = AutoModelForSemanticSegmentation.from_pretrained(str(folder)).eval()
    out = tmp_path / "ours.json"
    assert main(["predict", str(folder), str(sample_dataset / "val"), "--out", str(out), "--backend", "torch"]) == 0
    ours = json.loads(out.read_text())
    label_of = {v: int(k) for k, v in manifest["label_to_category_id"].items()}
    paths = sorted((sample_dataset / "val").glob("*.jpg"))
    agreement = []
    for image_id, path in enumerate(paths, start=1):
        image = Image.open(path).convert("RGB")
        with torch.no_grad():
            outputs = model(**processor(images=image, return_tensors="pt"))
        (theirs,) = processor.post_process_semantic_segmentation(outputs, target_sizes=[image.size[::-1]])
        reference = np.zeros(image.size[::-1], np.int64)
        for p in ours:
            if p["image_id"] == image_id:
                reference[mask_utils.decode(p["segmentation"]).astype(bool)] = label_of[p["category_id"]]
        assert tuple(theirs.shape) == reference.shape
        agreement.append(float((theirs.numpy() == reference).mean()))
    assert np.mean(agreement) >= 0.9


@pytest.mark.parametrize(
    ("model_type", "name"),
    [
        ("detr", "DetrImageProcessor"),
        ("conditional_detr", "ConditionalDetrImageProcessor"),
        ("rt_detr_v2", "RTDetrImageProcessor"),
    ],
)
def test_each_detection_family_gets_its_own_processor(model_type, name):
    from engine.export.hf import image_processor_for

    pre = {
        "transforms": [
            {"name": "LongestMaxSize", "max_size": 64},
            {"name": "PadIfNeeded", "min_height": 64, "min_width": 64, "position": "top_left"},
        ],
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
    }
    assert type(image_processor_for("detection", pre, model_type)).__name__ == name
    with pytest.raises(ExportError, match="type 'yolos'"):
        image_processor_for("detection", pre, "yolos")


# ---------------------------------------------------------------------- parity in the user's terms
def test_parity_refuses_a_real_difference_naming_the_metric_and_the_images(exports, runs, workspace):
    """The same ONNX file against a checkpoint whose head was changed: accuracy moves, and the refusal says so."""
    from engine.export.parity import compare, describe
    from engine.export.runtime import collate_for
    from engine.orchestration.builders import build_datamodule
    from engine.orchestration.evaluate import load_module, run_files

    folder = exports["classification"]
    manifest = read_manifest(folder)
    config, _, checkpoint, _ = run_files(runs["classification"], None, str(workspace))
    datamodule = build_datamodule(config)
    datamodule.setup("fit")
    model = load_module(config, checkpoint).model.float().eval()
    collate = collate_for("classification", manifest["preprocessing"])
    same = compare(
        "classification", model, folder / "model.onnx", datamodule.val_dataset, collate, manifest, Tolerance()
    )
    assert same["passed"] and same["metric"]["difference"] == 0.0 and not same["worst_images"]
    with torch.no_grad():
        head = model.classifier[-1]
        head.bias.copy_(torch.arange(head.bias.numel(), dtype=torch.float32) * 50.0)  # always the last class
    moved = compare(
        "classification", model, folder / "model.onnx", datamodule.val_dataset, collate, manifest, Tolerance()
    )
    assert not moved["passed"]
    text = describe(moved)
    assert "accuracy moved from" in text and "FAILED" in text
    assert moved["worst_images"] and moved["worst_images"][0]["file_name"] in text
    assert "top-1" in moved["worst_images"][0]["what"]


# ---------------------------------------------------------------------- labels from the checkpoint
@pytest.mark.slow
@pytest.mark.parametrize(("task", "model"), [("detection", "detr-tiny"), ("classification", "resnet-tiny")])
def test_export_takes_labels_and_ids_from_the_checkpoint_after_the_dataset_was_renumbered(
    task, model, sample_copy, tmp_path
):
    workspace = tmp_path / "ws"
    run_id = _train(sample_copy, workspace, task, model, 64)
    before = {
        c["id"]: c["name"]
        for c in json.loads((sample_copy / "annotations" / "instances_train.json").read_text())["categories"]
    }
    # The dataset is renumbered after training: ids shifted and swapped, names kept.
    ids = sorted(before)
    new_id = {old: 100 + ids[len(ids) - 1 - k] for k, old in enumerate(ids)}
    for split in ("train", "val"):
        path = sample_copy / "annotations" / f"instances_{split}.json"
        doc = json.loads(path.read_text())
        for cat in doc["categories"]:
            cat["id"] = new_id[cat["id"]]
        for ann in doc["annotations"]:
            ann["category_id"] = new_id[ann["category_id"]]
        path.write_text(json.dumps(doc))
    said = []
    manifest = export_run(run_id, tmp_path / "x", formats="hf,onnx", workspace=str(workspace), say=said.append)
    names = {int(k): v for k, v in manifest["id2label"].items()}
    if task == "detection":  # the checkpoint holds its COCO ids: they stay
        assert {names[int(k)]: v for k, v in manifest["label_to_category_id"].items()} == {
            name: cid for cid, name in before.items()
        }
    else:  # names only: each name's id as the dataset has it now
        assert {names[int(k)]: v for k, v in manifest["label_to_category_id"].items()} == {
            name: new_id[cid] for cid, name in before.items()
        }
    assert {c["name"] for c in manifest["categories"]} == set(before.values())
    assert any("changed since training" in s for s in said)
    assert manifest["parity"]["passed"]
    import transformers

    hf = getattr(transformers, AUTO[task]).from_pretrained(str(tmp_path / "x"))
    assert {int(k): v for k, v in hf.config.coco_category_ids.items()} == {
        int(k): v for k, v in manifest["label_to_category_id"].items()
    }


def test_a_category_the_dataset_lost_is_refused_by_name(sample_copy, tmp_path):
    workspace = tmp_path / "ws"
    run_id = _train(sample_copy, workspace, "classification", "resnet-tiny", 32)
    for split in ("train", "val"):
        path = sample_copy / "annotations" / f"instances_{split}.json"
        doc = json.loads(path.read_text())
        lost = doc["categories"][0]["name"]
        doc["categories"][0]["name"] = "renamed"
        path.write_text(json.dumps(doc))
    with pytest.raises(ExportError, match=rf"instances_\w+\.json.*'{lost}' \(label 0\).*no longer in the dataset"):
        export_run(run_id, tmp_path / "x", workspace=str(workspace), say=lambda _: None)
    assert not (tmp_path / "x").exists()
