"""ipywidgets explorers: score-threshold and NMS-IoU sliders (and, for the HR detector,
pyramid levels and A/B templates) redraw cached detections of one image.

Everything that computes or draws is a pure function (:func:`explorer_state`,
:func:`draw_state`, :func:`draw_hr_selection`, :func:`score_slider_config`,
:func:`crowded_crop`), testable without a browser; :func:`explorer` and :func:`hr_explorer`
only wire sliders to them. Outcomes are drawn in the workbook's one set of colours, with its
one legend (:data:`tinylib.viz.OUTCOME_COLOURS`, :func:`tinylib.viz.outcome_legend`).
:func:`photo_explorer` runs a detector on a photo of the reader's own (a ``FileUpload``;
:func:`choose_photo` picks the default photo). Detections come from a cache, so moving a slider never re-runs a
detector: ``(N, 5)`` ``x y w h score`` arrays (a detector's output, already suppressed by its
own NMS) or the HR detector's pre-NMS candidates (:class:`tinylib.hr.detect.RawDetections`),
on which the NMS slider has its full effect.

Both explorers return an :class:`Explorer`. Displayed in a notebook it emits two outputs:
the live widget, and a **static snapshot** of its first drawing (``image/jpeg`` + HTML).
JupyterLab cannot fall back from a widget whose model is gone (a saved notebook reopened
without running it shows "Error displaying widget: model not found": the widget renderer
always wins over an image in the same output), so the snapshot is an output of its own; a
CSS rule in it hides it while the live widget is on the page (JupyterLab 4, Notebook 7),
and nbconvert, GitHub and a reopened notebook show the image.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass

import numpy as np

from . import viz
from .boxes import box_convert
from .data.images import draw_boxes
from .eval import widerface as W

__all__ = ["apply_nms", "classify", "ExplorerState", "explorer_state", "draw_state", "explorer",
           "render_figure", "render_jpeg", "draw_hr_selection", "hr_explorer", "Explorer", "score_slider_config",
           "candidates_xywh", "crowded_crop", "LIVE_CLASS", "STATIC_CLASS", "choose_photo",
           "image_from_upload", "photo_explorer"]

#: the outcome colours: one definition, :data:`tinylib.viz.OUTCOME_COLOURS` (the same dict)
COLORS = viz.OUTCOME_COLOURS
LIVE_CLASS = "tinylib-live"  # on the live widget's box
STATIC_CLASS = "tinylib-static"  # on the snapshot's HTML
SLIDER_LAYOUT = {"width": "480px"}
VIEW_LAYOUT = {"align_self": "flex-start", "max_width": "100%"}  # natural size, never stretched
WIDE = {"description_width": "initial"}  # descriptions never cut ("levels:" was "leve")

# While a live explorer is in the same output area, hide the snapshot; while none is (a
# reopened notebook), turn the widget renderer's "model not found" line into a hint.
_SNAPSHOT_CSS = f"""
.jp-OutputArea:has(.{LIVE_CLASS}) > .jp-OutputArea-child:has(.{STATIC_CLASS}) {{display: none;}}
.jp-OutputArea:has(.{STATIC_CLASS}):not(:has(.{LIVE_CLASS}))
  .jp-OutputArea-output.jupyter-widgets:not(:has(*)) {{font-size: 0;}}
.jp-OutputArea:has(.{STATIC_CLASS}):not(:has(.{LIVE_CLASS}))
  .jp-OutputArea-output.jupyter-widgets:not(:has(*))::after {{
  content: "Live explorer: run the cell to use the sliders (below: a snapshot).";
  font-size: var(--jp-content-font-size1, 13px); color: var(--jp-ui-font-color2, grey);}}
"""


# ------------------------------------------------------------------ pure functions
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
    """Label each detection ``"tp"``, ``"fp"`` or ``"ignored"`` with the WIDER rules (best
    face by IoU; an ignored face makes it ignored; a second hit on a face is a FP), taking
    detections in descending score order: :func:`tinylib.eval.widerface.label_detections`,
    the one place the rule is written."""
    return W.label_detections(dets, gt_xywh, kept, plus_one=plus_one)[0]


def _nice_step(x: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= ``x``."""
    k = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10.0**k >= x * (1 - 1e-9):
            return m * 10.0**k
    return 10.0 ** (k + 1)  # pragma: no cover (m = 10 always matches)


def score_slider_config(scores, value: float | None = None) -> dict:
    """``FloatSlider`` settings for a score threshold over ``scores``: ``min``, ``max``,
    ``step``, ``value`` and a ``readout_format`` with exactly the step's decimals, so the
    readout shows the value that is used and a typed value is taken as typed.

    Scores within [0, 1] get the slider [0, 1] in steps of 0.005 (a typed 0.5 is 0.5, not
    the lowest cached score); other ranges (e.g. dlib's margins) get round ends and a
    1/2/5 step of about 1/200 of the range. ``value`` (default: ``min``, everything
    shown) is clipped into the range and rounded to the readout."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    lo, hi = (float(s.min()), float(s.max())) if s.size else (0.0, 1.0)
    if lo >= 0 and hi <= 1:
        vmin, vmax, step = 0.0, 1.0, 0.005
    else:
        step = _nice_step(max(hi - lo, 1e-6) / 200)
        vmin, vmax = math.floor(lo / step) * step, math.ceil(hi / step) * step
        vmax = max(vmax, vmin + step)
    dec = max(0, -math.floor(math.log10(step) + 1e-9))
    vmin, vmax = round(vmin, dec), round(vmax, dec)
    v = vmin if value is None else round(min(max(float(value), vmin), vmax), dec)
    return {"min": vmin, "max": vmax, "step": step, "value": v, "readout_format": f".{dec}f"}


def candidates_xywh(raw, min_score: float = 0.0) -> np.ndarray:
    """The pre-NMS candidates of a :class:`~tinylib.hr.detect.RawDetections` with the
    detector's A+B routing, as ``(N, 5)`` ``x y w h score`` rows (descending score)."""
    boxes, scores = raw.select(min_score, 1.0)  # IoU > 1 never happens: NMS keeps everything
    rows = np.hstack([np.asarray(boxes, np.float64).reshape(-1, 4),
                      np.asarray(scores, np.float64).reshape(-1, 1)])
    return box_convert(rows, "xyxy", "xywh")


def crowded_crop(image, boxes_xyxy, size=(384, 512)):
    """The ``size`` (``crop_hw``) window of ``image`` holding the most box centres, for an
    explorer that must stay fast with its 2x level on. Returns ``(crop, boxes, (y0, x0))``:
    the boxes whose centre lies inside, shifted to the crop and clipped to it."""
    img = np.asarray(image)
    H, W_ = img.shape[:2]
    ch, cw = min(int(size[0]), H), min(int(size[1]), W_)
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    best, y0, x0 = -1, 0, 0
    for y in sorted({*range(0, H - ch + 1, max(1, ch // 8)), H - ch}):
        for x in sorted({*range(0, W_ - cw + 1, max(1, cw // 8)), W_ - cw}):
            n = int(((cx >= x) & (cx < x + cw) & (cy >= y) & (cy < y + ch)).sum())
            if n > best:
                best, y0, x0 = n, y, x
    inside = (cx >= x0) & (cx < x0 + cw) & (cy >= y0) & (cy < y0 + ch)
    out = b[inside] - [x0, y0, x0, y0]
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, cw)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, ch)
    return img[y0:y0 + ch, x0:x0 + cw], out, (y0, x0)


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
    n_faces: int = 0  # kept faces of the setting in this image

    def counts(self) -> dict[str, int]:
        return {k: int((self.labels == k).sum()) for k in ("tp", "fp", "ignored")}

    def summary(self) -> str:
        """One line: detections shown, TP/FP/ignored, the operating point, the image's AP."""
        n = self.counts()
        p, r = self.point
        ap = f"{self.ap:.3f}" if self.n_faces else "n/a (0 faces)"
        prec = f"{p:.2f}" if np.isfinite(p) else "n/a"
        return (f"{len(self.dets)} detections shown: {n['tp']} TP, {n['fp']} FP, "
                f"{n['ignored']} ignored | precision {prec}, recall {r:.2f} | "
                f"AP of this image {ap}")


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
    n_faces = int(np.asarray(gt.keep[setting].get(key, ())).size)
    return ExplorerState(shown, labels, prec, rec, point, ap, float(score_thr), float(nms_iou),
                         n_faces)


def _outline(ax, xywh, color, lw, ls="-"):
    """Rectangle outlines as one collection (fast for thousands of candidates)."""
    from matplotlib.collections import PolyCollection

    b = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    if not len(b):
        return
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    verts = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                      np.stack([x1, y2], 1)], axis=1)
    ax.add_collection(PolyCollection(verts, facecolors="none", edgecolors=color, linewidths=lw,
                                     linestyles=ls))


def draw_state(state: ExplorerState, image, gt_xywh, kept, axes=None, published=None):
    """Draw the image with the labelled detections and the missed faces in the outcome
    colours, with the outcome legend (:func:`tinylib.viz.outcome_legend`; left) and the PR
    curve with the current point (right). ``published``: optional ``{label: (precision,
    recall)}``."""
    import matplotlib.pyplot as plt  # matplotlib only when drawing (heavy import)

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained",
                               gridspec_kw={"width_ratios": [1.6, 1]})
    ax, axp = axes
    ax.clear()
    axp.clear()
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    if image is not None:
        ax.imshow(image)
    else:
        ends = np.vstack([g[:, :2] + g[:, 2:], state.dets[:, :2] + state.dets[:, 2:4], [[1, 1]]])
        ax.set(xlim=(0, ends[:, 0].max()), ylim=(ends[:, 1].max(), 0))
    _, found, kept_mask = W.label_detections(state.dets, g, kept)
    missed = kept_mask & ~found
    _outline(ax, g[missed], COLORS["missed"], 1.2)
    for lab in ("ignored", "fp", "tp"):
        _outline(ax, state.dets[state.labels == lab, :4], COLORS[lab], 1.2)
    n = state.counts()
    ax.set_title(f"score >= {state.score_thr:g}, NMS IoU {state.nms_iou:.2f}: "
                 f"{n['tp']} TP, {n['fp']} FP, {int(missed.sum())} missed, {n['ignored']} ignored",
                 fontsize=9)
    ax.set_axis_off()
    viz.outcome_legend(ax)
    for label, (p, r) in (published or {}).items():
        axp.plot(r, p, lw=1, ls="--", alpha=0.7, label=label)
    if state.recall.size and state.n_faces:
        axp.plot(state.recall, state.precision, color="k", lw=1.5,
                 label=f"this image only (AP {state.ap:.3f})")
    elif not state.n_faces:
        axp.plot([], [], color="k", label="this image: n/a (0 faces)")
    p, r = state.point
    if np.isfinite(p) and state.n_faces:
        axp.plot([r], [p], "o", color="red", ms=8, label=f"threshold point P={p:.2f} R={r:.2f}")
    axp.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    axp.set_title("precision/recall", fontsize=9)
    axp.legend(fontsize=8, loc="lower left")
    axp.grid(alpha=0.3)
    return axes


def render_figure(draw, figsize=(11, 4.5), dpi: int = 80):
    """A fresh (pyplot-free) Figure with the constrained layout (titles and legends inside
    the picture, nothing clipped at the top), drawn by ``draw(fig)``."""
    from matplotlib.figure import Figure  # matplotlib only when drawing (heavy import)

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    draw(fig)
    return fig


def render_jpeg(draw, figsize=(11, 4.5), dpi: int = 80) -> bytes:
    """:func:`render_figure` as JPEG bytes.

    The explorers show their drawings as an ``ipywidgets.Image``: a figure displayed inside
    an ``Output`` widget can stall headless execution (nbclient waiting for widget output
    messages), and nothing is left for pyplot to show twice."""
    buf = io.BytesIO()
    render_figure(draw, figsize, dpi).savefig(buf, format="jpeg", dpi=dpi)
    return buf.getvalue()


# ------------------------------------------------------------------ the displayed object
class Explorer:
    """An explorer as a notebook shows it: ``widget`` (the live ipywidgets box, tagged
    :data:`LIVE_CLASS`), ``view`` (its ``Image``), ``status`` (an ``HTML`` line with the
    counts), ``controls`` (name -> control widget) and ``snapshot`` (JPEG bytes of the first
    drawing). Displaying it emits the widget and then the snapshot (module docstring);
    :meth:`display_bundles` returns exactly those outputs."""

    def __init__(self, widget, view, status, controls: dict, snapshot: bytes, title: str):
        self.widget, self.view, self.status = widget, view, status
        self.controls = dict(controls)
        self.snapshot = snapshot
        self.title = title

    def display_bundles(self) -> list[tuple[dict, dict]]:
        """``[(data, metadata), ...]``: the widget's mimebundle (its ``text/plain`` says what
        it is, not ``VBox(children=...)``) and the snapshot's (``image/jpeg``, ``text/html``
        with the CSS of the module docstring, ``text/plain``)."""
        live = dict(self.widget._repr_mimebundle_())
        live["text/plain"] = f"[{self.title}: live widget, needs a running kernel]"
        b64 = base64.b64encode(self.snapshot).decode("ascii")
        alt = html.escape(f"{self.title}: snapshot of its first drawing")
        page = (f"<style>{_SNAPSHOT_CSS}</style><div class=\"{STATIC_CLASS}\">"
                f"<img src=\"data:image/jpeg;base64,{b64}\" alt=\"{alt}\" style=\"max-width:100%\"/>"
                f"<div style=\"font-size:smaller;opacity:0.7\">{alt}; run the cell for the "
                "live sliders.</div></div>")
        static = {"image/jpeg": b64, "text/html": page,
                  "text/plain": f"[{self.title}: snapshot of its first drawing]"}
        return [(live, {}), (static, {})]

    def _ipython_display_(self):
        from IPython.display import display  # UI only

        for data, metadata in self.display_bundles():
            display(data, raw=True, metadata=metadata)

    def __repr__(self) -> str:
        return f"<Explorer {self.title!r}: {', '.join(self.controls)}>"


def explorer(image, dets, gt, key: str, setting: str = "hard", published=None, *,
             suppressed: bool | None = None, score: float | None = None,
             nms_iou: float | None = None, figsize=(11, 4.5), dpi: int = 80) -> Explorer:
    """The evaluation explorer (:class:`Explorer`): score threshold and NMS IoU redraw the
    detections of image ``key`` labelled by the WIDER rules, and their point on the image's
    PR curve.

    ``dets``: ``(N, 5)`` ``x y w h score`` (a detector's output: ``suppressed`` defaults to
    True, the NMS slider starts at 1 = off and the widget says it can only remove more) or
    a :class:`~tinylib.hr.detect.RawDetections` (pre-NMS candidates: NMS starts at 0.3 and
    has its full effect). ``score``: the starting threshold (default: 0.5 for candidates,
    everything for detections); the slider's range and step: :func:`score_slider_config`."""
    import ipywidgets as widgets  # UI only: inference and the pure functions never import it

    is_raw = hasattr(dets, "select") and hasattr(dets, "scores")
    if suppressed is None:
        suppressed = not is_raw
    d = candidates_xywh(dets) if is_raw else np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    cfg = score_slider_config(d[:, 4], 0.5 if score is None and is_raw else score)
    thr = widgets.FloatSlider(**cfg, description="score ≥", continuous_update=False,
                              layout=SLIDER_LAYOUT, style=WIDE)
    iou = widgets.FloatSlider(value=nms_iou if nms_iou is not None else (1.0 if suppressed else 0.3),
                              min=0.1, max=1.0, step=0.05, readout_format=".2f",
                              description="NMS IoU (1 = off)", continuous_update=False,
                              layout={"width": "360px"}, style=WIDE)
    note = ("These detections were already suppressed by the detector's own NMS: the NMS "
            "slider can only remove more. Pre-NMS candidates (the HR detector's "
            "<code>RawDetections</code>) show its full effect." if suppressed else
            f"{len(d)} pre-NMS candidates: the NMS slider suppresses them afresh (plain NMS, "
            "no box voting).")
    status = widgets.HTML()
    view = widgets.Image(format="jpeg", layout=VIEW_LAYOUT)

    def redraw(*_):
        state = explorer_state(d, gt, key, setting, thr.value, iou.value)

        def draw(fig):
            axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
            draw_state(state, image, gt.boxes[key], gt.keep[setting][key], axes, published)

        view.value = render_jpeg(draw, figsize=figsize, dpi=dpi)
        status.value = f"<b>{html.escape(state.summary())}</b> ({setting} keep list)"

    thr.observe(redraw, names="value")
    iou.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([thr, iou]), widgets.HTML(f"<small>{note}</small>"),
                        status, view])
    box.add_class(LIVE_CLASS)
    return Explorer(box, view, status, {"score": thr, "nms": iou}, bytes(view.value),
                    f"evaluation explorer ({key})")


# ------------------------------------------------------------ the HR detector explorer
def draw_hr_selection(ax, image, raw, *, gt=None, score_threshold: float = 0.5,
                      nms_iou: float = 0.3, levels=None, use_a: bool = True,
                      use_b: bool = True):
    """Draw the detections :meth:`RawDetections.select` keeps on a matplotlib axis. With
    ground truth ``gt`` (xyxy, every face counted) they are judged by the WIDER rules and
    drawn as outcomes -- true positives, false positives, missed faces in the outcome
    colours, with the outcome legend (:mod:`tinylib.viz`); without it, plain boxes in
    :data:`tinylib.viz.DETECTION_COLOUR`. Returns the number of detections."""
    boxes, scores = raw.select(score_threshold, nms_iou, levels=levels, use_a=use_a,
                               use_b=use_b)
    ax.clear()
    ax.imshow(image)
    what = (f"score >= {score_threshold:g}, NMS {nms_iou:.2f}, "
            f"A {'on' if use_a else 'off'}, B {'on' if use_b else 'off'}")
    if gt is None:
        draw_boxes(ax, None, boxes, color=viz.DETECTION_COLOUR, linewidth=1.0)
        ax.set_title(f"{len(boxes)} detections ({what})", fontsize=9)
    else:
        g = box_convert(np.asarray(gt, dtype=np.float64).reshape(-1, 4), "xyxy", "xywh")
        dets = np.c_[box_convert(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), "xyxy", "xywh"),
                     np.asarray(scores, dtype=np.float64).reshape(-1)]
        out = viz.outcome(dets, g, score_threshold=-np.inf)
        c = viz.draw_outcome(ax, None, out, g, linewidth=1.0, legend=False)
        ax.set_title(f"{len(boxes)} detections ({what}): {c['tp']} found, {c['fp']} false, "
                     f"{c['missed']} missed of {c['faces']} faces", fontsize=9)
        viz.outcome_legend(ax)
    ax.axis("off")
    return len(boxes)


def hr_explorer(image, raw, *, gt=None, figsize=(9, 6), dpi: int = 80,
                score: float | None = None, weights=None) -> Explorer:
    """The HR detector's explorer (:class:`Explorer`) over cached pre-NMS candidates
    ``raw`` (:class:`~tinylib.hr.detect.RawDetections`): score threshold, NMS IoU, pyramid
    levels on/off, A/B templates on/off. Redraws without running the network.

    B templates only run on upsampled levels (scale > 1): when ``raw`` has none (the
    pyramid was capped below 2x by ``max_side``), the B box is disabled and says why —
    run the detector with ``max_side >= 2 x`` the image's longer side (or on a
    :func:`crowded_crop`) to keep the 2x level.

    ``score``: the starting threshold; by default, for the detector's ``weights`` (its
    file), the one chosen on the tuning half of the WIDER val subset when the shipped table
    was measured with them (:func:`tinylib.compare.wider_subset.explorer_threshold`), else 0.5; the
    line under the view says which."""
    import ipywidgets as widgets  # optional UI dependency, only for the interactive explorer

    from .compare.wider_subset import explorer_threshold

    start, why = (score, "given") if score is not None else explorer_threshold(weights)
    score = widgets.FloatSlider(value=start, min=0.05, max=1.0, step=0.001, readout_format=".3f",
                                description="score ≥", continuous_update=False,
                                layout=SLIDER_LAYOUT, style=WIDE)
    nms = widgets.FloatSlider(value=0.3, min=0.05, max=1.0, step=0.05, readout_format=".2f",
                              description="NMS IoU (1 = off)", continuous_update=False,
                              layout={"width": "360px"}, style=WIDE)
    level_boxes = [widgets.Checkbox(value=True, description=f"{s:g}x", indent=False,
                                    layout={"width": "auto"}) for s in raw.scales]
    upsampled = [s for s in raw.scales if s > 1 + 1e-6]
    use_a = widgets.Checkbox(value=True, description="A templates (every level)", indent=False,
                             layout={"width": "auto"})
    use_b = widgets.Checkbox(value=bool(upsampled), disabled=not upsampled, indent=False,
                             layout={"width": "auto"},
                             description=(f"B templates (tiny faces, on {', '.join(f'{s:g}x' for s in upsampled)})"
                                          if upsampled else
                                          "B templates: off, no level above 1x (raise max_side)"))
    status = widgets.HTML()
    view = widgets.Image(format="jpeg", layout=VIEW_LAYOUT)

    def redraw(*_):
        levels = [s for s, cb in zip(raw.scales, level_boxes) if cb.value]
        count = {}

        def draw(fig):
            count["n"] = draw_hr_selection(
                fig.add_subplot(1, 1, 1), image, raw, gt=gt, score_threshold=score.value,
                nms_iou=nms.value, levels=levels, use_a=use_a.value, use_b=use_b.value)

        view.value = render_jpeg(draw, figsize=figsize, dpi=dpi)
        shown = ", ".join(f"{s:g}x" for s in levels) or "none"
        status.value = (f"<b>{count['n']} detections</b> at score ≥ {score.value:.3f}, NMS IoU "
                        f"{nms.value:.2f}; levels {shown}; A {'on' if use_a.value else 'off'}, "
                        f"B {'on' if use_b.value else 'off'}<br><small>opened at score ≥ {start:.3f}: "
                        f"{why}</small>")

    for w in [score, nms, use_a, use_b, *level_boxes]:
        w.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([
        widgets.HBox([score, nms]),
        widgets.HBox([widgets.Label("pyramid levels:", layout={"width": "auto"}), *level_boxes],
                     layout={"grid_gap": "12px"}),
        widgets.HBox([use_a, use_b], layout={"grid_gap": "16px"}),
        status, view])
    box.add_class(LIVE_CLASS)
    controls = {"score": score, "nms": nms, "use_a": use_a, "use_b": use_b,
                **{f"level_{s:g}x": cb for s, cb in zip(raw.scales, level_boxes)}}
    return Explorer(box, view, status, controls, bytes(view.value), "HR detector explorer")


# ------------------------------------------------------------ your own photo
def choose_photo(path="", demo=None) -> tuple:
    """The photo of a "your own photo" cell, as ``(path, description)``: ``path`` when given
    (``~`` expanded; a missing file raises ``FileNotFoundError`` naming it -- never a silent
    fallback), else ``demo`` (e.g. the data bundle's ``demo/selfie.jpg``) when that file
    exists, else a synthetic crowd scene (:func:`tinylib.data.synthetic.render_scene`, fixed
    seed) written once, atomically, under ``cache_dir("demo")``."""
    from pathlib import Path

    from .config import cache_dir

    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"your photo {p} does not exist (set the path of an image "
                                    "file, or \"\" for the default)")
        return p, f"your photo {p.name}"
    if demo is not None and Path(demo).is_file():
        return Path(demo), f"the data bundle's {Path(demo).name}"
    out = cache_dir("demo") / "synthetic_crowd.jpg"
    if not out.is_file():
        from PIL import Image

        from .data.synthetic import render_scene
        from .io import atomic_save

        image, _, _ = render_scene(np.random.default_rng(0), 1024, 683, event="0--Crowd")
        atomic_save(out, lambda tmp: Image.fromarray(image).save(tmp, format="JPEG", quality=92),
                    suffix=".jpg")
    return out, "a synthetic crowd scene (no selfie demo in the data root)"


def image_from_upload(item) -> np.ndarray:
    """One ``FileUpload`` entry (ipywidgets 8: a dict with ``name`` and ``content``; 7: the
    ``{"metadata": ..., "content": ...}`` form) as ``uint8 H x W x 3`` RGB, read by
    :func:`tinylib.data.images.read_image` (so an unreadable file raises naming it)."""
    import tempfile
    from pathlib import Path

    from .data.images import read_image

    name = str(item.get("name") or item.get("metadata", {}).get("name") or "upload")
    suffix = Path(name).suffix or ".img"
    with tempfile.TemporaryDirectory(prefix="tinylib_upload_") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(bytes(item["content"]))
        try:
            return read_image(path)
        except OSError as exc:  # name the user's file, not the temporary one
            raise OSError(str(exc).replace(str(path), name)) from None


def photo_explorer(detect, image, *, title: str = "", figsize=(10, 7), dpi: int = 80):
    """Run ``detect(image) -> (boxes xyxy (N, 4), scores (N,))`` (e.g. the shipped HR
    detector's ``Detector.detect``) on ``image`` and draw its boxes
    (:func:`tinylib.viz.draw_detections`: no ground truth, no outcome colours). With
    ipywidgets an :class:`Explorer` whose ``FileUpload`` runs the detector on each uploaded
    photo and redraws; without it, the static matplotlib figure."""
    import time

    from . import viz as _viz

    def draw_into(fig, img, label):
        t0 = time.perf_counter()
        boxes, scores = detect(img)
        n = _viz.draw_detections(fig.add_subplot(1, 1, 1), img, boxes, scores, title=label)
        return n, time.perf_counter() - t0

    try:
        import ipywidgets as widgets  # optional UI dependency
    except ImportError:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize, layout="constrained")
        draw_into(fig, image, title)
        return fig
    upload = widgets.FileUpload(accept="image/*", multiple=False, description="your photo")
    status = widgets.HTML()
    view = widgets.Image(format="jpeg", layout=VIEW_LAYOUT)

    def show(img, label):
        out = {}

        def draw(fig):
            out["n"], out["s"] = draw_into(fig, img, label)

        view.value = render_jpeg(draw, figsize=figsize, dpi=dpi)
        status.value = (f"<b>{html.escape(label)}</b>: {out['n']} detections, "
                        f"{img.shape[1]}x{img.shape[0]} px, {out['s']:.1f} s")

    def on_upload(change):
        items = change["new"]
        items = list(items.values()) if isinstance(items, dict) else list(items)
        if not items:
            return
        name = str(items[0].get("name") or "upload")
        try:
            show(image_from_upload(items[0]), name)
        except OSError as exc:
            status.value = f"<b>cannot read {html.escape(name)}</b>: {html.escape(str(exc))}"

    upload.observe(on_upload, names="value")
    show(image, title or "photo")
    box = widgets.VBox([widgets.HBox([upload, widgets.HTML(
        "<small>upload a photo: the detector runs on it (a large photo takes a while)</small>")]),
        status, view])
    box.add_class(LIVE_CLASS)
    return Explorer(box, view, status, {"upload": upload}, bytes(view.value), "your own photo")
