"""The chart panel: each plot draws its own curves, the loss at once and the others just after;
values under the cursor; grid, log scale and x axis switches; helper reads below the app's priority."""

import os

import numpy as np
import pytest

from app.training.charts import STAGGER_MS, ChartPanel


def _points(steps, with_validation=True):
    out = {"train/loss": [(s, 2.0 / s, 1_000 + s) for s in steps], "lr": [(s, 1e-3, 1_000 + s) for s in steps]}
    if with_validation:
        out["val/loss"] = [(steps[-1], 0.5, 1_000 + steps[-1])]
        out["epoch"] = [(steps[-1], 0.0, 1_000 + steps[-1])]
    return out


@pytest.fixture
def panel(qtbot):
    panel = ChartPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    return panel


def _curve_data(panel, plot, key, run_id="r1"):
    curve = panel.curves.get((run_id, plot, key))
    if curve is None:
        return None
    x, y = curve.getOriginalDataset()
    return None if x is None else (list(x), list(y))


def test_the_loss_draws_at_once_and_the_other_plots_in_later_turns(panel, qtbot):
    panel.add_run("r1", "first")
    panel.add_points("r1", _points(list(range(1, 11))))
    loss = _curve_data(panel, "loss", "train/loss")
    assert loss is not None and loss[0] == list(range(1, 11)) and loss[1][0] == pytest.approx(2.0)
    assert _curve_data(panel, "lr", "lr") is None  # not yet: its own turn comes next
    qtbot.waitUntil(lambda: _curve_data(panel, "lr", "lr") is not None, timeout=2000)
    qtbot.waitUntil(lambda: _curve_data(panel, "val", "val/loss") is not None, timeout=2000)
    assert _curve_data(panel, "val", "val/loss")[0] == [1.0]  # epoch 0 ends at step 10: x = 1 epoch
    # Points that arrive before a plot's turn are drawn together, none lost.
    panel.add_points("r1", _points([11, 12], with_validation=False))
    panel.add_points("r1", _points([13], with_validation=False))
    qtbot.wait(4 * STAGGER_MS + 50)
    assert _curve_data(panel, "lr", "lr")[0] == list(range(1, 14))
    assert _curve_data(panel, "loss", "train/loss")[0] == list(range(1, 14))


def test_each_plot_is_a_view_of_its_own_and_a_removed_run_leaves_every_plot(panel, qtbot):
    assert len({id(v) for v in panel.views.values()}) == 3
    assert {v.getPlotItem() for v in panel.views.values()} == set(panel.plots.values())
    for run_id in ("r1", "r2"):
        panel.add_run(run_id, run_id)
        panel.add_points(run_id, _points(list(range(1, 6))))
    qtbot.wait(4 * STAGGER_MS + 50)
    assert all(len(plot.listDataItems()) == 2 for plot in panel.plots.values())
    panel.remove_run("r1")
    qtbot.wait(4 * STAGGER_MS + 50)
    assert all(len(plot.listDataItems()) == 1 for plot in panel.plots.values())
    assert panel.run_ids() == ["r2"]


def test_values_under_the_cursor_grid_log_scale_and_x_axis(panel, qtbot):
    panel.add_run("r1", "first")
    panel.add_points("r1", _points(list(range(1, 101))))
    qtbot.wait(4 * STAGGER_MS + 50)
    plot = panel.plots["loss"]
    scene_pos = plot.vb.sceneBoundingRect().center()
    panel._mouse("loss", (scene_pos,))
    text = panel.cursor_label.text()
    x_under = plot.vb.mapSceneToView(scene_pos).x()
    i = int(np.clip(np.searchsorted(np.arange(1, 101), x_under), 0, 99))
    assert text.startswith("first train/loss: ") and f"{2.0 / (i + 1):.4g} @ {i + 1:.4g}" in text

    assert not plot.ctrl.xGridCheck.isChecked()  # off by default (the costly part of a repaint)
    panel.grid_box.setChecked(True)
    assert all(p.ctrl.xGridCheck.isChecked() and p.ctrl.yGridCheck.isChecked() for p in panel.plots.values())
    panel.set_log_scale(True)
    assert plot.ctrl.logYCheck.isChecked() and panel.plots["lr"].ctrl.logYCheck.isChecked()
    panel.axis_combo.setCurrentText("epoch")
    x, _ = _curve_data(panel, "loss", "train/loss")
    assert x[-1] == pytest.approx(1.0) and x[49] == pytest.approx(0.5)
    assert panel.plots["loss"].getAxis("bottom").labelText == "epoch"


def test_metric_reads_run_below_the_apps_priority():
    from app.training.reader_process import ReaderProcess
    from app.widgets.workers import BACKGROUND_NICENESS

    reader = ReaderProcess()
    try:
        niceness = reader._pool().submit(os.nice, 0).result(timeout=120)
    finally:
        reader.close()
    assert niceness == min(os.nice(0) + BACKGROUND_NICENESS, 19)


def test_a_short_axis_keeps_its_labels_apart_and_a_tall_one_is_as_pyqtgraph_ticks_it():
    import pyqtgraph as pg

    from app.training.charts import SparseAxis

    sparse, plain = SparseAxis("left"), pg.AxisItem("left")
    short = sparse.tickSpacing(0.0, 1.0, 30)
    assert 1.0 / short[0][0] <= 30 // SparseAxis.MIN_LABEL_PX  # pyqtgraph gives 0.2: five labels in 30 px
    assert plain.tickSpacing(0.0, 1.0, 30)[0][0] == pytest.approx(0.2)
    assert all(level[0] < short[0][0] for level in short[1:])
    assert sparse.tickSpacing(0.0, 1.0, 600) == plain.tickSpacing(0.0, 1.0, 600)
    assert sparse.tickSpacing(0.0, 8e-5, 40)[0][0] in (pytest.approx(5e-5), pytest.approx(1e-4))
