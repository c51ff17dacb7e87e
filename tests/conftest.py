"""Shared fixtures. Tests never touch the network and draw Qt offscreen."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

#: the repository's root (tests live in tests/<package>/...)
REPO_ROOT = Path(__file__).resolve().parents[1]

#: the home folder of the person running the tests, which the tests must leave alone
REAL_HOME = os.environ.get("HOME")
#: where a Ray token (or a Ray auth choice) from the person's own setup could come from
RAY_AUTH_VARIABLES = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE")


@pytest.fixture(scope="session", autouse=True)
def temporary_home(tmp_path_factory):
    """Every process the tests start gets a temporary HOME.

    Ray 2.60 writes ``~/.ray/auth_token`` for each local cluster started without
    ``RAY_AUTH_MODE`` (and a token there turns token authentication on for every later
    ``ray start`` on the machine); the tests must neither leave one in the person's home
    nor read theirs.
    """
    home = tmp_path_factory.mktemp("home")
    saved = {name: os.environ.get(name) for name in ("HOME", *RAY_AUTH_VARIABLES)}
    os.environ["HOME"] = str(home)
    for name in RAY_AUTH_VARIABLES:
        os.environ.pop(name, None)
    yield home
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> Path:
    """The generated sample dataset (official COCO layout), written once per session."""
    from engine.data.sample import write_sample_dataset

    return write_sample_dataset(tmp_path_factory.mktemp("sample") / "shapes")


@pytest.fixture
def sample_copy(sample_dataset, tmp_path) -> Path:
    """A private copy of the sample dataset that a test may break."""
    import shutil

    dst = tmp_path / "shapes"
    shutil.copytree(sample_dataset, dst)
    return dst


@pytest.fixture(scope="module")
def session(sample_dataset):
    """The sample dataset opened as the app opens it (JSON checks only), shared by a module's tests."""
    from app.dataset.session import open_dataset

    return open_dataset(sample_dataset, check_files=False)


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where GUI tests save the screenshots a person looks at (ignored by git)."""
    folder = Path(__file__).resolve().parent / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def browser(qtbot):
    """A shown dataset browser; its thumbnail loader is drained afterwards."""
    from app.dataset.browser import DatasetBrowser

    widget = DatasetBrowser()
    qtbot.addWidget(widget)
    widget.resize(1100, 750)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.loader.cancel_pending()
    widget.loader.wait_idle(5)


# ---------------------------------------------------------------------- helpers several test files share
def wait_until(qtbot, predicate, timeout_s: float, what: str) -> None:
    """Process Qt events until ``predicate()`` holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        qtbot.wait(100)


@pytest.fixture
def stop_at_close(monkeypatch):
    """Closing the Train tab with a run going asks in a modal dialog; these tests answer "stop"."""
    from app.training.train_tab import TrainTab

    monkeypatch.setattr(TrainTab, "ask_close_choice", lambda self: "stop")


#: categories of the tiny COCO folders below
TINY_CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}, {"id": 3, "name": "triangle"}]


def tiny_images(folder: Path, names: list[str]) -> list[dict]:
    """16x16 images written as ``names`` in ``folder``, and their COCO image records."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (16, 16), (40, 90, 160)).save(folder / name)
    return [{"id": i + 1, "file_name": n, "width": 16, "height": 16} for i, n in enumerate(names)]


def tiny_coco_doc(images: list[dict], labels: list[int], categories=TINY_CATEGORIES) -> dict:
    """A COCO document with one box of category ``labels[i]`` on image ``i``."""
    anns = [
        {"id": k + 1, "image_id": im["id"], "category_id": c, "bbox": [2, 2, 8, 8], "area": 64, "iscrowd": 0}
        for k, (im, c) in enumerate(zip(images, labels))
    ]
    return {"images": images, "annotations": anns, "categories": categories}


def write_json(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def tiny_coco_folder(root: Path, train: list[int], val: list[int] | None, categories=TINY_CATEGORIES) -> Path:
    """``annotations/instances_{train,val}.json`` with one image per label, images in train/ and val/."""
    names = [f"train_{i:03d}.png" for i in range(len(train))]
    write_json(
        root / "annotations" / "instances_train.json",
        tiny_coco_doc(tiny_images(root / "train", names), train, categories),
    )
    if val is not None:
        names = [f"val_{i:03d}.png" for i in range(len(val))]
        write_json(
            root / "annotations" / "instances_val.json",
            tiny_coco_doc(tiny_images(root / "val", names), val, categories),
        )
    return root


def write_cached_model(cache: Path, hub_id: str, with_weights: bool = True) -> Path:
    """A tiny classifier saved with save_pretrained where huggingface_hub's cache keeps ``hub_id``."""
    from engine.models.loading import load_model

    repo = cache / ("models--" + hub_id.replace("/", "--"))
    snapshot = repo / "snapshots" / ("0" * 40)
    model = load_model("resnet-tiny", "classification", num_labels=2)
    model.save_pretrained(snapshot)
    if not with_weights:
        (snapshot / "model.safetensors").unlink()
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    return snapshot


@pytest.fixture
def started(monkeypatch):
    """Train writes the real run config but starts no training process: the config paths, in order."""
    from app.training import train_tab
    from app.training.process_job import ProcessJob

    paths = []

    class NotStarted(ProcessJob):
        def __init__(self, *args, config_path=None, **kwargs):
            super().__init__(*args, config_path=config_path, **kwargs)
            paths.append(config_path)

        def start(self) -> None:
            pass

    monkeypatch.setattr(train_tab, "ProcessJob", NotStarted)
    monkeypatch.setattr(train_tab.TrainTab, "ask_close_choice", lambda self: "stop")
    return paths


def two_training_images(sample: Path, folder: Path) -> Path:
    """A copy of the sample dataset whose training file keeps only its first 2 images."""
    import shutil

    shutil.copytree(sample, folder)
    train_file = next((folder / "annotations").glob("*train*.json"))
    doc = json.loads(train_file.read_text())
    keep = {im["id"] for im in doc["images"][:2]}
    doc["images"] = [im for im in doc["images"] if im["id"] in keep]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in keep]
    train_file.write_text(json.dumps(doc))
    return folder
