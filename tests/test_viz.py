"""Dataset sample figures: visible ignore boxes, a legend, and a small embedded file."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tinylib import viz  # noqa: E402
from tinylib.eval import widerface as W  # noqa: E402


def _photo_like(seed: int, hw=(683, 1024)) -> np.ndarray:
    """Smooth colour blobs plus grain: compresses like a photo (noise alone would not)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(hw[0] // 32 + 1, hw[1] // 32 + 1, 3)).astype(np.float32)
    img = np.kron(coarse, np.ones((32, 32, 1)))[: hw[0], : hw[1]]
    img += rng.normal(0, 12, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _sample(seed: int, n_faces=60, n_ignore=20):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 900, size=(n_faces + n_ignore, 2))
    side = np.r_[rng.uniform(12, 60, n_faces), rng.uniform(3, 8, n_ignore)]  # ignore: tiny
    boxes = np.c_[xy, xy + side[:, None]].astype(np.float32)
    ignore = np.r_[np.zeros(n_faces, bool), np.ones(n_ignore, bool)]
    return _photo_like(seed), {"boxes": boxes, "ignore": ignore, "image_id": f"0--Parade/img_{seed}"}


def test_ignore_boxes_stand_out_from_faces():
    fig, ax = plt.subplots()
    counts = viz.draw_sample(ax, *_sample(0))
    assert counts == {"faces": 60, "ignore": 20}
    faces = [p for p in ax.patches if p.get_gid() == "face"]
    ignore = [p for p in ax.patches if p.get_gid() == "ignore"]
    fills = [p for p in ax.patches if p.get_gid() == "ignore-fill"]
    assert len(faces) == 60 and len(ignore) == len(fills) == 20
    face_rgb = {mcolors.to_rgb(p.get_edgecolor()) for p in faces}
    ignore_rgb = {mcolors.to_rgb(p.get_edgecolor()) for p in ignore} | {mcolors.to_rgb(p.get_facecolor()) for p in fills}
    assert len(face_rgb) == len(ignore_rgb) == 1 and face_rgb != ignore_rgb
    assert (0.0, 0.0, 0.0) not in ignore_rgb and (1.0, 0.0, 0.0) not in ignore_rgb  # not black, not red
    # thicker than the faces, and filled so that a box of a few pixels still shows
    assert min(p.get_linewidth() for p in ignore) > max(p.get_linewidth() for p in faces)
    assert all(p.get_fill() and p.get_alpha() >= 0.3 for p in fills)
    assert "60 faces, 20 ignore" in ax.get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="3 boxes but 2 ignore flags"):
        viz.draw_sample(plt.subplots()[1], np.zeros((5, 5, 3), np.uint8),
                        {"boxes": np.zeros((3, 4)), "ignore": [True, False]})
    plt.close("all")


def test_samples_figure_is_small_and_has_a_legend():
    samples = [_sample(s) for s in range(5)]
    fig = viz.samples_figure(samples, titles=["a", "b", "c", "d", "e"])
    assert len(fig.axes) == 3  # at most three panels
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == "face" and legend[1].startswith("ignore")
    img = viz.figure_image(fig)
    assert img.data[:2] == b"\xff\xd8" and len(img.data) < 250_000  # a JPEG, well under the old 1.4 MB
    assert not plt.get_fignums()  # closed: the notebook shows it once
    big = viz.figure_image(viz.samples_figure(samples), fmt="png")
    assert big.data[:4] == b"\x89PNG" and len(big.data) > len(img.data)
    with pytest.raises(ValueError, match="at least one"):
        viz.samples_figure([])


def test_training_history_lays_stages_end_to_end():
    import pandas as pd

    hist = pd.DataFrame({"epoch": [1, 2, 1, 2], "step": [10, 20, 15, 30],
                         "loss": [1.0, 0.5, 0.6, 0.4], "ap_hard": [None, 0.3, None, 0.4],
                         "stage": [1, 1, 2, 2]})
    axes = viz.training_history(hist)
    xs = axes[0].lines[0].get_xdata()
    assert list(xs) == [10, 20, 35, 50]  # stage 2 continues after stage 1's 20 steps
    assert list(axes[1].lines[0].get_xdata()) == [20, 50]
    restart = [ln for ln in axes[0].lines if ln.get_linestyle() == "--"]
    assert len(restart) == 1 and restart[0].get_xdata()[0] == 20
    assert hist["step"].tolist() == [10, 20, 15, 30]  # the caller's frame is not changed
    one = viz.training_history(hist[hist.stage == 1].drop(columns="stage"))
    assert not [ln for ln in one[0].lines if ln.get_linestyle() == "--"]
    plt.close("all")


def test_gan_figures_and_live_losses(monkeypatch):
    import IPython
    import IPython.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import torch

    from tinylib.gan import GANDetector

    m = GANDetector({"lr_size": 8, "generator": {"width": 8, "up_width": 8, "blocks": 1, "refine_width": 8,
                                                 "refine_up_width": 8},
                     "discriminator": {"trunk": "mnet025", "pretrained": False}})
    ax = viz.gan_architecture(m)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "G2 refinement" in texts and "fc_cls" in texts and "32x32 SR" in texts
    m2 = GANDetector({**m.config, "refine": False})
    assert "G2 refinement" not in " ".join(t.get_text() for t in viz.gan_architecture(m2).texts)
    fig = viz.sr_grid({"a": torch.zeros(5, 3, 8, 8), "b": torch.full((5, 3, 8, 8), 255.0)}, n=3)
    assert len(fig.axes) == 6 and fig.axes[0].get_ylabel() == "a"
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # outside a notebook: rows only
    live = viz.LiveLosses(every=2)
    for i in range(5):
        live({"step": i + 1, "d_adv": 0.1, "g_mse": 1.0 / (i + 1)})
    assert len(live.history) == 5 and live._handle is None
    shown = []  # inside one: one output, drawn every 2 steps, then updated in place

    class Handle:
        def update(self, fig):
            shown.append(("update", fig))

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda fig, display_id: shown.append(("show", fig)) or Handle())
    live = viz.LiveLosses(every=2)
    for i in range(5):
        live({"step": i + 1, "d_adv": 0.1, "g_mse": 1.0 / (i + 1)})
    assert [kind for kind, _ in shown] == ["show", "update"]
    axes = viz.gan_losses(pd.DataFrame(live.rows), smooth=1)
    assert [line.get_label() for line in axes[1].lines] == ["g_mse"]
    plt.close("all")


# ------------------------------------------------------------------ the one outcome legend
def _legend_entries(ax):
    leg = ax.get_legend()
    assert leg is not None, "an outcome drawing without the outcome legend"
    return [(t.get_text(), mcolors.to_rgb(h.get_color()))
            for t, h in zip(leg.get_texts(), leg.legend_handles)]


def test_outcome_colours_are_defined_once_and_distinct():
    from tinylib import widgets

    assert widgets.COLORS is viz.OUTCOME_COLOURS is viz.OUTCOME_COLORS
    assert set(viz.OUTCOME_KINDS) == set(viz.OUTCOME_COLOURS) == set(viz.OUTCOME_LABELS)
    rgb = [mcolors.to_rgb(viz.OUTCOME_COLOURS[k]) for k in viz.OUTCOME_KINDS]
    assert len(set(rgb)) == 4
    assert mcolors.to_rgb(viz.DETECTION_COLOUR) not in rgb  # unjudged boxes are no outcome


def test_label_detections_follows_the_wider_rules():
    gt = np.array([[10, 10, 20, 20], [50, 50, 20, 20], [80, 80, 20, 20]], float)
    dets = np.array([[11, 11, 20, 20, 0.8], [10, 10, 20, 20, 0.9], [200, 200, 5, 5, 0.7],
                     [80, 80, 20, 20, 0.95]])
    labels, found, kept = W.label_detections(dets, gt, [0, 1])
    assert labels.tolist() == ["fp", "tp", "fp", "ignored"]  # the higher score wins the face
    assert found.tolist() == [True, False, True] and kept.tolist() == [True, True, False]
    empty = W.label_detections(np.zeros((0, 5)), gt)
    assert empty[0].size == 0 and not empty[1].any() and empty[2].all()


def test_every_outcome_drawing_shows_the_same_legend():
    from tinylib import widgets
    from tinylib.hr.detect import RawDetections

    expect = [(viz.OUTCOME_LABELS[k], mcolors.to_rgb(viz.OUTCOME_COLOURS[k]))
              for k in viz.OUTCOME_KINDS]
    image = np.zeros((120, 120, 3), np.uint8)
    gt = np.array([[10, 10, 20, 20], [50, 50, 20, 20], [80, 80, 20, 20]], float)
    dets = np.array([[10, 10, 20, 20, 0.9], [200, 200, 5, 5, 0.7], [80, 80, 20, 20, 0.95]])
    drawings = []
    fig, ax = plt.subplots(layout="constrained")
    viz.draw_outcome(ax, image, viz.outcome(dets, gt, kept_idx=[0, 1]), gt)
    drawings.append((fig, ax))
    ev = W.SimpleEvalGT(boxes={"e/i": gt}, keep={s: {"e/i": np.array([0, 1])} for s in W.SETTINGS})
    st = widgets.explorer_state(dets, ev, "e/i", "hard", 0.0, 0.3)
    fig = widgets.render_figure(lambda f: widgets.draw_state(st, image, gt, [0, 1], f.subplots(1, 2)))
    drawings.append((fig, fig.axes[0]))
    raw = RawDetections(np.array([[10, 10, 30, 30], [60, 5, 70, 15]], np.float32),
                        np.array([0.9, 0.8], np.float32), np.array([0, 1]), np.ones(2), [1.0], [0, 1], [])
    fig = widgets.render_figure(lambda f: widgets.draw_hr_selection(
        f.add_subplot(), image, raw, gt=np.array([[10, 10, 30, 30], [90, 90, 110, 110]])))
    drawings.append((fig, fig.axes[0]))
    for fig, ax in drawings:
        assert _legend_entries(ax) == expect
        fig.canvas.draw()
        box = ax.get_legend().get_window_extent()
        assert box.y0 >= 0 and box.x0 >= 0 and box.x1 <= fig.bbox.width  # inside the picture
    # the HR explorer's drawing: missed faces yellow, found ones under a green box
    ax = drawings[2][1]
    assert "1 found, 1 false, 1 missed of 2 faces" in ax.get_title()
    plt.close("all")


def test_plain_detections_are_not_drawn_as_outcomes():
    from tinylib import widgets
    from tinylib.hr.detect import RawDetections

    fig, ax = plt.subplots()
    n = viz.draw_detections(ax, np.zeros((50, 50, 3), np.uint8), [[1, 1, 10, 10], [20, 20, 30, 30]],
                            [0.6, 0.9], title="my photo")
    assert n == 2 and ax.get_title() == "my photo: 2 detections (scores 0.60-0.90)"
    assert {mcolors.to_rgb(p.get_edgecolor()) for p in ax.patches} == {mcolors.to_rgb(viz.DETECTION_COLOUR)}
    assert ax.get_legend() is None
    raw = RawDetections(np.array([[10, 10, 30, 30]], np.float32), np.array([0.9], np.float32),
                        np.array([0]), np.ones(1), [1.0], [0], [])
    fig2 = widgets.render_figure(lambda f: widgets.draw_hr_selection(f.add_subplot(), np.zeros((50, 50, 3)), raw))
    assert fig2.axes[0].get_legend() is None  # no ground truth: nothing judged
    plt.close("all")


def test_recall_by_size_draws_each_half_and_stage():
    import pandas as pd

    from tinylib.compare import wider_subset as C

    rows = [{"half": h, "stage": st, "bin": b, "faces": n, "recall": r}
            for h in ("tuning", "test") for st in ("before NMS", "after NMS")
            for b, n, r in (("0-10 px", 10, 0.2 if st == "before NMS" else 0.1), ("10-20 px", 4, 0.5),
                            (">50 px", 0, float("nan")))]
    table = C.recall_table(pd.DataFrame(rows))
    assert list(table.index) == ["0-10 px", "10-20 px", ">50 px"]
    assert list(table.columns.get_level_values(0).unique()) == ["test", "tuning"]
    assert table.loc["0-10 px", ("test", "before NMS")] == 0.2
    ax = viz.recall_by_size(table)
    assert len(ax.lines) == 4
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "0-10 px\n10 faces"
    styles = {ln.get_label(): ln.get_linestyle() for ln in ax.lines}
    assert styles["before NMS, test half"] == "-" and styles["before NMS, tuning half"] == "--"
    plt.close("all")
