"""Windows cut from scenes: :func:`sample_windows` (positives centred on faces rescaled to the
study's face size, random / shifted / wrong-size negatives), :class:`WindowSet`,
:func:`context_mask` (what a tight template may see) and :func:`window_grid` (a picture of
windows)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from .scenes import Scene
from .specs import StudySpec

__all__ = ["WindowSet", "sample_windows", "plan_windows", "cut_windows", "context_mask", "window_grid", "torch_threads"]

@contextmanager
def torch_threads(n: int | None):
    """Use ``n`` CPU threads inside the block (``None``: leave as is), then restore."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass
class WindowSet:
    """Windows ``uint8 (N, 3, H, W)`` with labels ``(N,)`` (1 = face of the target size
    centred) and ``kind`` (``pos``, ``random``, ``shifted``, ``wrong_size``)."""

    images: torch.Tensor
    labels: torch.Tensor
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict:
        return pd.Series(self.kind).value_counts().to_dict()


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0)
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _half(x: torch.Tensor) -> torch.Tensor:
    """2x2 average of ``(..., H, W)`` (an odd last row/column is repeated)."""
    if x.shape[-2] % 2:
        x = torch.cat([x, x[..., -1:, :]], dim=-2)
    if x.shape[-1] % 2:
        x = torch.cat([x, x[..., -1:]], dim=-1)
    return (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) * 0.25


def _crop_many(scene: Scene, windows: np.ndarray, native_hw, out_hw) -> torch.Tensor:
    """Crop windows ``(K, 3)`` = ``(cx, cy, s)`` of one scene: each covers ``native_hw / s``
    image pixels around ``(cx, cy)``, is resampled to ``native_hw`` (the face now has the
    target size) and then interpolated to ``out_hw`` (template resolution). Outside the
    image = the image's mean colour. Returns ``uint8 (K, 3, *out_hw)``.

    Windows shrunk by ``s <= 1/2`` are cut from a 2x2-average pyramid level (``2^l`` with
    ``s * 2^l`` in ``(1/2, 1]``), so the bilinear resampling needs at most 2x2 samples per
    output pixel instead of up to ``(1/s)^2`` — the same area-averaged result, many times
    cheaper for real images whose faces are much larger than the study's."""
    img = torch.from_numpy(np.ascontiguousarray(scene.image)).permute(2, 0, 1).contiguous().float()
    mean = img.mean(dim=(1, 2), keepdim=True)
    w = torch.from_numpy(np.asarray(windows, dtype=np.float32).reshape(-1, 3))
    hh, hw = native_hw[0] / w[:, 2] / 2, native_hw[1] / w[:, 2] / 2
    boxes = torch.stack([torch.zeros_like(hh), w[:, 0] - hw, w[:, 1] - hh, w[:, 0] + hw, w[:, 1] + hh], 1)
    max_level = max(0, int(math.log2(max(1, min(img.shape[1:])))) - 1)
    levels = np.clip(np.floor(np.log2(1.0 / w[:, 2].double().numpy())), 0, max_level).astype(int)
    crops = torch.empty((len(w), 3, *native_hw))
    level_img = (img - mean)[None]
    for lvl in range(int(levels.max(initial=0)) + 1):
        if lvl > 0:
            level_img = _half(level_img)
        sel = torch.from_numpy(np.flatnonzero(levels == lvl))
        if len(sel):
            crops[sel] = roi_align(level_img, boxes[sel], output_size=tuple(native_hw),
                                   spatial_scale=0.5 ** lvl, sampling_ratio=-1, aligned=True)
    if tuple(out_hw) != tuple(native_hw):
        crops = F.interpolate(crops, size=tuple(out_hw), mode="bilinear", align_corners=False,
                              antialias=out_hw[0] < native_hw[0])
    return (crops + mean).round().clamp(0, 255).to(torch.uint8)


def sample_windows(scenes: Sequence[Scene], spec: StudySpec, n_pos: int, rng,
                   neg_per_pos: int | None = None) -> WindowSet:
    """Windows for ``spec``: ``n_pos`` positives and ``neg_per_pos * n_pos`` negatives.

    Positive: a face rescaled so ``sqrt(h*w)`` matches the target (x U(0.95, 1.05)),
    centred up to 8% of the face size off the window centre. Negatives: half at random
    positions/scales, a quarter centred 0.6-1.0 face sizes off a face ("shifted"), a quarter
    on a face at 2x or 0.5x the target size ("wrong_size"); every negative's template box
    overlaps every face of ``Scene.avoid`` by IoU < 0.3.

    Positives come from ``Scene.boxes`` within ``spec.scale_range`` (for real WIDER scenes
    :func:`real_scenes` puts there only faces at least as large as the target, so they are
    only ever shrunk). Window pixels past the image border take the image's mean colour.
    The crops run with one CPU thread. (:func:`plan_windows` + :func:`cut_windows`.)"""
    neg_per_pos = spec.neg_per_pos if neg_per_pos is None else neg_per_pos
    plan = plan_windows(scenes, spec.face_hw, n_pos, rng, neg_per_pos, spec.scale_range)
    return cut_windows(scenes, plan, spec.native_crop_hw, spec.crop_hw)


def plan_windows(scenes: Sequence[Scene], face_hw, n_pos: int | None, rng, neg_per_pos: int,
                 scale_range=(0.2, 5.0)) -> list[tuple]:
    """Where the windows of :func:`sample_windows` are cut: a list of ``(scene index, cx, cy,
    scale, label, kind)`` (positives first). ``n_pos=None``: **every** face of the scenes
    within ``scale_range`` once, in scene order (each with its own jitter), instead of
    ``n_pos`` faces drawn with replacement."""
    rng = np.random.default_rng(rng)
    th, tw = face_hw
    target = math.sqrt(th * tw)
    lo, hi = scale_range
    faces = []  # (scene index, box, scale)
    for si, sc in enumerate(scenes):
        for b in sc.boxes:
            s = target / math.sqrt(max((b[2] - b[0]) * (b[3] - b[1]), 1e-9))
            if lo <= s <= hi:
                faces.append((si, b, s))
    if not faces:
        raise ValueError(
            f"no face can be rescaled to {tuple(face_hw)} within scale_range {tuple(scale_range)} "
            f"({sum(len(s.boxes) for s in scenes)} faces in {len(scenes)} scenes)"
        )
    scales = np.array([f[2] for f in faces])

    def template_box(cx, cy, s):
        return np.array([cx - tw / s / 2, cy - th / s / 2, cx + tw / s / 2, cy + th / s / 2])

    def is_negative(si, cx, cy, s):
        return bool(np.all(_iou_one(template_box(cx, cy, s), scenes[si].avoid) < 0.3))

    plan = []  # (scene, cx, cy, s, label, kind)
    every = n_pos is None
    n_pos = len(faces) if every else n_pos
    for i in range(n_pos):
        si, b, s = faces[i] if every else faces[rng.integers(len(faces))]
        s *= rng.uniform(0.95, 1.05)
        fw, fh = b[2] - b[0], b[3] - b[1]
        cx = (b[0] + b[2]) / 2 + rng.uniform(-0.08, 0.08) * fw
        cy = (b[1] + b[3]) / 2 + rng.uniform(-0.08, 0.08) * fh
        plan.append((si, cx, cy, s, 1, "pos"))
    n_neg = neg_per_pos * n_pos
    kinds = ["random"] * (n_neg - 2 * (n_neg // 4)) + ["shifted"] * (n_neg // 4) + ["wrong_size"] * (n_neg // 4)
    for kind in kinds:
        for _attempt in range(50):
            if kind == "random":
                si = int(rng.integers(len(scenes)))
                s = float(scales[rng.integers(len(scales))])
                hgt, wid = scenes[si].image.shape[:2]
                cx, cy = rng.uniform(0, wid), rng.uniform(0, hgt)
            else:
                si, b, s = faces[rng.integers(len(faces))]
                fw, fh = b[2] - b[0], b[3] - b[1]
                cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
                if kind == "shifted":
                    ang = rng.uniform(0, 2 * np.pi)
                    mag = rng.uniform(0.6, 1.0)
                    cx, cy = cx + mag * fw * np.cos(ang), cy + mag * fh * np.sin(ang)
                else:
                    s = s * (2.0 if rng.random() < 0.5 else 0.5)
            if is_negative(si, cx, cy, s):
                break
        else:  # crowded scenes: fall back to a random window that is surely negative
            kind = "random"
            for _try in range(100_000):
                si = int(rng.integers(len(scenes)))
                s = float(scales[rng.integers(len(scales))])
                hgt, wid = scenes[si].image.shape[:2]
                cx, cy = rng.uniform(0, wid), rng.uniform(0, hgt)
                if is_negative(si, cx, cy, s):
                    break
            else:
                raise RuntimeError("could not place a negative window: the scenes are covered by faces")
        plan.append((si, cx, cy, s, 0, kind))
    return plan


def cut_windows(scenes: Sequence[Scene], plan: Sequence[tuple], native_hw, out_hw,
                out: np.ndarray | None = None) -> WindowSet:
    """Cut the windows of ``plan`` (:func:`plan_windows`): ``native_hw`` image pixels (at the
    window's scale) interpolated to ``out_hw``. ``out``: an ``uint8 (N, 3, *out_hw)`` array
    (e.g. a memory map) to write the pixels into instead of a new tensor."""
    images = torch.from_numpy(out) if out is not None else torch.zeros(
        (len(plan), 3, *out_hw), dtype=torch.uint8)
    by_scene: dict[int, list[int]] = {}
    for i, p in enumerate(plan):
        by_scene.setdefault(p[0], []).append(i)
    with torch_threads(1):  # small per-scene ops: extra threads only cost (a lot on a busy machine)
        for si, idx in by_scene.items():
            images[idx] = _crop_many(scenes[si], np.array([plan[i][1:4] for i in idx]),
                                     tuple(native_hw), tuple(out_hw))
    labels = torch.tensor([p[4] for p in plan], dtype=torch.float32)
    return WindowSet(images, labels, np.array([p[5] for p in plan]))


def context_mask(crop_hw, template_hw, margin: float) -> torch.Tensor:
    """``float (H, W)``: 1 inside the centred face box grown by ``margin`` of its size on
    each side, 0 outside (what a tight template is allowed to see)."""
    H, W = crop_hw
    th, tw = template_hw[0] * (1 + 2 * margin), template_hw[1] * (1 + 2 * margin)
    ys = torch.arange(H, dtype=torch.float32) + 0.5
    xs = torch.arange(W, dtype=torch.float32) + 0.5
    iny = (ys - H / 2).abs() <= th / 2
    inx = (xs - W / 2).abs() <= tw / 2
    return (iny[:, None] & inx[None, :]).float()


def window_grid(windows: WindowSet, n: int = 8, mask: torch.Tensor | None = None,
                rng=0) -> np.ndarray:
    """An ``uint8`` image: ``n`` positives (top row) above ``n`` negatives, optionally blanked
    outside ``mask`` (what a tight template sees), 2 px gaps — for ``plt.imshow``."""
    rng = np.random.default_rng(rng)
    rows = []
    for label in (1, 0):
        idx = np.flatnonzero(windows.labels.numpy() == label)
        idx = rng.choice(idx, min(n, len(idx)), replace=False)
        ims = windows.images[idx].float()
        if mask is not None:
            ims = ims * mask + 127.5 * (1 - mask)
        ims = F.pad(ims, (1, 1, 1, 1), value=255)
        rows.append(torch.cat(list(ims), dim=2))
    width = max(r.shape[2] for r in rows)
    rows = [F.pad(r, (0, width - r.shape[2]), value=255) for r in rows]
    return torch.cat(rows, dim=1).permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
