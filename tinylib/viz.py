"""Static drawings of detection results (matplotlib; no widgets, no kernel needed to view).

* :func:`outcome` -- which detections are true/false positives and which faces are missed,
  with the WIDER matching rule (IoU >= 0.5, ``+1`` pixel convention);
* :func:`draw_outcome` -- the same drawn in three colours on the image: true positives
  green, false positives red, missed faces yellow;
* :func:`draw_boxes_xyxy` -- plain boxes (e.g. all detections on the selfie);
* :func:`draw_sample` / :func:`samples_figure` -- dataset samples ``(image, target)`` with
  their faces (green) and ``ignore`` boxes (magenta, dashed and filled, visible even when a
  few pixels wide), with a legend;
* :func:`figure_image` -- a figure as an embedded JPEG (photos: a fraction of a PNG's size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import box_convert
from .eval import widerface as W

__all__ = ["training_history", "Outcome", "outcome", "draw_outcome", "draw_boxes_xyxy", "draw_positive_windows",
           "OUTCOME_COLORS", "SAMPLE_COLORS", "draw_sample", "samples_figure", "figure_image"]

OUTCOME_COLORS = {"tp": "lime", "fp": "red", "missed": "yellow", "ignored": "grey"}
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
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    kept = np.zeros(len(g), dtype=bool)
    kept[np.arange(len(g)) if kept_idx is None else np.asarray(kept_idx, dtype=np.int64)] = True
    hit = W.match_image(d, g, iou_thresh=iou) if len(d) and len(g) else np.full(len(d), -1)
    label = np.full(len(d), "fp", dtype=object)
    found = np.zeros(len(g), dtype=bool)
    for i, h in enumerate(hit):
        if h < 0:
            continue
        if not kept[h]:
            label[i] = "ignored"
        elif not found[h]:
            label[i] = "tp"
        found[h] = True
    return Outcome(d, label.astype(str), found, kept)


def _rects(ax, xywh, color, lw):
    from matplotlib.patches import Rectangle  # matplotlib only when drawing (heavy import)

    for x, y, w, h in np.asarray(xywh, dtype=np.float64).reshape(-1, 4)[:, :4]:
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=lw))


def draw_outcome(ax, image, out: Outcome, gt_xywh, *, linewidth: float = 0.8, title: str = ""):
    """Draw ``out`` on ``image``: TP green, FP red, missed faces yellow (ignored detections
    grey). Returns the counts."""
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    ax.imshow(image)
    for lab in ("ignored", "fp", "tp"):
        _rects(ax, out.dets[out.label == lab, :4], OUTCOME_COLORS[lab], linewidth)
    _rects(ax, g[out.kept & ~out.found], OUTCOME_COLORS["missed"], linewidth)
    c = out.counts()
    ax.set_title(title or f"{c['tp']} found (green), {c['fp']} false (red), "
                          f"{c['missed']} missed (yellow) of {c['faces']} faces", fontsize=9)
    ax.axis("off")
    return c


def draw_boxes_xyxy(ax, image, boxes, *, color: str = "lime", linewidth: float = 0.6,
                    title: str = ""):
    """Plain ``x1 y1 x2 y2`` boxes on ``image``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ax.imshow(image)
    _rects(ax, box_convert(b, "xyxy", "xywh"), color, linewidth)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


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
    """Plot a per-epoch training history (:func:`tinylib.hr.train.epoch_summary` rows, as in
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
