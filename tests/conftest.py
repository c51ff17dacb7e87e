"""Shared fixtures. Tests never touch the network and draw Qt offscreen."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


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
