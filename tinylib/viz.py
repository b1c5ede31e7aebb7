"""Static drawings of detection results (matplotlib; no widgets, no kernel needed to view).

* :func:`outcome` -- which detections are true/false positives or ignored and which faces
  are missed, with the WIDER matching rule (IoU >= 0.5, ``+1`` pixel convention:
  :func:`tinylib.eval.widerface.label_detections`, the protocol's labelling);
* :data:`OUTCOME_COLOURS`, :data:`OUTCOME_LABELS`, :func:`outcome_legend` -- the workbook's one
  colour legend for outcomes: true positive green, false positive red, missed face yellow,
  ignored (a detection on a face outside the setting's keep list) orange. Every drawing of
  outcomes (:func:`draw_outcome`, the explorers of :mod:`tinylib.widgets`) uses these colours
  and shows this legend;
* :func:`draw_outcome` -- an :class:`Outcome` drawn on the image, with the legend;
* :func:`draw_boxes_xyxy` -- plain boxes (e.g. all detections on the selfie), no outcome;
* :func:`draw_detections` -- a detector's boxes on a photo of one's own (no ground truth);
* :func:`draw_sample` / :func:`samples_figure` -- dataset samples ``(image, target)`` with
  their faces (green) and ``ignore`` boxes (magenta, dashed and filled, visible even when a
  few pixels wide), with a legend;
* :func:`figure_image` -- a figure as an embedded JPEG (photos: a fraction of a PNG's size);
* :func:`gan_losses`, :class:`LiveLosses`, :func:`gan_architecture`, :func:`sr_grid` -- the
  GAN chapter's loss curves (live during training), block drawing and super-resolution grid.
* :func:`toolbox_gain_cost` -- the toolbox chapter's AP gain vs cost figure.
* :func:`recall_by_size` -- recall per face-size bin before and after NMS, test and tuning
  half (the table ``hr_recall_by_size`` as :func:`tinylib.compare.wider_subset.recall_table` lays it out).
* :func:`plot_curves` -- WIDER FACE precision-recall curves (results of
  :func:`tinylib.eval.widerface.evaluate` or published curves), one axis per setting, VOC AP in
  the legend;
* :func:`plot_roc` -- FDDB's ROC (true positive rate against the number of false positives) of
  :func:`tinylib.eval.fddb.evaluate` results.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .boxes import box_convert
from .eval import fddb as FD
from .eval import widerface as W
from .eval.pr import voc_ap

__all__ = ["training_history", "Outcome", "outcome", "draw_outcome", "draw_boxes_xyxy",
           "draw_detections", "draw_positive_windows", "OUTCOME_KINDS", "OUTCOME_COLOURS", "OUTCOME_COLORS",
           "OUTCOME_LABELS", "outcome_legend", "SAMPLE_COLORS", "draw_sample", "samples_figure", "figure_image",
           "GAN_LOSSES", "gan_losses", "LiveLosses", "gan_architecture", "sr_grid", "toolbox_gain_cost",
           "DETECTION_COLOUR", "recall_by_size", "plot_curves", "plot_roc"]

#: the four outcomes of a detection drawing, in legend order
OUTCOME_KINDS = ("tp", "fp", "missed", "ignored")
#: the one definition of the outcome colours (every chapter, every explorer)
OUTCOME_COLOURS = {"tp": "lime", "fp": "red", "missed": "yellow", "ignored": "orange"}
OUTCOME_COLORS = OUTCOME_COLOURS  # the older spelling, the same dict
#: what each colour means, as the legend says it
OUTCOME_LABELS = {"tp": "true positive", "fp": "false positive", "missed": "missed face",
                  "ignored": "ignored (face not in keep list)"}
#: the colour of plain detections, where there is no ground truth to judge them by
DETECTION_COLOUR = "deepskyblue"
SAMPLE_COLORS = {"face": "lime", "ignore": "magenta"}


@dataclass
class Outcome:
    """Per-detection labels and per-face hits at one score threshold."""

    dets: np.ndarray  # (N, 5) x y w h score, the detections above the threshold
    label: np.ndarray  # (N,) "tp" | "fp" | "ignored" (hit on a face outside the keep list)
    found: np.ndarray  # (M,) bool per face: hit by some detection
    kept: np.ndarray  # (M,) bool per face: in the setting's keep list

    def counts(self) -> dict[str, int]:
        return {"tp": int((self.label == "tp").sum()), "fp": int((self.label == "fp").sum()),
                "missed": int((self.kept & ~self.found).sum()), "faces": int(self.kept.sum())}


def outcome(dets_xywh, gt_xywh, kept_idx=None, *, score_threshold: float = 0.5,
            iou: float = 0.5) -> Outcome:
    """Label detections above ``score_threshold`` against the faces ``gt_xywh`` (``x y w
    h``): the highest-scoring detection on a face is a true positive, a second one on the
    same face and one on no face false positives, one on a face outside ``kept_idx`` (the
    setting's keep list; default all faces) ignored -- the WIDER rules."""
    d = np.asarray(dets_xywh, dtype=np.float64).reshape(-1, 5)
    d = d[d[:, 4] >= score_threshold]
    d = d[np.argsort(-d[:, 4], kind="stable")]
    label, found, kept = W.label_detections(d, gt_xywh, kept_idx, iou=iou)
    return Outcome(d, label, found, kept)


def outcome_legend(ax, kinds=OUTCOME_KINDS, *, below: bool = True, fontsize: float = 8, **kwargs):
    """The workbook's outcome legend (:data:`OUTCOME_COLOURS`, :data:`OUTCOME_LABELS`) on
    ``ax``: two columns under the axes (``below``; the constrained layout keeps it inside
    the figure) or at ``kwargs["loc"]`` inside it. Returns the ``Legend``."""
    from matplotlib.lines import Line2D  # matplotlib only when drawing (heavy import)

    handles = [Line2D([], [], color=OUTCOME_COLOURS[k], lw=2.5, label=OUTCOME_LABELS[k])
               for k in kinds]
    opts = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.01), "ncol": 2} if below else {}
    opts.update(kwargs)
    leg = ax.legend(handles=handles, fontsize=fontsize, frameon=True, framealpha=0.9,
                    handlelength=1.5, columnspacing=1.0, **opts)
    leg.set_gid("outcome-legend")
    return leg


def _rects(ax, xywh, color, lw):
    from matplotlib.patches import Rectangle  # matplotlib only when drawing (heavy import)

    for x, y, w, h in np.asarray(xywh, dtype=np.float64).reshape(-1, 4)[:, :4]:
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=lw))


def draw_outcome(ax, image, out: Outcome, gt_xywh, *, linewidth: float = 0.8, title: str = "",
                 legend: bool = True):
    """Draw ``out`` on ``image`` in the outcome colours (:data:`OUTCOME_COLOURS`: TP green,
    FP red, missed faces yellow, ignored detections orange) with the outcome legend under
    it. Returns the counts."""
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    if image is not None:  # None: draw on what the axes already show
        ax.imshow(image)
    for lab in ("ignored", "fp", "tp"):
        _rects(ax, out.dets[out.label == lab, :4], OUTCOME_COLOURS[lab], linewidth)
    _rects(ax, g[out.kept & ~out.found], OUTCOME_COLOURS["missed"], linewidth)
    c = out.counts()
    ax.set_title(title or f"{c['tp']} found, {c['fp']} false, {c['missed']} missed "
                          f"of {c['faces']} faces", fontsize=9)
    ax.axis("off")
    if legend:
        outcome_legend(ax)
    return c


def draw_boxes_xyxy(ax, image, boxes, *, color: str | None = None, linewidth: float = 0.6,
                    title: str = ""):
    """Plain ``x1 y1 x2 y2`` boxes on ``image``, by default in :data:`DETECTION_COLOUR` (not
    the true-positive green: unjudged boxes are not outcomes)."""
    color = DETECTION_COLOUR if color is None else color
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ax.imshow(image)
    _rects(ax, box_convert(b, "xyxy", "xywh"), color, linewidth)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def draw_detections(ax, image, boxes, scores=None, *, linewidth: float = 0.8, title: str = ""):
    """A detector's ``x1 y1 x2 y2`` boxes on a photo without ground truth (one's own photo):
    in :data:`DETECTION_COLOUR`, not an outcome colour -- nothing says which are right.
    Returns the number of boxes."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(b)
    head = f"{n} detection{'s' if n != 1 else ''}"
    if scores is not None and n:
        head += f" (scores {float(np.min(scores)):.2f}-{float(np.max(scores)):.2f})"
    draw_boxes_xyxy(ax, image, b, color=DETECTION_COLOUR, linewidth=linewidth,
                    title=f"{title}: {head}" if title else head)
    return n


def draw_positive_windows(ax, image, boxes_xyxy, positives, template_sizes_wh, stride: int = 8,
                          *, title: str = ""):
    """A training crop with its faces (cyan) and the template windows labelled positive
    (yellow): ``positives`` is ``(K, 3)`` of ``(template, row, col)`` heatmap indices, as
    ``torch.nonzero(labels == 1)`` gives them; the window of template ``t`` at ``(i, j)`` is
    centred at ``(j * stride + stride / 2, i * stride + stride / 2)`` (tinylib.hr.targets);
    ``template_sizes_wh`` is ``(T, 2)`` of template ``(w, h)``."""
    sizes_wh = np.asarray(template_sizes_wh, dtype=np.float64).reshape(-1, 2)
    pos = np.asarray(positives, dtype=np.int64).reshape(-1, 3)
    cx = pos[:, 2] * stride + stride / 2
    cy = pos[:, 1] * stride + stride / 2
    w, h = sizes_wh[pos[:, 0], 0], sizes_wh[pos[:, 0], 1]
    ax.imshow(image)
    _rects(ax, box_convert(np.stack([cx, cy, w, h], 1), "cxcywh", "xywh"), "yellow", 0.7)
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    _rects(ax, box_convert(b, "xyxy", "xywh"), "cyan", 0.7)
    ax.set_title(title or "faces (cyan) and positive template windows (yellow)", fontsize=9)
    ax.axis("off")


def draw_sample(ax, image, target, *, title: str = "", linewidth: float = 0.9):
    """A dataset sample: ``image`` with ``target["boxes"]`` (xyxy) -- faces as solid green
    outlines, boxes flagged ``target["ignore"]`` (invalid or degenerate) in magenta, dashed,
    twice as thick and filled translucent so that even a box a few pixels wide shows. The
    title (``title: image_id``) gets a second line with the counts. Returns
    ``{"faces": n, "ignore": k}``."""
    from matplotlib.patches import Rectangle  # matplotlib only when drawing (heavy import)

    b = np.asarray(target["boxes"], dtype=np.float64).reshape(-1, 4)
    ign = np.asarray(target.get("ignore", np.zeros(len(b), bool)), dtype=bool).reshape(-1)
    if len(ign) != len(b):
        raise ValueError(f"target has {len(b)} boxes but {len(ign)} ignore flags")
    ax.imshow(image)
    for (x1, y1, x2, y2), bad in zip(b, ign):
        if bad:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, facecolor=SAMPLE_COLORS["ignore"],
                                   alpha=0.35, edgecolor="none", gid="ignore-fill"))
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, linestyle="--",
                                   edgecolor=SAMPLE_COLORS["ignore"], linewidth=2 * linewidth,
                                   gid="ignore"))
        else:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                   edgecolor=SAMPLE_COLORS["face"], linewidth=linewidth, gid="face"))
    counts = {"faces": int((~ign).sum()), "ignore": int(ign.sum())}
    image_id = str(target.get("image_id", ""))
    head = f"{title}: {image_id}" if title and image_id else title or image_id
    ax.set_title(f"{head}\n{counts['faces']} faces, {counts['ignore']} ignore", fontsize=8)
    ax.axis("off")
    return counts


def samples_figure(samples, *, titles=None, max_panels: int = 3, panel_width: float = 5.0,
                   dpi: int = 90, linewidth: float = 0.9):
    """Up to ``max_panels`` samples ``(image, target)`` side by side (:func:`draw_sample`;
    ``samples`` a list or a dataset: its first ones), ``titles`` one per panel, a legend for
    the two kinds of box. The figure's ``dpi`` is low on purpose: photos make large files
    (embed with :func:`figure_image`). Returns the figure."""
    import matplotlib.pyplot as plt  # matplotlib only when drawing (heavy import)
    from matplotlib.lines import Line2D

    n = min(len(samples), max_panels)
    if n == 0:
        raise ValueError("samples_figure needs at least one sample")
    items = [samples[i] for i in range(n)]
    aspect = max(img.shape[0] / img.shape[1] for img, _ in items)
    fig, axes = plt.subplots(1, n, figsize=(panel_width * n, panel_width * aspect + 0.9), dpi=dpi,
                             layout="constrained", squeeze=False)
    for i, (ax, (image, target)) in enumerate(zip(axes[0], items)):
        draw_sample(ax, image, target, title=(titles[i] if titles else ""), linewidth=linewidth)
    handles = [Line2D([], [], color=SAMPLE_COLORS["face"], lw=2, label="face"),
               Line2D([], [], color=SAMPLE_COLORS["ignore"], lw=2, ls="--",
                      label="ignore (invalid or degenerate): neither positive nor negative")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return fig


def figure_image(fig, *, fmt: str = "jpeg", quality: int = 80, close: bool = True):
    """``fig`` rendered once as an ``IPython.display.Image`` (JPEG by default, at the
    figure's dpi) -- for photos a fraction of the inline PNG's size; the figure is closed so
    that it is not drawn a second time. The bytes are in ``.data``."""
    import io

    import matplotlib.pyplot as plt  # matplotlib only when drawing (heavy import)
    from IPython.display import Image

    if fmt not in ("jpeg", "png"):
        raise ValueError(f"fmt must be 'jpeg' or 'png', got {fmt!r}")
    buf = io.BytesIO()
    kw = {"pil_kwargs": {"quality": int(quality), "optimize": True}} if fmt == "jpeg" else {}
    fig.savefig(buf, format=fmt, dpi=fig.dpi, bbox_inches="tight", facecolor="white", **kw)
    if close:
        plt.close(fig)
    return Image(data=buf.getvalue(), format=fmt)


def training_history(history, axes=None):
    """Plot a per-epoch training history (:func:`tinylib.engine.recipe.epoch_summary` rows, as in
    the CSV beside shipped weights): loss means on the left, the ``ap_*`` columns on the
    right, against the cumulative step. A ``stage`` column (weights averaged from several
    training stages, :mod:`tinylib.hr.soup`) is laid end to end, each stage's steps after
    the previous stage's last, with a dashed line at each restart. Returns the axes."""
    import matplotlib.pyplot as plt

    df = history.copy()
    if "stage" not in df:
        df["stage"] = 1
    offset, starts = 0, []
    for st in sorted(df["stage"].unique()):
        m = df["stage"] == st
        if offset:
            starts.append(offset)
        df.loc[m, "step"] = df.loc[m, "step"] + offset
        offset = int(df.loc[m, "step"].max())
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3), constrained_layout=True)
    losses = [c for c in ("loss", "loss_cls", "loss_reg") if c in df]
    for c in losses:
        axes[0].plot(df["step"], df[c], label=c)
    axes[0].set(title="training loss (epoch means)", xlabel="step")
    ap_cols = [c for c in df if c.startswith("ap_")]
    ap = df.dropna(subset=ap_cols) if ap_cols else df.iloc[:0]
    for c in ap_cols:
        axes[1].plot(ap["step"], ap[c], marker="o", label=c.removeprefix("ap_"))
    axes[1].set(title="AP on val photos during training", xlabel="step")
    for ax in axes:
        for x in starts:
            ax.axvline(x, color="0.5", ls="--", lw=1, label="next stage starts")
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            uniq = dict(zip(labels, handles))
            ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    return axes


# ----------------------------------------------------------------------------- GAN chapter
#: the generator and discriminator losses of :class:`tinylib.gan.GANDetector`, by network
GAN_LOSSES = {"discriminator (Eq. 11)": ("d_adv", "d_cls", "d_reg"),
              "generator (Eq. 10)": ("g_mse", "g_adv", "g_cls", "g_reg")}


def gan_losses(history, axes=None, *, smooth: int = 20):
    """The GAN's step losses (a :func:`tinylib.engine.train` history), one panel per network,
    each term smoothed over ``smooth`` steps (a rolling mean). Returns the axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.2), constrained_layout=True)
    for ax, (title, cols) in zip(axes, GAN_LOSSES.items()):
        for c in cols:
            if c in history:
                ax.plot(history["step"], history[c].rolling(smooth, min_periods=1).mean(), label=c)
        ax.set(title=title, xlabel="step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return axes


class LiveLosses:
    """An ``on_step`` callback for :func:`tinylib.engine.train` that redraws
    :func:`gan_losses` (or any columns) in one notebook output every ``every`` steps, and
    keeps the rows (``.history``)."""

    def __init__(self, every: int = 10, smooth: int = 5):
        self.every, self.smooth, self.rows, self._handle = int(every), smooth, [], None

    @property
    def history(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def draw(self):
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), constrained_layout=True)
        gan_losses(self.history, axes, smooth=self.smooth)
        plt.close(fig)
        return fig

    def __call__(self, row: dict) -> None:
        self.rows.append(dict(row))
        if len(self.rows) % self.every:
            return
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:  # outside IPython: keep the rows only
            return
        fig = self.draw()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def gan_architecture(model, ax=None):
    """A block drawing of :class:`tinylib.gan.GANDetector`: low-res crop -> up-sample
    sub-network (x4) -> refinement sub-network -> discriminator trunk -> three heads, each
    block labelled with its layers and parameter count. Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    g, d, c = model.generator, model.discriminator, model.config
    gc = g.config

    def n(mod):
        return sum(p.numel() for p in mod.parameters()) / 1e6 if mod is not None else 0.0

    s = c["lr_size"]
    blocks = [
        (f"low-res crop\n{s}x{s} (context x{c['margin']:g})", "", "#dddddd"),
        (f"G1 up-sample\nconv, conv, {2 * gc['blocks']} res convs, conv\n2 de-conv x2 ({gc['up_width']} ch), conv",
         f"{n(g.upsample):.2f} M", "#a6cee3"),
    ]
    if g.refine is not None:
        blocks.append((f"G2 refinement\nconv, conv, {2 * gc['blocks']} res convs\n3 convs, + input",
                       f"{n(g.refine):.2f} M", "#b2df8a"))
    blocks.append((f"discriminator\n{d.config['trunk']} trunk\nglobal average pool", f"{n(d.trunk):.2f} M", "#fdbf6f"))
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.4), constrained_layout=True)
    w, gap = 2.3, 0.55
    for i, (text, params, color) in enumerate(blocks):
        x = i * (w + gap)
        ax.add_patch(FancyBboxPatch((x, 0.25), w, 1.5, boxstyle="round,pad=0.04", fc=color, ec="k"))
        ax.text(x + w / 2, 1.0, text, ha="center", va="center", fontsize=8.5)
        if params:
            ax.text(x + w / 2, 0.05, params + " params", ha="center", va="center", fontsize=8)
        if i:
            ax.add_patch(FancyArrowPatch((x - gap + 0.03, 1.0), (x - 0.03, 1.0), arrowstyle="-|>",
                                         mutation_scale=14))
    x = len(blocks) * (w + gap)
    heads = [("fc_gan: real vs generated", 1.65), ("fc_cls: face vs non-face (the score)", 1.0),
             ("fc_reg: box offsets (tx, ty, tw, th)", 0.35)]
    for text, y in heads:
        ax.add_patch(FancyArrowPatch((x - gap + 0.03, 1.0), (x + 0.1, y), arrowstyle="-|>", mutation_scale=12))
        ax.text(x + 0.15, y, text, va="center", fontsize=8.5)
    sr = s * c["scale"]
    ax.text((w + gap) * 1 + w / 2, 1.95, f"{sr}x{sr} SR", ha="center", fontsize=8, color="0.3")
    ax.set(xlim=(-0.2, x + 3.4), ylim=(-0.2, 2.15))
    ax.axis("off")
    ax.set_title("GAN tiny-face detector (Bai et al., Table 1), as configured", fontsize=10)
    return ax


def sr_grid(examples: dict, n: int = 12, *, size: float = 1.15, titles=None):
    """A figure with one row per image kind of :func:`tinylib.gan.evaluate.sr_examples`
    (low-res input, bicubic, SR, refined, real high-res) and one column per face (0..255
    ``(N, 3, S, S)`` tensors); ``titles`` label the columns. Returns the figure."""
    import matplotlib.pyplot as plt

    kinds = list(examples)
    n = min(n, len(next(iter(examples.values()))))
    fig, axes = plt.subplots(len(kinds), n, figsize=(size * n, size * len(kinds) + 0.3),
                             squeeze=False, constrained_layout=True)
    for r, kind in enumerate(kinds):
        for j in range(n):
            img = examples[kind][j].clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
            ax = axes[r, j]
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(kind, fontsize=8)
            if r == 0 and titles is not None:
                ax.set_title(titles[j], fontsize=7)
    return fig


# ------------------------------------------------------------------------- toolbox chapter
def toolbox_gain_cost(table, metrics=("hard", "le20"), axes=None):
    """The toolbox chapter's figure: per technique (rows of
    :func:`tinylib.compare.toolbox.toolbox_table`), the AP gain over the baseline against
    ``cost_ratio`` (log scale), one panel per metric. Whiskers: the seed spread; a filled
    marker: the gain lies outside it, a hollow one: inside (no win). Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), constrained_layout=True)
    axes = np.atleast_1d(axes)
    markers = {"train": "o", "model": "s", "test": "^"}
    colors = plt.get_cmap("tab10")
    handles = []
    for ax, m in zip(axes, metrics):
        for k, (_, r) in enumerate(table.iterrows()):
            c, mk = colors(k % 10), markers.get(r["kind"], "o")
            ax.errorbar(r["cost_ratio"], r[f"{m}_gain"], yerr=r[f"{m}_spread"], fmt="none", ecolor=c,
                        capsize=3, lw=1)
            ax.plot(r["cost_ratio"], r[f"{m}_gain"], mk, ms=8, color=c,
                    mfc=c if r[f"{m}_outside"] else "white", label=r["label"])
            if ax is axes[0]:
                handles.append(Line2D([], [], marker=mk, ls="", ms=7, color=c, label=r["label"]))
        ax.axhline(0, color="0.4", lw=0.8)
        ax.axvline(1, color="0.8", lw=0.8)
        ax.set_xscale("log")
        ax.set(xlabel="cost ratio (x the baseline's; log)", ylabel=f"{m} AP gain", title=f"{m} AP gain vs cost")
    axes[0].figure.suptitle("filled: outside the seed spread; hollow: inside (no win); whiskers: seed spread",
                            fontsize=9)
    axes[-1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return axes


def recall_by_size(table, ax=None, *, title: str = "recall by face size"):
    """Recall per face-size bin (``table``: :func:`tinylib.compare.wider_subset.recall_table`, rows
    the bins, columns ``(half, "faces")`` and ``(half, stage)``): one colour per stage (before
    / after NMS), the test half solid, the tuning half dashed; the number of test-half faces
    per bin under the axis labels. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4), layout="constrained")
    halves = list(dict.fromkeys(table.columns.get_level_values(0)))
    x = np.arange(len(table))
    colours = {}
    for half in halves:
        for stage in [c for c in table[half].columns if c != "faces"]:
            colour = colours.setdefault(stage, f"C{len(colours)}")
            marker = "osD^v"[list(colours).index(stage) % 5]
            ax.plot(x, table[(half, stage)].to_numpy(dtype=float), marker=marker, color=colour,
                    ls="-" if half == halves[0] else "--", alpha=1.0 if half == halves[0] else 0.6,
                    label=f"{stage}, {half} half")
    faces = table[(halves[0], "faces")] if (halves[0], "faces") in table.columns else None
    labels = [f"{b}\n{int(n)} faces" if faces is not None else str(b)
              for b, n in zip(table.index, faces if faces is not None else [0] * len(table))]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set(ylim=(0, 1.02), ylabel="recall", xlabel=f"face size (sqrt(w h)); faces of the {halves[0]} half")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_curves(axes, curves: Mapping[str, Mapping[str, tuple] | W.WiderResult],
                settings: Sequence[str] = W.SETTINGS, styles: Mapping[str, dict] | None = None,
                eval_set: str = "WIDER val", legend: str = "below", fontsize: float = 8):
    """Draw PR curves, one axis per setting: ``curves[label]`` is a :class:`~tinylib.eval.widerface.WiderResult`
    or ``{setting: (precision, recall)}``. The legend shows each curve's VOC AP (a result
    without kept faces in a setting: :data:`~tinylib.eval.widerface.NO_FACES`, no curve), in ``fontsize`` points,
    ``legend="below"`` each axis (outside: it never hides a curve; a figure with
    ``layout="constrained"`` or the notebook's inline display makes room) or ``"inside"``.
    Titles: ``eval_set`` (pass :func:`~tinylib.eval.widerface.subset_label` for a subset; when curves from different
    image sets share an axis, put the set into each label). Returns ``axes``."""
    if legend not in ("below", "inside"):
        raise ValueError(f"legend must be 'below' or 'inside', got {legend!r}")
    styles = styles or {}
    for ax, s in zip(np.atleast_1d(axes), settings):
        for label, per in curves.items():
            style = styles.get(label, {"lw": 1})
            if isinstance(per, W.WiderResult):
                if s not in per.ap:
                    continue
                if not per.n_faces[s]:
                    ax.plot([], [], label=f"{label}: {W.NO_FACES}", **style)
                    continue
                p, r = per.precision[s], per.recall[s]
            elif s in per:
                p, r = per[s]
            else:
                continue
            ax.plot(r, p, label=f"{label} ({voc_ap(r, p):.3f})", **style)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
        ax.set_title(textwrap.fill(f"{eval_set} — {s}", 70), fontsize=max(fontsize + 1, 9))
        ax.grid(alpha=0.3)
        if legend == "below":
            ax.legend(fontsize=fontsize, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                      frameon=False)
        else:
            ax.legend(fontsize=fontsize, loc="lower left")
    return axes


def plot_roc(ax, results: Mapping[str, FD.FDDBResult], kind: str = "discrete",
             styles: Mapping[str, dict] | None = None, max_fp: float | None = None,
             fontsize: float = 8):
    """FDDB's ROC on ``ax``, the benchmark's convention: true positive rate (``kind``
    ``"discrete"`` or ``"continuous"``) against the *number* of false positives, one step
    per score threshold, for each labelled result. The legend gives each curve's last point
    (TPR at its largest FP count, or at ``max_fp``, which also limits the x axis). Returns
    ``ax``."""
    if kind not in ("discrete", "continuous"):
        raise ValueError(f"kind must be 'discrete' or 'continuous', got {kind!r}")
    styles = styles or {}
    right = 0.0
    for label, res in results.items():
        tpr = res.tpr_discrete if kind == "discrete" else res.tpr_continuous
        fp = np.asarray(res.fp, dtype=np.float64)
        if max_fp is not None:
            keep = fp <= max_fp
            fp, tpr = fp[keep], tpr[keep]
        x, y = np.r_[0.0, fp], np.r_[0.0, tpr]  # from the strictest threshold: nothing kept
        end = f"TPR {y[-1]:.3f} at {int(x[-1])} FP" if fp.size else "no detection"
        (line,) = ax.step(x, y, where="post", label=f"{label} ({end})",
                          **styles.get(label, {"lw": 1.5}))
        ax.plot(x[-1:], y[-1:], "o", ms=4, color=line.get_color())  # visible even at 0 FP
        right = max(right, float(x[-1]))
    span = max(float(max_fp) if max_fp is not None else right * 1.05, 1.0)
    ax.set(xlim=(-0.02 * span, span), ylim=(0, 1.02), xlabel="false positives (count)",
           ylabel=f"true positive rate ({kind})")
    ax.set_title(f"FDDB ROC, {kind} score", fontsize=max(fontsize + 1, 9))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=fontsize, loc="lower right")
    return ax
