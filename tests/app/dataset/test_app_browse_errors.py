"""Browse over a run's evaluation: sort any selection worst first, show a run's list in its own order
(the dataset's filters cleared so all of it shows), and forget the run when another dataset opens."""

from __future__ import annotations

import pytest

from app.dataset.browser import WORST_FIRST, DatasetBrowser
from app.dataset.session import ImageRef

pytest.importorskip("pytestqt")


@pytest.fixture
def browser(qtbot, session):
    widget = DatasetBrowser()
    qtbot.addWidget(widget)
    widget.set_session(session)
    return widget


def test_worst_first_sorts_by_the_runs_error_and_unevaluated_images_come_last(browser, session):
    val = [ImageRef("val", row) for row in range(session.index("val").num_images)]
    errors = {ref: (7 * k % 11) / 11 for k, ref in enumerate(val)}
    assert browser.sort_combo.findText(WORST_FIRST) < 0  # no run, no such sort
    browser.set_run_filters("run-a", {"has misses": val[3:6]}, errors)
    browser.sort_combo.setCurrentText(WORST_FIRST)
    refs = browser.current_refs()
    assert refs[: len(val)] == sorted(val, key=lambda r: -errors[r])
    assert all(ref.split == "train" for ref in refs[len(val) :])
    browser.clear_run_filters()
    assert browser.sort_combo.findText(WORST_FIRST) < 0 and browser.sort_combo.currentText() == "file order"


def test_a_run_list_keeps_its_order_and_clears_the_datasets_filters(browser, session):
    wanted = [ImageRef("val", 5), ImageRef("val", 1), ImageRef("val", 9)]
    browser.split_combo.setCurrentText("train")  # would hide them
    browser.search_edit.setText("train_")
    browser.show_run_list("true circle, predicted square", wanted)
    assert browser.current_refs() == wanted and browser.current_ref() == wanted[0]
    assert (
        browser.run_combo.currentText() == "true circle, predicted square"
        and "predicted square" in browser.status.text()
    )
    browser.run_combo.setCurrentIndex(0)  # all images again
    assert len(browser.current_refs()) == session.num_images


def test_another_dataset_forgets_the_run(browser, session):
    browser.set_run_filters("run-a", {"misclassified": [ImageRef("val", 0)]}, {ImageRef("val", 0): 1.0})
    assert browser.run_combo.isVisibleTo(browser)
    browser.set_session(None)
    assert not browser.run_lists and not browser.run_combo.isVisibleTo(browser)


def test_a_missed_box_shows_while_the_threshold_is_above_the_score_that_found_it(session):
    from app.dataset.predictions import Prediction
    from app.dataset.viewer_state import ViewerState

    ref = ImageRef("val", 0)
    found = [
        Prediction("circle", 0.9, 1, (0, 0, 5, 5), outcome="tp"),
        Prediction("circle", 0.7, 1, (9, 9, 5, 5), outcome="fp", reason="background"),
        Prediction("circle", 0.9, 1, (0, 0, 5, 5), outcome="fn"),  # the box the 0.9 found
        Prediction("square", float("-inf"), 2, (20, 20, 5, 5), outcome="fn"),  # found by none
    ]
    state = ViewerState()
    state.show(session, ref)
    state.set_predictions(session, {ref: found}, "evaluation of run-a")
    state.set_min_score(0.5)
    assert not state.is_prediction_shown("miss_box", "circle", 0.9) and state.is_prediction_shown(
        "miss_box", "square", float("-inf")
    )
    assert state.predictions_text() == "2 of 2 predictions with score ≥ 0.50: 1 TP, 1 FP, 1 missed"
    state.set_min_score(0.95)
    assert state.is_prediction_shown("miss_box", "circle", 0.9)
    assert state.predictions_text() == "0 of 2 predictions with score ≥ 0.95: 0 TP, 0 FP, 2 missed"
