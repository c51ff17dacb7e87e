"""Validation losses and scores on axes of their own (a loss of 10 does not flatten an
mAP of 0.02), and legends that never cover a curve."""

import pytest

from app.training.chart_data import is_loss
from app.training.charts import STAGGER_MS, ChartPanel


def _detection_points(epochs, run_scale=1.0):
    out = {"train/loss": [], "val/loss": [], "val/map": [], "val/map_50": [], "epoch": [], "lr": []}
    for epoch in range(epochs):
        for step in range(epoch * 5 + 1, epoch * 5 + 6):
            out["train/loss"].append((step, 10.0 * run_scale / step**0.2, 1_000 + step))
            out["lr"].append((step, 1e-4, 1_000 + step))
        end = epoch * 5 + 5
        out["val/loss"].append((end, 9.0 * run_scale - epoch, 1_000 + end))
        out["val/map"].append((end, 0.005 + 0.01 * epoch, 1_000 + end))
        out["val/map_50"].append((end, 0.02 + 0.02 * epoch, 1_000 + end))
        out["epoch"].append((end, float(epoch), 1_000 + end))
    return out


@pytest.fixture
def panel(qtbot):
    panel = ChartPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_losses_and_scores_are_told_apart_by_name():
    assert is_loss("val/loss") and is_loss("val/loss_detection") and is_loss("train/loss")
    assert not any(is_loss(k) for k in ("val/map", "val/map_50", "val/accuracy", "val/f1_macro", "val/miou"))


def test_scores_have_an_axis_of_their_own_that_spans_them(panel, qtbot):
    panel.add_run("r1", "detr")
    panel.add_points("r1", _detection_points(4))
    qtbot.wait(4 * STAGGER_MS + 100)
    plot = panel.plots["val"]
    loss_curve, map_curve = panel.curves[("r1", "val", "val/loss")], panel.curves[("r1", "val", "val/map")]
    assert loss_curve in plot.listDataItems() and map_curve not in plot.listDataItems()
    assert map_curve.getViewBox() is panel.score_box and loss_curve.getViewBox() is plot.vb
    assert plot.getAxis("right").isVisible() and plot.getAxis("right").linkedView() is panel.score_box
    assert plot.getAxis("right").labelText == "score" and plot.getAxis("left").labelText == "loss"
    assert plot.getAxis("right").labelString().find("x0.0") == -1  # scores read as they are
    # Each axis spans its own kind: the mAP (0.005 .. 0.035) fills its axis instead of lying on 0.
    low, high = panel.score_box.viewRange()[1]
    assert low > -0.01 and high < 0.2 and high - low < 0.2
    loss_low, loss_high = plot.vb.viewRange()[1]
    assert loss_low > 4 and loss_high < 11
    # Both views cover the same x (epochs) over the same pixels.
    assert panel.score_box.viewRange()[0] == pytest.approx(plot.vb.viewRange()[0])
    over, under = panel.score_box.sceneBoundingRect(), plot.vb.sceneBoundingRect()
    assert [over.x(), over.y(), over.width(), over.height()] == pytest.approx(
        [under.x(), under.y(), under.width(), under.height()], abs=1.0
    )
    # A removed run leaves the score axis too, and the legend entries no other run needs.
    panel.remove_run("r1")
    assert not panel.score_box.addedItems and not plot.listDataItems() and not plot.legend.items


def test_legends_sit_outside_every_plot_area(panel, qtbot):
    for k, name in enumerate(("rt-detr-v2-tiny-0101-1200", "rt-detr-v2-tiny-0101-1300", "resnet-tiny-0102")):
        panel.add_run(name, name)
        panel.add_points(name, _detection_points(3, run_scale=1.0 + k))
    qtbot.wait(4 * STAGGER_MS + 200)
    assert panel.plots["lr"].legend is None  # its curves have the training loss's colours
    for name in ("loss", "val"):
        plot = panel.plots[name]
        legend = plot.legend
        assert legend.items, name
        area = plot.vb.sceneBoundingRect()
        box = legend.sceneBoundingRect()
        assert box.height() > 0 and not box.intersects(area), (name, box, area)
        assert box.top() >= plot.getAxis("bottom").sceneBoundingRect().top(), name  # under the axis
        # Its entries are laid out in as many columns as the view's width holds, and no wider.
        view = panel.views[name]
        assert box.right() <= view.width() and legend.columnCount > 1, name
        assert plot.sceneBoundingRect().right() <= view.width() + 1, name
    # Runs are named once, by colour, in the loss legend; the validation legend names each metric
    # once, by line style (3 runs x 3 metrics made 9 entries, a legend taller than its plot).
    assert [label.text for _sample, label in panel.plots["loss"].legend.items] == [
        "rt-detr-v2-tiny-0101-1200",
        "rt-detr-v2-tiny-0101-1300",
        "resnet-tiny-0102",
    ]
    assert [label.text for _sample, label in panel.plots["val"].legend.items] == [
        "loss",
        "map (right axis)",
        "map_50 (right axis)",
    ]
    styles = {key[2]: curve.opts["pen"].style() for key, curve in panel.curves.items() if key[1] == "val"}
    assert len(set(styles.values())) == 3


def test_losses_below_one_read_as_they_are(panel, qtbot):
    """A validation loss of 0.4-0.9 was labelled "loss (x0.001)" with ticks 400-900."""
    points = _detection_points(4, run_scale=0.1)
    points["train/loss"] = [(s, v / 20, t) for s, v, t in points["train/loss"]]
    points["val/loss"] = [(s, 0.9 - 0.1 * i, t) for i, (s, _, t) in enumerate(points["val/loss"])]
    panel.add_run("r1", "detr")
    panel.add_points("r1", points)
    qtbot.wait(4 * STAGGER_MS + 100)
    for name in ("loss", "val"):
        assert "x0.0" not in panel.plots[name].getAxis("left").labelString(), name
