"""Dense template targets for the Tiny Faces (HR) detector, computed on the model's device.

For a heatmap of ``H x W`` locations at ``stride`` pixels and ``T`` templates (box shapes
``w x h``), the *window* of template ``t`` at location ``(i, j)`` is the box of that shape
centred at

    cx = j * stride + offset,   cy = i * stride + offset      (offset = stride / 2 by default)

in continuous pixel coordinates of the network input (tinylib's box convention,
``tinylib/boxes.py``). :func:`location_centres` is the one place where this is defined;
:func:`template_windows`, :func:`assign_targets` and :func:`decode` all use it, so targets
and decoding agree exactly (the decode round-trip test relies on it).

Labels (Hu & Ramanan, Sec. 5 and supplementary):

* ``1`` positive: IoU of the window with some (non-ignored) face > ``pos_iou`` (0.7);
* ``0`` negative: IoU with every face < ``neg_iou`` (0.3);
* ``-1`` ignored: in between; windows crossing the image border *or the padding* (the mean
  padding of a 500x500 crop counts as border, supplementary "Border cases"); windows that
  overlap an ``ignore`` face by ``neg_iou`` or more (they are neither positive nor negative).

Regression targets are the Faster R-CNN deltas of the best-matching face relative to the
window: ``dx = (gx - ax) / aw``, ``dy = (gy - ay) / ah``, ``dw = log(gw / aw)``,
``dh = log(gh / ah)``.

Online hard-example mining and balanced sampling (:func:`ohem_sample`): locations whose
classification loss is below ``0.03`` are dropped as easy; of the rest, up to 128 positives
and 128 negatives per image are sampled at random.

Memory: the IoU of every window with every face is never materialised. Since the IoU of two
boxes is at most the Jaccard similarity of their *shapes* (Eq. 1 of the paper), a face can
only reach ``neg_iou`` with the windows of templates whose shape similarity reaches
``neg_iou``; each template is compared only with those faces (a handful), which keeps
images with ~1,000 faces cheap.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..boxes import box_convert

__all__ = [
    "POSITIVE",
    "NEGATIVE",
    "IGNORE",
    "location_centres",
    "template_windows",
    "assign_targets",
    "encode_deltas",
    "decode_deltas",
    "ohem_sample",
    "classification_loss",
    "regression_loss",
]

POSITIVE, NEGATIVE, IGNORE = 1, 0, -1


def location_centres(height: int, width: int, stride: int, offset: float | None = None,
                     device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres ``(cy (H,), cx (W,))`` of the heatmap locations in input pixels."""
    off = stride / 2.0 if offset is None else float(offset)
    cy = torch.arange(height, device=device, dtype=dtype) * stride + off
    cx = torch.arange(width, device=device, dtype=dtype) * stride + off
    return cy, cx


def template_windows(sizes_wh: torch.Tensor, height: int, width: int, stride: int,
                     offset: float | None = None) -> torch.Tensor:
    """Windows of every template at every location: ``(T, H, W, 4)`` xyxy.

    ``sizes_wh`` is ``(T, 2)`` of template ``(w, h)`` in input pixels."""
    sizes_wh = torch.as_tensor(sizes_wh, dtype=torch.float32)
    cy, cx = location_centres(height, width, stride, offset, device=sizes_wh.device)
    nt = len(sizes_wh)
    cxcywh = torch.stack([cx.view(1, 1, -1).expand(nt, height, width),
                          cy.view(1, -1, 1).expand(nt, height, width),
                          sizes_wh[:, 0].view(-1, 1, 1).expand(nt, height, width),
                          sizes_wh[:, 1].view(-1, 1, 1).expand(nt, height, width)], dim=-1)
    return box_convert(cxcywh, "cxcywh", "xyxy")


def encode_deltas(gt: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Faster R-CNN deltas ``(dx, dy, dw, dh)`` of boxes ``gt`` w.r.t. ``windows`` (same shape)."""
    aw = windows[..., 2] - windows[..., 0]
    ah = windows[..., 3] - windows[..., 1]
    ax = windows[..., 0] + 0.5 * aw
    ay = windows[..., 1] + 0.5 * ah
    gw = (gt[..., 2] - gt[..., 0]).clamp(min=1e-3)
    gh = (gt[..., 3] - gt[..., 1]).clamp(min=1e-3)
    gx = gt[..., 0] + 0.5 * (gt[..., 2] - gt[..., 0])
    gy = gt[..., 1] + 0.5 * (gt[..., 3] - gt[..., 1])
    return torch.stack([(gx - ax) / aw, (gy - ay) / ah, torch.log(gw / aw), torch.log(gh / ah)],
                       dim=-1)


_MAX_LOG = math.log(1000.0 / 16)  # torchvision's clamp against exp overflow


def decode_deltas(deltas: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_deltas` (``dw, dh`` clamped so ``exp`` cannot overflow)."""
    deltas = deltas.float()
    aw = windows[..., 2] - windows[..., 0]
    ah = windows[..., 3] - windows[..., 1]
    ax = windows[..., 0] + 0.5 * aw
    ay = windows[..., 1] + 0.5 * ah
    cx = deltas[..., 0] * aw + ax
    cy = deltas[..., 1] * ah + ay
    w = torch.exp(deltas[..., 2].clamp(max=_MAX_LOG)) * aw
    h = torch.exp(deltas[..., 3].clamp(max=_MAX_LOG)) * ah
    return box_convert(torch.stack([cx, cy, w, h], dim=-1), "cxcywh", "xyxy")


def _shape_jaccard(sizes_wh: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Eq. 1 similarity between template shapes (T, 2) w,h and box shapes (N, 4) -> (T, N)."""
    bw = (boxes[:, 2] - boxes[:, 0]).clamp(min=0)
    bh = (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    iw = torch.minimum(sizes_wh[:, 0:1], bw[None])
    ih = torch.minimum(sizes_wh[:, 1:2], bh[None])
    inter = iw * ih
    union = (sizes_wh[:, 0] * sizes_wh[:, 1])[:, None] + (bw * bh)[None] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def _window_iou(windows: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU between windows (H, W, 4) and boxes (M, 4) -> (M, H, W)."""
    wx1, wy1, wx2, wy2 = windows.unbind(-1)
    b = boxes[:, :, None, None]
    iw = (torch.minimum(wx2[None], b[:, 2]) - torch.maximum(wx1[None], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(wy2[None], b[:, 3]) - torch.maximum(wy1[None], b[:, 1])).clamp(min=0)
    inter = iw * ih
    area_w = (wx2 - wx1) * (wy2 - wy1)
    area_b = ((boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0))
    union = area_w[None] + area_b[:, None, None] - inter
    return inter / union.clamp(min=1e-12)


@torch.no_grad()
def assign_targets(
    sizes_wh: torch.Tensor,
    boxes: torch.Tensor,
    height: int,
    width: int,
    stride: int = 8,
    *,
    ignore: torch.Tensor | None = None,
    valid: tuple[float, float, float, float] | torch.Tensor | None = None,
    pos_iou: float = 0.7,
    neg_iou: float = 0.3,
    offset: float | None = None,
    ignore_border: bool = True,
    match_best: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels ``(T, H, W)`` int8 in {1, 0, -1} and regression targets ``(T, 4, H, W)``.

    ``sizes_wh``: template ``(w, h)``, ``(T, 2)``; ``boxes``: faces ``(N, 4)`` xyxy in input
    pixels; ``ignore``: ``(N,)`` bool, faces that are neither positive nor negative;
    ``valid``: the ``(x1, y1, x2, y2)`` region of real image pixels (the rest is padding);
    ``None`` means the whole ``width*stride x height*stride`` input is image. Windows that
    leave ``valid`` are ignored (when ``ignore_border``). Regression targets are zero where
    the label is not positive. Runs on the device of ``sizes_wh``.

    ``match_best``: also make each face's best window (over every template and location
    inside ``valid``) positive when its IoU is at least this value, even below ``pos_iou``
    -- the RPN rule (Ren et al.; torchvision's ``allow_low_quality_matches``). At stride 8 a
    20-px template window off-centre by 4 px has IoU 0.49 with its face, so without it the
    tiny templates see a positive only for faces that happen to sit on the grid.
    """
    sizes_wh = torch.as_tensor(sizes_wh, dtype=torch.float32)
    boxes, ignore = _usable_faces(boxes, ignore, sizes_wh.device)
    windows = template_windows(sizes_wh, height, width, stride, offset)  # (T, H, W, 4)
    if ignore_border:
        outside = _outside(windows, valid, float(width * stride), float(height * stride))
    else:
        outside = torch.zeros(windows.shape[:3], dtype=torch.bool, device=windows.device)
    m = _match_windows(sizes_wh, windows, boxes, ignore, outside, neg_iou,
                       track_faces=match_best is not None)
    labels = torch.full(windows.shape[:3], IGNORE, dtype=torch.int8, device=windows.device)
    labels[m.best_iou < neg_iou] = NEGATIVE
    labels[m.best_iou > pos_iou] = POSITIVE
    labels[(labels == NEGATIVE) & (m.ign_iou >= neg_iou)] = IGNORE
    labels[outside] = IGNORE
    if match_best is not None:
        _force_best_windows(labels, m, match_best)
    reg = torch.zeros((*windows.shape[:3], 4), device=windows.device)
    pos = labels == POSITIVE
    if pos.any():
        reg[pos] = encode_deltas(boxes[m.best_idx[pos]], windows[pos])
    return labels, reg.permute(0, 3, 1, 2).contiguous()


def _usable_faces(boxes, ignore, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``boxes`` ``(N, 4)`` float32 and ``ignore`` ``(N,)`` bool on ``device``, degenerate
    boxes (no width or no height) dropped."""
    boxes = torch.as_tensor(boxes, dtype=torch.float32, device=device).reshape(-1, 4)
    if ignore is None:
        ignore = torch.zeros(len(boxes), dtype=torch.bool, device=device)
    else:
        ignore = torch.as_tensor(ignore, dtype=torch.bool, device=device).reshape(-1)
        if len(ignore) != len(boxes):
            raise ValueError(f"ignore has {len(ignore)} entries for {len(boxes)} boxes")
    degenerate = ((boxes[:, 2] - boxes[:, 0]) <= 0) | ((boxes[:, 3] - boxes[:, 1]) <= 0)
    keep = ~degenerate
    return boxes[keep], ignore[keep]


def _outside(windows: torch.Tensor, valid, input_w: float, input_h: float) -> torch.Tensor:
    """``(T, H, W)`` bool: windows leaving ``valid`` (default: the whole input)."""
    if valid is None:
        vx1, vy1, vx2, vy2 = 0.0, 0.0, input_w, input_h
    else:
        vx1, vy1, vx2, vy2 = (float(v) for v in valid)
    eps = 1e-4
    return ((windows[..., 0] < vx1 - eps) | (windows[..., 1] < vy1 - eps)
            | (windows[..., 2] > vx2 + eps) | (windows[..., 3] > vy2 + eps))


class _Matches(NamedTuple):
    best_iou: torch.Tensor  # (T, H, W) best IoU with a real face
    best_idx: torch.Tensor  # (T, H, W) that face
    ign_iou: torch.Tensor  # (T, H, W) best IoU with an ignored face
    face_iou: torch.Tensor  # (N,) each real face's best IoU with a window inside ``valid``
    face_at: torch.Tensor  # (N,) that window's flat index (-1: none)


def _match_windows(sizes_wh, windows, boxes, ignore, outside, neg_iou: float, *,
                   track_faces: bool) -> _Matches:
    """Best face of every window, template by template (only the faces whose shape can reach
    ``neg_iou`` with the template); with ``track_faces``, also each face's best window."""
    T, height, width = windows.shape[:3]
    device = windows.device
    best_iou = torch.zeros((T, height, width), device=device)
    best_idx = torch.zeros((T, height, width), dtype=torch.long, device=device)
    ign_iou = torch.zeros((T, height, width), device=device)
    face_iou = torch.zeros(len(boxes), device=device)
    face_at = torch.full((len(boxes),), -1, dtype=torch.long, device=device)
    if not len(boxes):
        return _Matches(best_iou, best_idx, ign_iou, face_iou, face_at)
    # Only faces whose shape can reach neg_iou with a template can change its labels.
    reach = _shape_jaccard(sizes_wh, boxes) >= neg_iou  # (T, N)
    for t in range(T):
        cand = torch.nonzero(reach[t], as_tuple=False).flatten()
        if cand.numel() == 0:
            continue
        iou = _window_iou(windows[t], boxes[cand])  # (M, H, W)
        real = ~ignore[cand]
        if real.any():
            r_iou = iou[real]
            r_best, r_arg = r_iou.max(dim=0)
            best_iou[t] = r_best
            best_idx[t] = cand[real][r_arg]
            if track_faces:
                inside = r_iou.masked_fill(outside[t][None], -1.0).flatten(1)
                f_best, f_loc = inside.max(dim=1)
                faces = cand[real]
                better = f_best > face_iou[faces]
                face_iou[faces[better]] = f_best[better]
                face_at[faces[better]] = t * height * width + f_loc[better]
        if (~real).any():
            ign_iou[t] = iou[~real].max(dim=0).values
    return _Matches(best_iou, best_idx, ign_iou, face_iou, face_at)


def _force_best_windows(labels: torch.Tensor, m: _Matches, match_best: float) -> None:
    """The RPN rule, in place: each face's best window inside ``valid`` becomes positive
    (matched to that face) when its IoU is at least ``match_best``."""
    chosen = (m.face_at >= 0) & (m.face_iou >= match_best)
    if chosen.any():
        at = m.face_at[chosen]
        labels.view(-1)[at] = POSITIVE
        m.best_idx.view(-1)[at] = torch.nonzero(chosen, as_tuple=False).flatten()


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-element logistic loss (no reduction); ignored entries give 0."""
    target = (labels == POSITIVE).to(logits.dtype)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return torch.where(labels == IGNORE, torch.zeros_like(loss), loss)


@torch.no_grad()
def ohem_sample(
    loss: torch.Tensor,
    labels: torch.Tensor,
    *,
    threshold: float = 0.03,
    num_pos: int = 128,
    num_neg: int = 128,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Online hard mining + balanced sampling for a batch: a bool mask like ``labels``.

    ``loss`` and ``labels`` are ``(B, ...)``. Per image: locations whose loss is below
    ``threshold`` are dropped as easy; among the remaining positives (negatives) at most
    ``num_pos`` (``num_neg``) are kept, chosen uniformly at random — on the device, by
    ranking random keys. ``threshold <= 0`` disables mining; ``num_* < 0`` keeps all."""
    B = labels.shape[0]
    flat_loss = loss.detach().reshape(B, -1).float()
    flat_lab = labels.reshape(B, -1)
    hard = flat_loss >= threshold if threshold > 0 else torch.ones_like(flat_lab, dtype=torch.bool)
    keys = torch.rand(flat_lab.shape, device=labels.device, generator=generator)
    mask = torch.zeros_like(flat_lab, dtype=torch.bool)
    for value, limit in ((POSITIVE, num_pos), (NEGATIVE, num_neg)):
        cand = hard & (flat_lab == value)
        if limit < 0:
            mask |= cand
            continue
        k = min(limit, cand.shape[1])
        if k == 0:
            continue
        score = torch.where(cand, keys, torch.full_like(keys, -1.0))
        top = score.topk(k, dim=1)
        chosen = torch.zeros_like(mask)
        chosen.scatter_(1, top.indices, top.values >= 0)
        mask |= chosen
    return mask.reshape(labels.shape)


def regression_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                    beta: float = 1.0 / 9) -> torch.Tensor:
    """Huber (smooth-L1) loss summed over the 4 deltas of the masked locations.

    ``pred``, ``target``: ``(B, T, 4, H, W)``; ``mask``: ``(B, T, H, W)``. Returns the sum
    (normalise outside)."""
    m = mask.unsqueeze(2).expand_as(pred)
    if not m.any():
        return pred.sum() * 0.0
    return torch.nn.functional.smooth_l1_loss(pred[m].float(), target[m].float(),
                                              beta=beta, reduction="sum")
