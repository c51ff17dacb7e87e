"""Shared fixtures. Tests never touch the network and draw Qt offscreen."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

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
