"""Measuring the GAN detector: proposals alone vs re-scored (official WIDER protocol), and
super-resolution quality on held-apart real faces.

* :func:`detection_table` -- easy / medium / hard AP of the proposals and of each re-scored
  variant, on exactly the images given (:func:`tinylib.eval.widerface.evaluate` with
  ``subset=``; label it with :func:`~tinylib.eval.widerface.subset_label`).
* :func:`ranking_by_size` -- how well a score separates the proposals that hit a face (IoU
  >= 0.5, the benchmark's criterion, ``+1`` convention) from the rest, per proposal size:
  ROC AUC and the precision of the top 100 -- the re-scorer's job, measured directly.
* :func:`confident_misses` -- the best-scored proposals that hit no face: what fills the top of
  a score's ranking.
* :func:`held_apart_faces` -- high-resolution crops of real val faces large enough that the
  ``hr_size`` crop is a true down-sample of the photo (``margin * max(w, h) >= hr_size``), and
  their bicubic x4 low-resolution copies: faces the generator never saw.
* :func:`sr_quality` -- PSNR / SSIM (luma), RGB PSNR and colour error of bicubic, SR (``G1``) and SR + refinement
  (``G2``) against the real high-resolution crops.

The scorecard rows of the shipped tables these measurements fill (``gan_wider_subset``,
``gan_sr``, ``gan_wider_ablation``) are the comparison's: :mod:`tinylib.compare.gan_rescoring`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..boxes import box_iou
from ..eval import widerface as W
from .crops import crop, downsample, windows
from .detector import GANDetector
from .metrics import bicubic_up, channel_bias, delta_e, psnr, ssim
from .model import from_unit, to_unit

__all__ = ["detection_table", "ranking_by_size", "confident_misses", "held_apart_faces", "sr_quality",
           "sr_examples"]


def detection_table(predictions: dict[str, dict[str, np.ndarray]], gt, keys) -> pd.DataFrame:
    """One row per ``{label: {image key: WIDER rows}}``: easy / medium / hard AP on ``keys``."""
    rows = {}
    for label, preds in predictions.items():
        res = W.evaluate({k: preds.get(k, np.zeros((0, 5))) for k in keys}, gt, subset=list(keys))
        rows[label] = {s: res.ap[s] for s in W.SETTINGS}
    return pd.DataFrame.from_dict(rows, orient="index")


def _auc(hit: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    pos, neg = int(hit.sum()), int((~hit).sum())
    if not pos or not neg:
        return float("nan")
    r = pd.Series(score).rank(method="average").to_numpy()
    return float((r[hit].sum() - pos * (pos + 1) / 2) / (pos * neg))


def ranking_by_size(proposals: dict[str, np.ndarray], scores: dict[str, dict[str, np.ndarray]],
                    gt, keys, *, bins=(0, 20, 50, 1e9), top: int = 100) -> pd.DataFrame:
    """Per proposal-size bin (``sqrt(w h)`` px) and per score (``{name: {key: (N,)}}``, aligned
    with ``proposals[key]`` rows xyxy[+score]): the number of proposals, the share that hit a
    face, the ROC AUC and the precision of the ``top`` best-scored -- over all of ``keys``."""
    hit, size, sc = [], [], {n: [] for n in scores}
    for k in keys:
        p = np.asarray(proposals[k], np.float64).reshape(len(proposals[k]), -1)[:, :4]
        g = np.asarray(gt.boxes[k], np.float64).reshape(-1, 4)
        g = g[(g[:, 2] > 0) & (g[:, 3] > 0)]
        hit.append(W.match_image(np.c_[p[:, :2], p[:, 2:] - p[:, :2]], g, iou_thresh=0.5) >= 0)
        size.append(np.sqrt(np.clip(p[:, 2] - p[:, 0], 0, None) * np.clip(p[:, 3] - p[:, 1], 0, None)))
        for n in scores:
            sc[n].append(np.asarray(scores[n][k], np.float64).reshape(-1))
    hit, size = np.concatenate(hit), np.concatenate(size)
    rows = []
    edges = list(bins)
    for lo, hi in [(edges[0], edges[-1]), *zip(edges[:-1], edges[1:])]:
        sel = (size > lo) & (size <= hi) if (lo, hi) != (edges[0], edges[-1]) else np.ones_like(hit)
        label = "all" if (lo, hi) == (edges[0], edges[-1]) else (
            f"{int(lo)}-{int(hi)} px" if hi < 1e9 else f">{int(lo)} px")
        for n, v in sc.items():
            s = np.concatenate(v)[sel]
            h = hit[sel]
            order = np.argsort(-s, kind="stable")[:top]
            rows.append({"size": label, "score": n, "proposals": int(sel.sum()),
                         "hit share": float(h.mean()) if len(h) else float("nan"),
                         "auc": _auc(h, s), f"precision@{top}": float(h[order].mean()) if len(order) else float("nan")})
    return pd.DataFrame(rows).set_index(["size", "score"])


def confident_misses(proposals: dict[str, np.ndarray], scores: dict[str, np.ndarray], gt, keys,
                     n: int = 16) -> pd.DataFrame:
    """The ``n`` best-scored proposals (rows xyxy[+score], ``scores[key]`` aligned) that hit
    no face at IoU >= 0.5: ``key``, the box, the score and the best IoU with a face."""
    rows = []
    for k in keys:
        p = np.asarray(proposals[k], np.float64).reshape(len(proposals[k]), -1)[:, :4]
        g = np.asarray(gt.boxes[k], np.float64).reshape(-1, 4)
        g = g[(g[:, 2] > 0) & (g[:, 3] > 0)]
        if not len(p):
            continue
        xyxy = np.c_[g[:, :2], g[:, :2] + g[:, 2:]]
        iou = box_iou(p, xyxy, plus_one=True).max(1) if len(g) else np.zeros(len(p))
        for i in np.flatnonzero(iou < 0.5):
            rows.append({"key": k, "x1": p[i, 0], "y1": p[i, 1], "x2": p[i, 2], "y2": p[i, 3],
                         "score": float(scores[k][i]), "iou": float(iou[i])})
    df = pd.DataFrame(rows, columns=["key", "x1", "y1", "x2", "y2", "score", "iou"])
    return df.sort_values("score", ascending=False, kind="stable").head(n).reset_index(drop=True)


def held_apart_faces(dataset, *, n: int = 200, hr_size: int = 64, margin: float = 2.0,
                     scale: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lr, hr)`` 0..255 crops of up to ``n`` real faces (evenly spread over ``dataset``, a
    :class:`~tinylib.data.widerface.WiderFaceDataset` of photos not trained on), each face's
    context window at least ``hr_size`` px in the photo."""
    picks = []
    for i in range(len(dataset)):
        t = dataset.target(i)
        b = t["boxes"][~t["ignore"]]
        big = margin * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) >= hr_size
        picks += [(i, box) for box in b[big]]
    if not picks:
        raise ValueError(f"no face large enough for {hr_size} px crops at margin {margin}")
    picks = W.spread(picks, n)
    hrs, cache = [], {}
    for i, box in picks:
        if i not in cache:
            cache = {i: torch.as_tensor(np.ascontiguousarray(dataset[i][0]))}
        hrs.append(crop(cache[i], windows(box[None], margin), hr_size))
    hr = torch.cat(hrs).round().clamp(0, 255)
    return downsample(hr, scale).round(), hr


@torch.no_grad()
def _generate(model: GANDetector, lr: torch.Tensor, batch: int = 256):
    model.eval()
    srs, refs = [], []
    for i in range(0, len(lr), batch):
        sr, refined = model.generator(to_unit(lr[i:i + batch]))
        srs.append(from_unit(sr).float())
        refs.append(from_unit(refined).float() if refined is not None else None)
    sr = torch.cat(srs)
    refined = torch.cat(refs) if refs and refs[0] is not None else None
    return sr, refined


def sr_quality(model: GANDetector, lr: torch.Tensor, hr: torch.Tensor) -> pd.DataFrame:
    """Per output (bicubic / SR / refined, one row each; no "refined" row without a refinement
    sub-network) against ``hr``: mean PSNR (dB) and SSIM on luma (``psnr``, ``ssim``, the SR
    literature's), PSNR over RGB (``psnr_rgb``), the mean CIE76 colour difference
    (``delta_e``) and the mean signed error per channel (``bias_r``, ``bias_g``, ``bias_b``,
    0..255 units) -- the colour that luma hides."""
    sr, refined = _generate(model, lr)
    outs = {"bicubic": bicubic_up(lr, model.config["scale"]).round(), "sr": sr}
    if refined is not None:
        outs["refined"] = refined
    rows = {}
    for k, v in outs.items():
        bias = channel_bias(v, hr)
        rows[k] = {"psnr": float(psnr(v, hr).mean()), "ssim": float(ssim(v, hr).mean()),
                   "psnr_rgb": float(psnr(v, hr, y_channel=False).mean()),
                   "delta_e": float(delta_e(v, hr).mean()),
                   **{f"bias_{c}": float(b) for c, b in zip("rgb", bias)}}
    return pd.DataFrame(rows).T


def sr_examples(model: GANDetector, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
    """The images of the super-resolution figure: low-res input (enlarged by pixel
    replication), bicubic, SR, refined (when there is a refinement) and the real HR."""
    s = model.config["scale"]
    sr, refined = _generate(model, lr)
    out = {"low-res input": lr.repeat_interleave(s, -1).repeat_interleave(s, -2),
           "bicubic": bicubic_up(lr, s).round(), "SR (G1)": sr}
    if refined is not None:
        out["refined (G2)"] = refined
    out["real high-res"] = hr
    return out
