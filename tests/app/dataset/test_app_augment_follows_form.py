"""One source of truth for what trains (#16 items 3 and 4).

Opening the Augment tab must not change training: the tab follows the run form's task and
image size and shows the steps the recipe (``auto``) resolves to; only an edit there is an
override, which the Train tab says, with one click back to ``auto``. Train with the form's
defaults is never refused, and a banner goes away when its cause does.
"""

import time

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QThreadPool  # noqa: E402


def _wait(qtbot, predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        qtbot.wait(50)


def _recipe(config):
    from engine.recipes import resolve_recipe

    return resolve_recipe(config, verbose=False)


def _train(qtbot, tab, started):
    from engine.config import RunConfig

    before = len(started)
    qtbot.mouseClick(tab.train_button, Qt.LeftButton)
    assert len(started) == before + 1, f"Train was refused: {tab.banner.text()!r}"
    return RunConfig.load(started[-1])


def _panel_follows(panel, config):
    """The panel shows the steps the run resolves to, for both pipelines, and the run's size."""
    resolved = _recipe(config)
    return (
        panel.task == config.task.name
        and panel.size_spin.value() == resolved.data.image_size
        and panel.spec("train") == resolved.augmentation.train
        and panel.spec("val") == resolved.augmentation.val
        and not panel.is_busy()
    )


def test_open_augment_then_train_with_the_form_defaults(qtbot, sample_dataset, tmp_path, started):
    """The demo journey: open Augment, then Train with the defaults: accepted, the recipe decides."""
    from app.dataset.session import ImageRef
    from app.main_window import MainWindow
    from engine.config import AugmentationConfig

    window = MainWindow(tmp_path / "ws")
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    window.open_folder(sample_dataset)
    _wait(qtbot, lambda: window.session is not None, 60, "the dataset to open")
    window.set_current(ImageRef("train", 0))
    window.tabs.setCurrentWidget(window.augment_host)
    panel = window.augment
    _wait(qtbot, panel.is_ready, 60, "the augmentation library")
    window.tabs.setCurrentWidget(window.train_host)
    tab = window.train_tab
    assert tab.augmentation_source is panel

    # The form's defaults: classification, image size left to the recipe.
    config = _train(qtbot, tab, started)
    assert config.task.name == "classification" and config.data.image_size is None
    assert config.augmentation == AugmentationConfig()  # auto: nothing the Augment tab showed was sent
    assert tab.banner.isHidden() and window.banner.isHidden()
    form = tab._form_config()
    _wait(qtbot, lambda: _panel_follows(panel, form), 60, "the Augment tab to show the recipe")
    assert panel.overridden_splits() == () and panel.auto_button.isHidden()
    assert panel.recipe_text.startswith("auto → ")  # what auto resolves to, in words
    assert tab.auto_button.isHidden() and "auto" in tab.augmentation_line.text()

    # The form's size and task: the Augment tab follows, and the run gets the form's size.
    tab.form.set_value("data.image_size", 96)
    config = _train(qtbot, tab, started)
    assert config.data.image_size == 96 and config.augmentation == AugmentationConfig()
    _wait(qtbot, lambda: _panel_follows(panel, tab._form_config()), 60, "the Augment tab at 96 px")
    assert panel.spec("val") == [{"name": "Resize", "height": 96, "width": 96, "area_for_downscale": "image"}]
    tab.form.set_value("task.name", "detection")
    _wait(qtbot, lambda: _panel_follows(panel, tab._form_config()), 60, "the Augment tab on detection")
    assert panel.task_combo.currentText() == "detection"
    config = _train(qtbot, tab, started)
    assert config.task.name == "detection" and config.augmentation == AugmentationConfig()
    assert tab.banner.isHidden()

    # An edit in the Augment tab is an override: the run carries it and the Train tab says so.
    window.tabs.setCurrentWidget(window.augment_host)
    panel.set_split("train")
    panel.step_list.setCurrentRow(0)  # HorizontalFlip
    panel.remove_button.click()
    edited = panel.spec("train")
    assert panel.overridden_splits() == ("train",) and not panel.auto_button.isHidden()
    window.tabs.setCurrentWidget(window.train_host)
    assert not tab.auto_button.isHidden() and "overridden in the Augment tab" in tab.augmentation_line.text()
    config = _train(qtbot, tab, started)
    assert config.augmentation.train == edited and config.augmentation.val is None
    # Validation is not edited: it follows the recipe at the form's size, like training.
    assert _recipe(config).augmentation.val == [
        {"name": "LongestMaxSize", "max_size": 96},
        {
            "name": "PadIfNeeded",
            "min_height": 96,
            "min_width": 96,
            "border_mode": 0,
            "fill": 0,
            "fill_mask": 0,
            "position": "top_left",
        },
    ]

    # One click back to auto.
    qtbot.mouseClick(tab.auto_button, Qt.LeftButton)
    assert panel.overridden_splits() == () and tab.auto_button.isHidden()
    _wait(qtbot, lambda: _panel_follows(panel, tab._form_config()), 60, "the recipe back in the Augment tab")
    config = _train(qtbot, tab, started)
    assert config.augmentation == AugmentationConfig() and config.data.image_size == 96
    assert tab.banner.isHidden() and window.banner.isHidden()
    window.close()
    QThreadPool.globalInstance().waitForDone(30_000)


def test_a_loaded_config_with_its_own_steps_is_shown_as_an_override(qtbot, sample_dataset, tmp_path, started):
    """Steps from a loaded file are an override too (said under the form), and Back to auto drops them."""
    from app.training.train_tab import TrainTab
    from engine.config import AugmentationConfig, RunConfig

    path = RunConfig.from_dict(
        {
            "task": "classification",
            "data": {"path": str(sample_dataset), "image_size": 64},
            "augmentation": {"train": [{"name": "Resize", "height": 64, "width": 64}]},
        },
        "test",
    ).save(tmp_path / "mine.yaml")
    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    assert tab.auto_button.isHidden()
    tab.load_config(path)
    assert not tab.auto_button.isHidden() and "loaded config" in tab.augmentation_line.text()
    assert _train(qtbot, tab, started).augmentation.train == [{"name": "Resize", "height": 64, "width": 64}]
    tab.auto_button.click()
    assert tab.auto_button.isHidden()
    config = _train(qtbot, tab, started)
    assert config.augmentation == AugmentationConfig() and config.data.image_size == 64


def test_a_banner_goes_when_its_cause_does(qtbot, monkeypatch, sample_dataset, tmp_path, started):
    from app.training import lr_suggest
    from app.training.train_tab import TrainTab

    tab = TrainTab(tmp_path / "ws")
    qtbot.addWidget(tab)
    tab.set_dataset(sample_dataset)
    tab.form.set_value("optim.lr", 0.0)  # invalid: Train is refused with a banner
    assert tab.train() is None and not tab.banner.isHidden()
    tab.form.set_value("optim.lr", 1e-3)  # fixed: the banner goes
    assert tab.banner.isHidden()

    monkeypatch.setattr(
        lr_suggest, "run_lr_find", lambda *a, **k: (_ for _ in ()).throw(lr_suggest.LrFindError("no minimum"))
    )
    assert tab.suggest_lr()
    _wait(qtbot, lambda: not tab.banner.isHidden(), 10, "the finder's error")
    assert "no minimum" in tab.banner.text()
    _train(qtbot, tab, started)  # an unrelated success leaves the finder's message up...
    assert "no minimum" in tab.banner.text()
    monkeypatch.setattr(lr_suggest, "run_lr_find", lambda *a, **k: 0.002)
    assert tab.suggest_lr()  # ...a new search takes it down
    assert tab.banner.isHidden()
    _wait(qtbot, lambda: not tab.lr_suggester.running, 10, "the finder to end")
    tab.show_error("something for existing callers")  # show_error still works, without a cause
    assert tab.banner.text() == "something for existing callers" and not tab.banner.isHidden()


def test_leaving_a_parameter_field_untouched_is_no_override(qtbot):
    """Focus leaving a field that shows a default (RandomResizedCrop's ratio) wrote the default into the
    step: the run's recipe was silently overridden."""
    from app.dataset.augment_panel import AugmentationPanel

    panel = AugmentationPanel(task="classification")
    qtbot.addWidget(panel)
    panel.load_config(_config(task="classification", image_size=96))
    assert panel.overridden_splits() == ()
    panel.step_list.setCurrentRow(0)
    assert panel.spec()[0]["name"] == "RandomResizedCrop" and "ratio" not in panel.spec()[0]
    for name in ("ratio", "size"):  # a default, and a value the step holds
        panel.param_editors[name].editingFinished.emit()
    assert panel.overridden_splits() == () and "ratio" not in panel.spec()[0]
    panel.param_editors["ratio"].setText("[0.5, 2.0]")  # a real edit still counts
    panel.param_editors["ratio"].editingFinished.emit()
    assert panel.overridden_splits() == ("train",) and panel.spec()[0]["ratio"] == [0.5, 2.0]


def _config(task, image_size):
    from engine.config import RunConfig

    return RunConfig.from_dict(
        {"task": task, "data": {"image_size": image_size}, "augmentation": {"strength": "medium"}}, "test"
    )


def test_edits_are_not_slipped_into_a_multitask_run(qtbot):
    from app.dataset.augment_panel import AugmentationPanel
    from engine.config import RunConfig

    panel = AugmentationPanel(task="detection")
    qtbot.addWidget(panel)
    panel.set_spec([{"name": "HorizontalFlip", "p": 0.5}])
    multitask = RunConfig.from_dict({"task": {"name": "multitask", "tasks": ["detection", "segmentation"]}}, "t")
    with pytest.raises(ValueError, match="multitask run"):
        panel.apply_to_config(multitask)
    panel.use_recipe()
    assert panel.apply_to_config(multitask) == multitask
