"""An ipywidgets detection explorer: score-threshold and NMS-IoU sliders redraw the
detections of an image and the point they give on its precision/recall curve.

Everything that computes or draws is a pure function (:func:`explorer_state`,
:func:`draw_state`), testable without a browser; :func:`explorer` only wires sliders to
them. Detections come from a cache (``(N, 5)`` ``x y w h score``, before NMS), so moving a
slider never re-runs a detector.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .boxes import box_convert
from .data.images import draw_boxes
from .eval import widerface as W

__all__ = ["apply_nms", "classify", "ExplorerState", "explorer_state", "draw_state", "explorer",
           "render_jpeg", "draw_hr_selection", "hr_explorer"]

COLORS = {"tp": "lime", "fp": "red", "ignored": "orange", "gt": "deepskyblue", "gt_ignored": "grey"}


def apply_nms(dets: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS on ``(N, 5)`` xywh+score detections; ``iou >= 1`` keeps everything."""
    d = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    if iou >= 1 or len(d) < 2:
        return d[np.argsort(-d[:, 4], kind="stable")]
    import torch  # heavy import, only when NMS actually runs
    from torchvision.ops import nms

    xyxy = box_convert(d[:, :4], "xywh", "xyxy")
    keep = nms(torch.as_tensor(xyxy), torch.as_tensor(d[:, 4]), float(iou)).numpy()
    return d[keep]


def classify(dets: np.ndarray, gt_xywh: np.ndarray, kept: np.ndarray, plus_one: bool = True):
    """Label each detection ``"tp"``, ``"fp"`` or ``"ignored"`` with the WIDER rules
    (best face by IoU; an ignored face makes it ignored; a second hit on a face is a FP),
    taking detections in descending score order."""
    d = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    hit = W.match_image(d, np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4), plus_one=plus_one)
    kept_mask = np.zeros(len(gt_xywh), dtype=bool)
    kept_mask[np.asarray(kept, dtype=np.int64)] = True
    labels = np.full(len(d), "fp", dtype=object)
    seen = set()
    for i in np.argsort(-d[:, 4], kind="stable"):
        h = hit[i]
        if h < 0:
            continue
        if not kept_mask[h]:
            labels[i] = "ignored"
        elif h not in seen:
            labels[i] = "tp"
            seen.add(h)
    return labels


@dataclass
class ExplorerState:
    dets: np.ndarray  # after NMS and threshold
    labels: np.ndarray
    precision: np.ndarray  # curve of the NMS'd detections (all thresholds)
    recall: np.ndarray
    point: tuple[float, float]  # (precision, recall) at the score threshold
    ap: float
    score_thr: float
    nms_iou: float


def explorer_state(raw_dets, gt, key: str, setting: str = "hard", score_thr: float = 0.0,
                   nms_iou: float = 0.3) -> ExplorerState:
    """Everything the explorer shows for one slider position (pure; no drawing)."""
    d = apply_nms(raw_dets, nms_iou)
    res = W.evaluate({key: d}, gt, settings=(setting,), subset=[key]) if len(d) else None
    point = W.operating_point({key: d}, gt, score_thr, setting, subset=[key]) if len(d) else (
        float("nan"), 0.0)
    shown = d[d[:, 4] >= score_thr]
    labels = classify(shown, gt.boxes[key], gt.keep[setting][key])
    if res is None:
        prec, rec, ap = np.zeros(0), np.zeros(0), 0.0
    else:
        prec, rec, ap = res.precision[setting], res.recall[setting], res.ap[setting]
    return ExplorerState(shown, labels, prec, rec, point, ap, float(score_thr), float(nms_iou))


def draw_state(state: ExplorerState, image, gt_xywh, kept, axes=None, published=None):
    """Draw the image with faces and labelled detections (left) and the PR curve with the
    current point (right). ``published``: optional ``{label: (precision, recall)}``."""
    import matplotlib.pyplot as plt  # matplotlib only when drawing (heavy import)
    from matplotlib.patches import Rectangle

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [1.6, 1]})
    ax, axp = axes
    ax.clear()
    axp.clear()
    if image is not None:
        ax.imshow(image)
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    kept_mask = np.zeros(len(g), dtype=bool)
    kept_mask[np.asarray(kept, dtype=np.int64)] = True
    for (x, y, w, h), k in zip(g, kept_mask):
        ax.add_patch(Rectangle((x, y), w, h, fill=False, lw=0.6, ls="-" if k else ":",
                               edgecolor=COLORS["gt"] if k else COLORS["gt_ignored"]))
    for (x, y, w, h, _s), lab in zip(state.dets, state.labels):
        ax.add_patch(Rectangle((x, y), w, h, fill=False, lw=1.2, edgecolor=COLORS[lab]))
    n = {k: int((state.labels == k).sum()) for k in ("tp", "fp", "ignored")}
    ax.set_title(f"score >= {state.score_thr:.2f}, NMS IoU {state.nms_iou:.2f}: "
                 f"{n['tp']} TP, {n['fp']} FP, {n['ignored']} ignored", fontsize=9)
    ax.set_axis_off()
    for label, (p, r) in (published or {}).items():
        axp.plot(r, p, lw=1, alpha=0.6, label=label)
    if state.recall.size:
        axp.plot(state.recall, state.precision, color="k", lw=1.5, label=f"this image (AP {state.ap:.3f})")
    p, r = state.point
    if np.isfinite(p):
        axp.plot([r], [p], "o", color="red", ms=8, label=f"threshold point P={p:.2f} R={r:.2f}")
    axp.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    axp.legend(fontsize=7, loc="lower left")
    axp.grid(alpha=0.3)
    return axes


def render_jpeg(draw, figsize=(11, 4.5), dpi: int = 80, **subplots) -> bytes:
    """Draw with ``draw(fig)`` on a fresh (pyplot-free) Figure and return JPEG bytes.

    The explorers show their drawings as an ``ipywidgets.Image``: a figure displayed inside
    an ``Output`` widget can stall headless execution (nbclient waiting for widget output
    messages), and nothing is left for pyplot to show twice."""
    from matplotlib.figure import Figure  # matplotlib only when drawing (heavy import)

    fig = Figure(figsize=figsize, dpi=dpi)
    draw(fig)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=dpi)
    return buf.getvalue()


def explorer(image, raw_dets, gt, key: str, setting: str = "hard", published=None):
    """The interactive explorer (an ``ipywidgets`` box). Sliders: score threshold over the
    range of the cached scores, NMS IoU in [0.1, 1] (1 = no NMS)."""
    import ipywidgets as widgets  # UI only: inference and the pure functions never import it

    d = np.asarray(raw_dets, dtype=np.float64).reshape(-1, 5)
    lo = float(d[:, 4].min()) if len(d) else 0.0
    hi = float(d[:, 4].max()) if len(d) else 1.0
    step = max((hi - lo) / 100, 1e-3)
    thr = widgets.FloatSlider(value=lo, min=lo, max=max(hi, lo + step), step=step,
                              description="score >=", continuous_update=False)
    iou = widgets.FloatSlider(value=0.3, min=0.1, max=1.0, step=0.05, description="NMS IoU",
                              continuous_update=False)
    view = widgets.Image(format="jpeg")

    def redraw(*_):
        state = explorer_state(d, gt, key, setting, thr.value, iou.value)

        def draw(fig):
            axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
            draw_state(state, image, gt.boxes[key], gt.keep[setting][key], axes, published)

        view.value = render_jpeg(draw)

    thr.observe(redraw, names="value")
    iou.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([thr, iou]), view])


# ------------------------------------------------------------ the HR detector explorer
def draw_hr_selection(ax, image, raw, *, gt=None, score_threshold: float = 0.5,
                   nms_iou: float = 0.3, levels=None, use_a: bool = True, use_b: bool = True):
    """Draw the detections :meth:`RawDetections.select` keeps (yellow) and optional ground
    truth ``gt`` (xyxy, cyan) on a matplotlib axis; returns the number of detections."""
    boxes, scores = raw.select(score_threshold, nms_iou, levels=levels, use_a=use_a,
                               use_b=use_b)
    ax.clear()
    ax.imshow(image)
    if gt is not None and len(gt):
        draw_boxes(ax, None, np.asarray(gt), color="deepskyblue", linewidth=0.8)
    draw_boxes(ax, None, boxes, color="yellow", linewidth=1.0)
    ax.set_title(f"{len(boxes)} detections (score >= {score_threshold:.2f}, NMS {nms_iou:.2f}, "
                 f"A {'on' if use_a else 'off'}, B {'on' if use_b else 'off'})", fontsize=9)
    ax.axis("off")
    return len(boxes)


def hr_explorer(image, raw, *, gt=None, figsize=(9, 5.5), dpi: int = 80):
    """ipywidgets explorer over cached pre-NMS detections: score threshold, NMS IoU, pyramid
    levels on/off, A/B templates on/off. Redraws without running the network.

    The drawing is sent as a JPEG ``ipywidgets.Image`` (see ``tinylib.widgets.render_jpeg``)."""
    import ipywidgets as W  # optional UI dependency, only for the interactive explorer

    score = W.FloatSlider(value=0.5, min=0.05, max=0.99, step=0.01, description="score",
                          continuous_update=False)
    nms = W.FloatSlider(value=0.3, min=0.05, max=1.0, step=0.05, description="NMS IoU",
                        continuous_update=False)
    level_boxes = [W.Checkbox(value=True, description=f"{s:g}x", indent=False)
                   for s in raw.scales]
    use_a = W.Checkbox(value=True, description="A templates", indent=False)
    use_b = W.Checkbox(value=True, description="B templates", indent=False)
    view = W.Image(format="jpeg")

    def redraw(*_):
        levels = [s for s, cb in zip(raw.scales, level_boxes) if cb.value]

        def draw(fig):
            draw_hr_selection(fig.add_subplot(1, 1, 1), image, raw, gt=gt,
                           score_threshold=score.value, nms_iou=nms.value, levels=levels,
                           use_a=use_a.value, use_b=use_b.value)

        view.value = render_jpeg(draw, figsize=figsize, dpi=dpi)

    for w in [score, nms, use_a, use_b, *level_boxes]:
        w.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([score, nms]), W.HBox([W.Label("levels:"), *level_boxes]),
                   W.HBox([use_a, use_b]), view])
