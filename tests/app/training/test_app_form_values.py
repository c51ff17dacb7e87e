"""The run form keeps what the user typed, says which weights a run starts from, and remembers itself.

Issue #16 items 5, 6, 7 and 13 (the form half): a learning rate of -0.5, 0 or "abc" became 1e-12,
an image size of 0 or 10 became "(empty)", size 400 for rt-detr-v2 was accepted, random weights were
never mentioned, model names were cut off in the picker, and the form forgot everything on restart.
"""

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache of the test's own (the form looks there for pretrained checkpoints)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def tab(qtbot, tmp_path, sample_dataset, monkeypatch):
    from app.training.train_tab import TrainTab

    monkeypatch.setattr(TrainTab, "ask_close_choice", lambda self: "stop")
    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    tab.set_dataset(sample_dataset)
    return tab


def _type(qtbot, form, path, text):
    editor = form.editors[path]
    editor.selectAll()
    editor.del_()
    qtbot.keyClicks(editor, text)


@pytest.mark.parametrize(
    ("typed", "says"), [("-0.5", "greater than 0 (got -0.5)"), ("0", "greater than 0 (got 0)"), ("abc", "valid number")]
)
def test_a_bad_learning_rate_stays_as_typed_with_the_error_at_the_field_and_train_disabled(qtbot, tab, typed, says):
    assert tab.train_button.isEnabled()
    _type(qtbot, tab.form, "optim.lr", typed)
    assert tab.form.editors["optim.lr"].text() == typed  # not 1e-12
    error = tab.form.errors["optim.lr"]
    assert not error.isHidden() and says in error.text()
    assert not tab.train_button.isEnabled() and tab.form.config() is None
    _type(qtbot, tab.form, "optim.lr", "0.001")
    assert error.isHidden() and tab.train_button.isEnabled()
    assert tab.form.config().optim.lr == 0.001


@pytest.mark.parametrize("typed", ["0", "10"])
def test_a_too_small_image_size_stays_as_typed(qtbot, tab, typed):
    _type(qtbot, tab.form, "data.image_size", typed)
    assert tab.form.editors["data.image_size"].text() == typed  # not "(empty)"
    assert "greater than or equal to 32" in tab.form.errors["data.image_size"].text()
    assert not tab.train_button.isEnabled()


def test_an_emptied_number_field_is_an_error_not_a_silent_default(qtbot, tab):
    _type(qtbot, tab.form, "optim.batch_size", "")
    assert tab.form.errors["optim.batch_size"].text() == "required: type a number"
    assert not tab.train_button.isEnabled()


def test_loader_workers_0_is_written_as_0(qtbot, tab):
    _type(qtbot, tab.form, "data.num_workers", "0")
    assert tab.form.editors["data.num_workers"].text() == "0"
    assert tab.form.config().data.num_workers == 0 and tab.train_button.isEnabled()
    _type(qtbot, tab.form, "data.num_workers", "-1")
    assert "greater than or equal to 0" in tab.form.errors["data.num_workers"].text()


def test_size_400_for_rt_detr_v2_is_refused_at_the_field_with_the_nearest_sizes(qtbot, tab):
    tab.form.set_value("task.name", "detection")
    assert tab.train_button.isEnabled()
    _type(qtbot, tab.form, "data.image_size", "400")
    error = tab.form.errors["data.image_size"]
    assert not error.isHidden() and "multiple of 32" in error.text() and "384 or 416" in error.text()
    assert not tab.train_button.isEnabled()
    _type(qtbot, tab.form, "data.image_size", "416")
    assert error.isHidden() and tab.train_button.isEnabled()


# ---------------------------------------------------------------------- which weights
def test_the_weights_note_says_random_weights_for_an_offline_preset(qtbot, tab):
    form = tab.form
    form.set_value("task.name", "detection")
    note = form.weights_note
    assert not note.isHidden()
    assert note.text().startswith("Starts from the task default, random weights: rt-detr-v2-tiny is an offline preset")
    box = form.editors["model.pretrained"]
    assert not box.isEnabled() and not box.isChecked()  # a preset has no trained weights to tick
    form.set_value("model.checkpoint", "detr-tiny")
    assert note.text().startswith("Starts from random weights: detr-tiny is an offline preset")


def test_a_checkpoint_in_the_local_cache_is_preferred_and_said_to_be_pretrained(qtbot, tmp_path, _offline_cache):
    from app.training.model_choices import model_choices
    from app.training.run_form import RunForm
    from tests.conftest import write_cached_model as _write_cached_model

    _write_cached_model(_offline_cache, "lightbox-test/tiny-resnet")
    form = RunForm()
    qtbot.addWidget(form)
    choices = model_choices("classification")
    assert [c.name for c in choices][:2] == ["lightbox-test/tiny-resnet", "resnet-18"]
    form.set_model_choices(choices)  # what the Train tab does with its background scan
    assert form.model.values["model.checkpoint"] == "lightbox-test/tiny-resnet"
    assert form.weights_note.text().startswith(
        "Starts from pretrained weights of lightbox-test/tiny-resnet from the local Hugging Face cache"
    )
    box = form.editors["model.pretrained"]
    assert box.isEnabled() and box.isChecked()
    assert form.config().model.checkpoint == "lightbox-test/tiny-resnet"
    box.setChecked(False)
    assert "random weights in the architecture of lightbox-test/tiny-resnet" in form.weights_note.text()
    # The user's own pick is kept when the choices come again (a task switch, a rescan).
    form.set_value("model.checkpoint", "resnet-tiny")
    form.set_model_choices(choices)
    assert form.model.values["model.checkpoint"] == "resnet-tiny"


def test_without_a_cached_checkpoint_the_offline_preset_stays_with_its_note(qtbot):
    from app.training.model_choices import model_choices
    from app.training.run_form import RunForm

    form = RunForm()
    qtbot.addWidget(form)
    form.set_model_choices(model_choices("classification"))
    assert form.model.values["model.checkpoint"] is None and form.config().model.checkpoint == "resnet-18"
    assert "random weights: resnet-18 is an offline preset" in form.weights_note.text()


def test_model_names_in_the_picker_are_whole(qtbot):
    from app.training.model_choices import model_choices
    from app.training.run_form import RunForm

    form = RunForm()
    qtbot.addWidget(form)
    form.resize(380, 700)  # the Train tab's form column
    form.show()
    form.set_model_choices(model_choices("detection"))
    combo = form.editors["model.checkpoint"].combo
    longest = max((combo.itemText(i) for i in range(combo.count())), key=combo.fontMetrics().horizontalAdvance)
    assert longest == "conditional-detr-resnet-50"
    assert combo.view().textElideMode() == Qt.TextElideMode.ElideNone
    assert combo.view().minimumWidth() >= combo.fontMetrics().horizontalAdvance(longest)
    assert combo.lineEdit().width() >= combo.fontMetrics().horizontalAdvance(longest)


# ---------------------------------------------------------------------- remembered per dataset
def test_the_form_is_remembered_per_dataset(qtbot, tmp_path):
    from app.training.form_memory import FormMemory
    from app.training.run_form import RunForm

    memory = FormMemory.in_workspace(tmp_path / "ws")
    assert memory.recall(tmp_path / "shapes") is None
    form = RunForm()
    qtbot.addWidget(form)
    form.set_value("data.path", str(tmp_path / "shapes"))
    form.set_value("task.name", "detection")
    form.set_value("data.image_size", 320)
    form.set_value("optim.lr", 0.0005)
    memory.remember(tmp_path / "shapes", form.remembered_values())
    memory.remember(tmp_path / "other", {"task.name": "segmentation"})

    again = RunForm()  # the next start: classification by default
    qtbot.addWidget(again)
    assert again.model.values["task.name"] == "classification"
    again.restore_values(FormMemory.in_workspace(tmp_path / "ws").recall(tmp_path / "shapes"))
    config = again.config()
    assert (config.task.name, config.data.image_size, config.optim.lr) == ("detection", 320, 0.0005)
    assert config.data.path == str(tmp_path / "shapes")
    assert again.editors["data.image_size"].text() == "320" and again.editors["optim.lr"].text() == "0.0005"
    assert memory.recall(tmp_path / "other")["task.name"] == "segmentation"


def test_an_unreadable_memory_file_is_set_aside_not_lost(tmp_path):
    from app.training.form_memory import FormMemory

    memory = FormMemory.in_workspace(tmp_path)
    memory.file.write_text("{not json")
    assert memory.recall(tmp_path / "shapes") is None
    assert (tmp_path / "form_memory.json.bad").read_text() == "{not json"
    memory.remember(tmp_path / "shapes", {"task.name": "detection", "data.path": "ignored"})
    assert memory.recall(tmp_path / "shapes") == {"task.name": "detection", "data.path": str(tmp_path / "shapes")}


def test_the_size_error_shows_even_while_another_field_is_wrong(qtbot, tab):
    """Seen through Xvfb: with lr "abc" the config never reached its size check, so 400 looked fine."""
    tab.form.set_value("task.name", "detection")
    _type(qtbot, tab.form, "optim.lr", "abc")
    _type(qtbot, tab.form, "data.image_size", "400")
    assert "384 or 416" in tab.form.errors["data.image_size"].text()
    assert "valid number" in tab.form.errors["optim.lr"].text()
