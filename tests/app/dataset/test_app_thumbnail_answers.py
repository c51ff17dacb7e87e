"""The browser's model uses a thumbnail answer only for the row that still shows what was asked for:
an answer for an older list, another dataset or another thumbnail size is ignored."""

import shutil
import threading

import pytest

from app.dataset.session import ImageRef, open_dataset
from app.dataset.thumbnail_model import UNREADABLE_ROLE, ThumbnailModel
from app.dataset.thumbnails import ThumbnailCache, ThumbnailLoader
from engine.data.images import ImageReadError


@pytest.fixture
def held_model(qtbot, sample_dataset):
    """A model whose loader fails every decode, each only once the test releases it."""
    release = threading.Event()

    def failing_decode(path, size):
        release.wait(10)
        raise ImageReadError(path, "cannot be decoded")

    loader = ThumbnailLoader(ThumbnailCache(), max_threads=1, decode=failing_decode)
    model = ThumbnailModel(loader)
    model.set_session(open_dataset(sample_dataset, check_files=False))
    first, second = ImageRef("train", 0), ImageRef("train", 1)
    model.set_refs([first, second])
    model.decoration(0)  # asks for the first image's thumbnail; the worker holds it
    qtbot.waitUntil(lambda: loader.pending_count() == 0, timeout=5000)
    yield model, release, first, second
    release.set()
    loader.wait_idle(5)


def _answered(model, release):
    release.set()
    assert model.loader.wait_idle(5)


def test_an_answer_for_an_older_list_is_ignored(held_model):
    model, release, first, second = held_model
    model.set_refs([second, first])  # row 0 shows another image now
    _answered(model, release)
    assert model.index(0).data(UNREADABLE_ROLE) is None
    assert model.index(1).data(UNREADABLE_ROLE) is None  # nor is it put on the row its image moved to


def test_an_answer_for_another_thumbnail_size_is_ignored(held_model):
    model, release, first, _ = held_model
    model.set_thumbnail_size(64)  # same row, same image, another size
    _answered(model, release)
    assert model.index(0).data(UNREADABLE_ROLE) is None


def test_an_answer_for_another_dataset_is_ignored(held_model, tmp_path, sample_dataset):
    model, release, first, second = held_model
    other = tmp_path / "other"
    shutil.copytree(sample_dataset, other)
    model.set_session(open_dataset(other, check_files=False))
    model.set_refs([first, second])  # the same refs, naming another dataset's files
    _answered(model, release)
    assert model.index(0).data(UNREADABLE_ROLE) is None


def test_an_answer_for_the_row_as_it_is_arrives(held_model):
    model, release, _, _ = held_model
    _answered(model, release)
    assert "cannot be decoded" in model.index(0).data(UNREADABLE_ROLE)
