"""Crops of proposals with context, their low-resolution copies, box-regression targets, and
the training set of real faces and the proposal stage's false positives (Bai et al., Sec. 3.5,
4.2; boxes in the library's xyxy convention, :mod:`tinylib.boxes`).

* :func:`windows` -- the crop window of a box enlarged by the context margin ``m``: a square
  of side ``m * max(w, h)`` on the box centre (square, so a resized crop keeps the face's
  shape; the paper enlarges "the crop window by a factor m" without more detail).
* :func:`crop` -- the windows cut out of an image and resized to ``size x size`` with
  ``torchvision.ops.roi_align`` (averaging, so a large window is area-downsampled; outside
  the image is zero, i.e. mid-grey in ``[-1, 1]`` after :func:`tinylib.gan.model.to_unit`
  of 127.5 -- see ``pad``).
* :func:`downsample` -- the paper's low-resolution input: bicubic down-sampling by ``scale``
  (with anti-aliasing) of the high-resolution crop.
* :func:`encode` / :func:`decode` -- Fast R-CNN box offsets ``((gx - px) / pw, (gy - py) / ph,
  log(gw / pw), log(gh / ph))`` of a ground-truth box ``g`` from a proposal ``p``, scaled by
  :data:`REG_WEIGHTS` (torchvision's 10, 10, 5, 5).
* :func:`build_crop_set` -- the training crops: faces = proposals of IoU >= ``pos_iou`` with a
  face plus jittered ground-truth boxes (so faces the proposal stage missed are seen too);
  non-faces = proposals of IoU < ``neg_iou`` (0.5: whatever the benchmark counts as a false
  positive) with every face and outside the ignore boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

__all__ = ["REG_WEIGHTS", "windows", "crop", "downsample", "encode", "decode", "CropSet",
           "build_crop_set", "image_crops"]

REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_CLAMP = float(np.log(1000.0 / 16))


def windows(boxes, margin: float) -> np.ndarray:
    """Square windows of side ``margin * max(w, h)`` centred on ``boxes`` ``(N, 4)`` xyxy."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if margin <= 0:
        raise ValueError(f"context margin must be positive, got {margin}")
    c = (b[:, :2] + b[:, 2:]) / 2
    half = margin * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / 2
    half = np.maximum(half, 0.5)
    return np.concatenate([c - half[:, None], c + half[:, None]], 1).astype(np.float32)


def crop(image: torch.Tensor, wins, size: int, pad: float = 127.5) -> torch.Tensor:
    """``(N, 3, size, size)`` float crops (0..255) of ``image`` (``(3, H, W)`` or ``(H, W, 3)``
    uint8/float) at the windows ``wins`` ``(N, 4)`` xyxy; outside the image is ``pad``."""
    img = torch.as_tensor(image)
    if img.ndim != 3:
        raise ValueError(f"crop: expected one image (3 dims), got shape {tuple(img.shape)}")
    if img.shape[0] != 3 and img.shape[-1] == 3:
        img = img.permute(2, 0, 1)
    img = img.float() - pad
    w = torch.as_tensor(np.asarray(wins, np.float32)).reshape(-1, 4)
    if not len(w):
        return torch.zeros(0, 3, size, size)
    rois = torch.cat([torch.zeros(len(w), 1), w], 1)
    # a window larger than ``size`` px is averaged (2 x 2 samples per output pixel at least)
    ratio = max(2, int(np.ceil(float((w[:, 2] - w[:, 0]).max()) / size)))
    out = torchvision.ops.roi_align(img[None], rois, (size, size), spatial_scale=1.0,
                                    sampling_ratio=min(ratio, 8), aligned=True)
    return out + pad


def downsample(hr: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """The low-resolution copy of ``hr`` ``(N, 3, S, S)``: bicubic, anti-aliased, ``S / scale``."""
    s = hr.shape[-1] // scale
    return F.interpolate(hr, size=(s, s), mode="bicubic", align_corners=False,
                         antialias=True).clamp(0, 255)


def encode(gt, proposals) -> np.ndarray:
    """Regression targets ``(N, 4)`` of ``gt`` boxes from ``proposals`` (both xyxy)."""
    g = np.asarray(gt, np.float32).reshape(-1, 4)
    p = np.asarray(proposals, np.float32).reshape(-1, 4)
    pw, ph = np.maximum(p[:, 2] - p[:, 0], 1e-3), np.maximum(p[:, 3] - p[:, 1], 1e-3)
    gw, gh = np.maximum(g[:, 2] - g[:, 0], 1e-3), np.maximum(g[:, 3] - g[:, 1], 1e-3)
    wx, wy, ww, wh = REG_WEIGHTS
    return np.stack([wx * ((g[:, 0] + g[:, 2]) - (p[:, 0] + p[:, 2])) / 2 / pw,
                     wy * ((g[:, 1] + g[:, 3]) - (p[:, 1] + p[:, 3])) / 2 / ph,
                     ww * np.log(gw / pw), wh * np.log(gh / ph)], 1).astype(np.float32)


def decode(offsets, proposals) -> np.ndarray:
    """The boxes ``(N, 4)`` xyxy the offsets of :func:`encode` move ``proposals`` to."""
    t = np.asarray(offsets, np.float32).reshape(-1, 4)
    p = np.asarray(proposals, np.float32).reshape(-1, 4)
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    cx, cy = (p[:, 0] + p[:, 2]) / 2, (p[:, 1] + p[:, 3]) / 2
    wx, wy, ww, wh = REG_WEIGHTS
    cx, cy = cx + t[:, 0] / wx * pw, cy + t[:, 1] / wy * ph
    w = pw * np.exp(np.minimum(t[:, 2] / ww, _CLAMP))
    h = ph * np.exp(np.minimum(t[:, 3] / wh, _CLAMP))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)


@dataclass
class CropSet:
    """High-resolution crops ``hr`` ``(N, 3, S, S)`` uint8, their face labels ``label``
    ``(N,)`` (1 face, 0 non-face), regression targets ``reg`` ``(N, 4)`` (zero for non-faces),
    the box each was cut around ``box`` and its source image ``image_id``."""

    hr: torch.Tensor
    label: torch.Tensor
    reg: torch.Tensor
    box: np.ndarray
    image_id: list

    def __len__(self) -> int:
        return len(self.label)

    def counts(self) -> dict:
        n_face = int(self.label.sum())
        return {"faces": n_face, "non_faces": len(self) - n_face}

    @staticmethod
    def concat(parts: list[CropSet]) -> CropSet:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no crops: every image gave neither a face nor a non-face")
        return CropSet(torch.cat([p.hr for p in parts]), torch.cat([p.label for p in parts]),
                       torch.cat([p.reg for p in parts]), np.concatenate([p.box for p in parts]),
                       sum((list(p.image_id) for p in parts), []))


def _iou(a, b) -> np.ndarray:
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float32)
    return torchvision.ops.box_iou(torch.as_tensor(a, dtype=torch.float32),
                                   torch.as_tensor(b, dtype=torch.float32)).numpy()


def image_crops(image, faces, proposals, *, ignore=None, image_id="", hr_size: int = 64,
                margin: float = 2.0, pos_iou: float = 0.5, neg_iou: float = 0.5,
                jitter: int = 1, max_neg: int | None = 20, min_face: float = 6.0,
                rng: np.random.Generator | None = None) -> CropSet:
    """The training crops of one image (see :func:`build_crop_set`). ``faces`` ``(F, 4)``,
    ``proposals`` ``(P, 4)`` or ``(P, 5)`` (a score column is ignored), ``ignore`` ``(I, 4)``:
    xyxy. Faces smaller than ``min_face`` px (``sqrt(w h)``) are not used as positives."""
    rng = rng or np.random.default_rng(0)
    faces = np.asarray(faces, np.float32).reshape(-1, 4)
    sizes = np.sqrt(np.clip(faces[:, 2] - faces[:, 0], 0, None) * np.clip(faces[:, 3] - faces[:, 1], 0, None))
    faces = faces[sizes >= min_face]
    props = np.asarray(proposals, np.float32).reshape(len(proposals), -1)[:, :4] \
        if len(proposals) else np.zeros((0, 4), np.float32)
    ign = np.asarray(ignore if ignore is not None else np.zeros((0, 4)), np.float32).reshape(-1, 4)
    boxes, targets, labels = [], [], []
    if len(props):
        iou = _iou(props, faces)
        best = iou.max(1) if len(faces) else np.zeros(len(props))
        arg = iou.argmax(1) if len(faces) else np.zeros(len(props), int)
        pos = best >= pos_iou
        boxes.append(props[pos])
        targets.append(encode(faces[arg[pos]], props[pos]) if pos.any() else np.zeros((0, 4)))
        labels.append(np.ones(pos.sum()))
        neg = best < neg_iou
        if len(ign):
            neg &= _iou(props, ign).max(1) < neg_iou
        neg_idx = np.flatnonzero(neg)
        if max_neg is not None and len(neg_idx) > max_neg:
            neg_idx = np.sort(rng.choice(neg_idx, max_neg, replace=False))
        boxes.append(props[neg_idx])
        targets.append(np.zeros((len(neg_idx), 4)))
        labels.append(np.zeros(len(neg_idx)))
    for _ in range(jitter):  # ground-truth faces, shifted and rescaled like proposals
        if not len(faces):
            break
        w, h = faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1]
        d = rng.normal(0, 0.08, (len(faces), 4)).astype(np.float32)
        jit = faces + d * np.stack([w, h, w, h], 1)
        jit[:, 2:] = np.maximum(jit[:, 2:], jit[:, :2] + 1)
        keep = np.diag(_iou(jit, faces)) >= pos_iou
        boxes.append(jit[keep])
        targets.append(encode(faces[keep], jit[keep]))
        labels.append(np.ones(keep.sum()))
    box = np.concatenate(boxes).astype(np.float32) if boxes else np.zeros((0, 4), np.float32)
    hr = crop(torch.as_tensor(np.asarray(image)), windows(box, margin), hr_size).round()
    return CropSet(hr.clamp(0, 255).to(torch.uint8),
                   torch.as_tensor(np.concatenate(labels) if labels else np.zeros(0), dtype=torch.float32),
                   torch.as_tensor(np.concatenate(targets) if targets else np.zeros((0, 4)), dtype=torch.float32),
                   box, [image_id] * len(box))


def build_crop_set(samples, *, progress: bool = False, seed: int = 0, **kw) -> CropSet:
    """:func:`image_crops` over ``samples``: an iterable of ``(image_id, image, faces,
    ignore, proposals)``; keywords as :func:`image_crops`. Deterministic for a ``seed``."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    parts = [image_crops(image, faces, props, ignore=ign, image_id=key, rng=rng, **kw)
             for key, image, faces, ign, props in tqdm(samples, desc="crops", disable=not progress)]
    return CropSet.concat(parts)
