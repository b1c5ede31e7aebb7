"""WIDER FACE evaluation with the official MATLAB ``eval_tools`` semantics, vectorised.

What the official toolbox (``evaluation.m`` and friends, Shuo Yang 2015; the copy shipped
with *Finding Tiny Faces*) does, and what :func:`evaluate` reproduces:

1. **Reading** (``read_pred``): one file ``<event>/<stem>.txt`` per val image (image name
   line, box count, then ``x y w h score`` lines). A missing file means no detections
   (the toolbox prints a message and goes on; we log a warning and list it in
   ``WiderResult.missing``). Detections are sorted by score, descending.
2. **Score normalisation** (``norm_score``): min-max over *all* detections of *all* images
   (not per image), ``(s - min) / (max - min)``. The toolbox starts the running max at
   ``realmin('single')`` and the min at ``realmax('single')``, so the arithmetic happens in
   single precision (and all-negative scores keep ``max = realmin``); we do the same. If
   every score is equal the toolbox divides 0 by 0 and every detection is lost (NaN); we
   warn about it.
3. **Matching** (``image_evaluation``), per image, for each detection in score order: IoU
   against every ground-truth face of the image with the ``+1`` pixel convention on
   ``x2 = x + w`` (``boxoverlap``: widths ``x2 - x1 + 1``), take the face with the largest
   IoU (the first one on ties). If that IoU is ``>= 0.5``: a face outside the setting's
   ``gt_list`` (an "ignored" face) makes the detection ignored — neither a true nor a false
   positive; a kept face is marked recalled (a second detection on an already recalled face
   is simply a false positive). Note the match does not look for the best *unrecalled*
   face: it is "best face, whatever its state".
4. **Curves** (``image_pr_info`` + ``dataset_pr_info``): for each threshold
   ``t = 1 - k/1000`` (``k = 1..1000``): proposals = non-ignored detections with normalised
   score ``>= t``, recalled = kept faces hit by a detection with score ``>= t``, summed over
   images; precision = recalled / proposals, recall = recalled / number of kept faces.
   Images without any ground-truth face (or without detections) are skipped: their
   detections count nowhere. Precision is 0/0 = NaN where a threshold has no proposal.
5. **AP** (``wider_plot`` -> ``VOCap``): VOC area under the interpolated curve.

Because the matched face of a detection does not depend on the detections before it, the
result is independent of the order of detections in a file; :func:`evaluate` uses that: one
IoU matrix per image, the face each detection hits, then one ``searchsorted`` over all
thresholds for the whole set (no loop over thresholds).

Subsets: ``evaluate(..., subset=images)`` applies all of the above to those images only —
the ground truth and the keep lists are restricted to them (faces of the other images are
not misses), detections in the other images are dropped (they take no part in the score
normalisation either). The result is then labelled ``"WIDER val subset (N images)"``
(:func:`subset_label`), never ``"WIDER val"``: numbers on a subset are not the benchmark's.

Box convention: everywhere else in tinylib boxes are xyxy without ``+1``. Only this module
applies the benchmark's ``+1`` (``plus_one=True``, the default, as the benchmark does);
notebook 06 shows how much it moves AP.

This module is the protocol only. Elsewhere: the PR-curve drawing
(:func:`tinylib.viz.plot_curves`), the paths of the val photos and samples
(:func:`tinylib.data.widerface.val_image_paths`, :func:`~tinylib.data.widerface.sample_images`),
the file-order port's pitfall and the made-up detections chapter 06 shows it on
(:mod:`tinylib.eval.pitfalls`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from ..boxes import box_convert, box_iou
from ..config import data_file
from ..io import atomic_save, atomic_write_text
from .pr import count_at_least, voc_ap, wider_thresholds

log = logging.getLogger(__name__)

__all__ = [
    "SETTINGS",
    "label_detections",
    "PredictionFormatError",
    "EvalGT",
    "SimpleEvalGT",
    "WiderResult",
    "evaluate",
    "read_predictions",
    "parse_prediction_file",
    "write_predictions",
    "normalize_scores",
    "check_scores",
    "match_image",
    "gt_as_predictions",
    "with_size_setting",
    "ap_by_size",
    "SIZE_SETTING",
    "ceilings",
    "operating_point",
    "operating_curve",
    "published_methods",
    "load_published_curve",
    "published_ap",
    "load_gt",
    "WIDER_VAL_IMAGES",
    "subset_label",
    "read_image_list",
    "NO_FACES",
    "format_ap",
    "ap_table",
]

SETTINGS = ("easy", "medium", "hard")
WIDER_VAL_IMAGES = 3226  # images in the official val set
NO_FACES = "n/a (0 faces)"  # how an AP shows when the setting has no kept face in the images
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".txt")
_F32_REALMIN = np.float32(np.finfo(np.float32).tiny)
_F32_REALMAX = np.float32(np.finfo(np.float32).max)


class PredictionFormatError(ValueError):
    """A prediction file (or in-memory array) is malformed; the message names the file (or
    key), the 1-based line (or row) and what was expected."""


class EvalGT(Protocol):
    """What :func:`evaluate` needs from ground truth (``tinylib.data.widerface.WiderEvalGT``)."""

    images: list[str]
    boxes: Mapping[str, np.ndarray]
    keep: Mapping[str, Mapping[str, np.ndarray]]


@dataclass
class SimpleEvalGT:
    """An in-memory ground truth with the :class:`EvalGT` attributes (tests, synthetic
    cases). ``keep`` defaults to every face kept in every setting."""

    boxes: dict[str, np.ndarray]
    keep: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.boxes = {k: np.asarray(v, dtype=np.float64).reshape(-1, 4) for k, v in self.boxes.items()}
        if not self.images:
            self.images = list(self.boxes)
        for s in SETTINGS:
            if s not in self.keep:
                self.keep[s] = {k: np.arange(len(b)) for k, b in self.boxes.items()}


#: the per-size setting of the bottom-heavy and toolbox chapters: the hard setting's faces of
#: at most 20 px (``sqrt(w h)``, TinyPerson's "tiny" limit), every other face ignored
SIZE_SETTING = ("le20", "hard", 0.0, 20.0)


@dataclass
class _SizedGT:
    images: list[str]
    boxes: Mapping[str, np.ndarray]
    keep: dict[str, Mapping[str, np.ndarray]]


def with_size_setting(gt: EvalGT, name: str = SIZE_SETTING[0], base: str = SIZE_SETTING[1],
                      min_size: float = SIZE_SETTING[2], max_size: float = SIZE_SETTING[3]) -> EvalGT:
    """``gt`` with one more setting ``name``: the faces of setting ``base`` whose absolute
    size ``sqrt(w h)`` (pixels) lies in ``(min_size, max_size]``. **Not an official setting**
    (the benchmark has only easy/medium/hard): it runs the official protocol unchanged, so
    every other face is *ignored* -- a detection whose best face (IoU >= 0.5) is one of them
    is neither a true nor a false positive -- while a detection on no face counts as a false
    positive whatever its size (the benchmark's rule; COCO's area ranges would also drop
    unmatched detections outside the range). ``evaluate(preds, with_size_setting(gt),
    settings=(*SETTINGS, "le20"))``."""
    if base not in gt.keep:
        raise KeyError(f"setting {base!r} not in the ground truth (has {sorted(gt.keep)})")
    if not max_size > min_size >= 0:
        raise ValueError(f"size range ({min_size}, {max_size}] is empty")
    sized = {}
    for key, idx in gt.keep[base].items():
        idx = np.asarray(idx, dtype=np.int64).ravel()
        b = np.asarray(gt.boxes.get(key, np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
        size = np.sqrt(np.clip(b[idx, 2], 0, None) * np.clip(b[idx, 3], 0, None)) if idx.size else np.zeros(0)
        sized[key] = idx[(size > min_size) & (size <= max_size)]
    return _SizedGT(list(gt.images), gt.boxes, {**dict(gt.keep), name: sized})


def ap_by_size(predictions, gt: EvalGT, bins=(0, 10, 20, 40, 80, 1e9), *, base: str = "hard",
               subset: Iterable[str] | None = None):
    """AP of ``predictions`` per face-size bin ``(a, b]`` (``sqrt(w h)`` px) of setting ``base``,
    each bin a :func:`with_size_setting` run of the official protocol (faces outside the bin
    ignored). Returns a DataFrame ``bin, min_size, max_size, faces, ap`` (``ap`` NaN for a bin
    without faces)."""
    import pandas as pd  # heavy import, only for the table

    rows = []
    for a, b in zip(bins[:-1], bins[1:]):
        name = f"{a:g}-{b:g} px" if b < 1e9 else f">{a:g} px"
        res = evaluate(predictions, with_size_setting(gt, name, base, a, b), settings=(name,),
                       subset=subset)
        n = res.n_faces[name]
        rows.append(dict(bin=name, min_size=float(a), max_size=float(b), faces=int(n),
                         ap=float(res.ap[name]) if n else float("nan")))
    return pd.DataFrame(rows)


def spread(items: list, n: int | None) -> list:
    """``n`` items evenly spread over ``items`` (all when ``n`` is None or ``>= len``): a
    fixed sample that covers every event of a file order."""
    if n is None or n >= len(items):
        return list(items)
    idx = sorted({int(round(x)) for x in np.linspace(0, len(items) - 1, int(n))})
    return [items[i] for i in idx]


def subset_label(n_images: int, total: int = WIDER_VAL_IMAGES) -> str:
    """How to name an evaluation on ``n_images`` of the ``total`` val images:
    ``"WIDER val"`` for all of them, else ``"WIDER val subset (N images)"``. Every table,
    plot and scorecard row of a result on part of val uses it."""
    n, total = int(n_images), int(total)
    if total <= 0 or n < 0 or n > total:
        raise ValueError(f"expected 0 <= n_images <= total, got n_images={n}, total={total}")
    if n == total:
        return "WIDER val"
    return f"WIDER val subset ({n:,} image{'' if n == 1 else 's'})"


def read_image_list(path: str | os.PathLike, gt: EvalGT | None = None) -> list[str]:
    """Keys ``"event/stem"`` from a text file with one ``event/name`` or
    ``event/name.jpg`` per line (blank lines and ``#`` comments skipped, duplicates kept
    once). With ``gt``, every image must be in it. A bad line raises ``ValueError`` naming
    the file, the line number and what was expected."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    known = set(gt.images) if gt is not None else None
    keys: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("/")
        stem = parts[-1][:-4] if parts[-1].lower().endswith(".jpg") else parts[-1]
        if (
            len(parts) != 2
            or not parts[0]
            or not stem
            or any(c.isspace() for c in line)
            or "." in stem
        ):
            raise ValueError(
                f"{path}, line {lineno}: expected one image as 'event/name' or "
                f"'event/name.jpg' (e.g. 0--Parade/0_Parade_marchingband_1_465.jpg), got {raw!r}"
            )
        key = f"{parts[0]}/{stem}"
        if known is not None and key not in known:
            raise ValueError(
                f"{path}, line {lineno}: {line} is not a WIDER val image (not in the ground truth)"
            )
        keys.append(key)
    if not keys:
        raise ValueError(f"{path}: expected one image per line ('event/name.jpg'), found none")
    return list(dict.fromkeys(keys))


def load_gt(root=None) -> EvalGT:
    """The official val ground truth via ``tinylib.data.widerface.load_eval_gt``."""
    from ..data.widerface import load_eval_gt  # heavy (torch, pandas): only to read the GT

    return load_eval_gt(root)


# ----------------------------------------------------------------------------- reading


def _key_from_name(name: str) -> str:
    key = name.replace("\\", "/").strip("/")
    for ext in _IMAGE_EXTS:
        if key.lower().endswith(ext):
            return key[: -len(ext)]
    return key


def parse_prediction_file(path: str | os.PathLike) -> tuple[str, np.ndarray]:
    """Read one submission file: ``(name line, float64 (N, 5) x y w h score)``.

    Strict: a count line that is not a non-negative integer, a box line without exactly 5
    numbers, a NaN/infinite value, a negative width or height, fewer or more box lines than
    the count — each raises :class:`PredictionFormatError` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PredictionFormatError(f"{path}: not UTF-8 text ({exc})") from None
    lines = text.splitlines()
    if len(lines) < 2:
        raise PredictionFormatError(
            f"{path}, line {len(lines) + 1}: expected an image name line then a box count line, "
            "file ends early"
        )
    name = lines[0].strip()
    raw_count = lines[1].strip()
    try:
        count_f = float(raw_count)
        if not np.isfinite(count_f) or count_f < 0 or not count_f.is_integer():
            raise ValueError
        count = int(count_f)
    except ValueError:
        raise PredictionFormatError(
            f"{path}, line 2: expected the number of boxes (a non-negative integer), got {raw_count!r}"
        ) from None
    body = lines[2 : 2 + count]
    if len(body) < count:
        raise PredictionFormatError(
            f"{path}, line {len(lines) + 1}: expected {count} box lines (line 2 says so), "
            f"found {len(body)}"
        )
    for j, extra in enumerate(lines[2 + count :], start=3 + count):
        if extra.strip():
            raise PredictionFormatError(
                f"{path}, line {j}: expected no more box lines (line 2 says {count}), got {extra!r}"
            )
    if count == 0:
        return name, np.zeros((0, 5))
    for j, line in enumerate(body, start=3):
        n = len(line.split())
        if n != 5:
            raise PredictionFormatError(
                f"{path}, line {j}: expected 5 numbers 'x y w h score', found {n}: {line!r}"
            )
    try:
        arr = np.array(" ".join(body).split(), dtype=np.float64).reshape(count, 5)
    except ValueError:
        for j, line in enumerate(body, start=3):
            try:
                [float(t) for t in line.split()]
            except ValueError:
                raise PredictionFormatError(
                    f"{path}, line {j}: expected numbers 'x y w h score', got {line!r}"
                ) from None
        raise
    _check_rows(arr, lambda i: f"{path}, line {i + 3}")
    return name, arr


def _check_rows(arr: np.ndarray, where) -> None:
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PredictionFormatError(
            f"{where(i)}: expected finite numbers, got {arr[i].tolist()} (NaN or infinite)"
        )
    neg = (arr[:, 2] < 0) | (arr[:, 3] < 0)
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise PredictionFormatError(
            f"{where(i)}: expected a non-negative width and height, got w={arr[i, 2]:g} h={arr[i, 3]:g}"
        )


def _check_header(path: Path, name: str, key: str) -> None:
    """The first line of ``<event>/<stem>.txt`` names its image: ``stem``, ``stem.jpg`` or
    ``event/stem.jpg`` (any leading folders). Another image is an error (a copied or renamed
    file would otherwise be scored against the wrong ground truth)."""
    if not name:
        return  # the toolbox never reads the name line; an empty one names nothing else
    parts = _key_from_name(name).split("/")
    event, _, stem = key.rpartition("/")
    if parts[-1] != stem or (len(parts) > 1 and event and parts[-2] != event):
        raise PredictionFormatError(
            f"{path}, line 1: the header names image {name!r}, but the file is the "
            f"predictions of {key} (expected {stem!r}, {stem + '.jpg'!r} or "
            f"'{key}.jpg'); write each image's detections to <event>/<image>.txt with the "
            "image's own name on the first line"
        )


def _describe_folder(pred_dir: Path, limit: int = 3) -> str:
    """What a prediction folder holds instead of ``<event>/<stem>.txt`` files."""
    found = []
    top = sorted(pred_dir.glob("*.txt"))
    if top:
        found.append(f"{len(top)} .txt file(s) directly in the folder, not in event folders "
                     f"(e.g. {top[0].name})")
    deeper = sorted(pred_dir.glob("*/*/*.txt"))
    if deeper:
        parents = sorted({p.parent.parent for p in deeper})
        hint = (f"; point at {parents[0]} instead" if len(parents) == 1 else "")
        found.append(f"{len(deeper)} .txt file(s) one level deeper (e.g. "
                     f"{deeper[0].relative_to(pred_dir)}){hint}")
    if not deeper:
        deepest = sorted(pred_dir.glob("*/*/*/**/*.txt"))
        if deepest:
            found.append(f"{len(deepest)} .txt file(s) two or more levels deeper (e.g. "
                         f"{deepest[0].relative_to(pred_dir)})")
    level = sorted(pred_dir.glob("*/*.txt"))
    if level:
        found.append(f"{len(level)} .txt file(s) in event folders, none named after an image "
                     f"evaluated (e.g. {level[0].relative_to(pred_dir)})")
    others = [p for p in pred_dir.rglob("*") if p.is_file() and p.suffix.lower() != ".txt"]
    if others:
        exts = sorted({p.suffix.lower() or "(no extension)" for p in others})
        found.append(f"{len(others)} other file(s) ({', '.join(exts[:limit])})")
    return "; ".join(found) if found else "nothing (the folder is empty)"


def read_predictions(
    pred_dir: str | os.PathLike, images: Iterable[str] | None = None, progress: bool = False
) -> dict[str, np.ndarray]:
    """Predictions from a folder in the submission layout ``<event>/<stem>.txt``.

    With ``images`` (keys ``"event/stem"``) only those files are read and a missing one
    gives an empty array and a warning; when none of them is there, ``FileNotFoundError``
    says where it looked and what the folder holds instead (files one level too deep...).
    Without ``images``, every ``*/*.txt`` file is read. A file whose first line names another
    image is a :class:`PredictionFormatError`."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        what = "is a file" if pred_dir.exists() else "not found"
        raise FileNotFoundError(
            f"prediction folder {pred_dir} {what}; expected a folder with one "
            "<event>/<image>.txt file per image"
        )
    out: dict[str, np.ndarray] = {}
    if images is None:
        paths = sorted(pred_dir.glob("*/*.txt"))
        keys = [f"{p.parent.name}/{p.stem}" for p in paths]
    else:
        keys = list(images)
        paths = [pred_dir / f"{k}.txt" for k in keys]
    missing = []
    for key, path in tqdm(list(zip(keys, paths)), desc="read predictions", disable=not progress):
        if not path.is_file():
            missing.append(key)
            continue
        name, arr = parse_prediction_file(path)
        _check_header(path, name, key)
        out[key] = arr
    if images is not None and keys and not out:
        raise FileNotFoundError(
            f"0 of {len(keys)} prediction files found: looked for <event>/<image>.txt under "
            f"{pred_dir} (e.g. {pred_dir / keys[0]}.txt) and found "
            f"{_describe_folder(pred_dir)}. Point at the folder that holds the event folders"
        )
    if missing:
        log.warning(
            "%d of %d prediction file(s) missing under %s (counted as no detections), e.g. %s",
            len(missing),
            len(keys),
            pred_dir,
            ", ".join(missing[:3]),
        )
    return out


def write_predictions(predictions: Mapping[str, np.ndarray], out_dir: str | os.PathLike) -> Path:
    """Write ``key -> (N, 5)`` predictions in the submission layout (each file atomically)."""
    out_dir = Path(out_dir)
    for key, arr in _validated(predictions).items():
        stem = key.rsplit("/", 1)[-1]
        rows = "".join(
            f"{x:.6g} {y:.6g} {w:.6g} {h:.6g} {s:.9g}\n" for x, y, w, h, s in arr.tolist()
        )
        atomic_write_text(out_dir / f"{key}.txt", f"{stem}\n{len(arr)}\n{rows}")
    return out_dir


def _validated(predictions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, arr in predictions.items():
        a = np.asarray(arr, dtype=np.float64)
        if a.size == 0:
            a = a.reshape(0, 5)
        if a.ndim != 2 or a.shape[1] != 5:
            raise PredictionFormatError(
                f"predictions[{key!r}]: expected an (N, 5) array of x y w h score, got shape {a.shape}"
            )
        _check_rows(a, lambda i, key=key: f"predictions[{key!r}], row {i}")
        out[_key_from_name(str(key))] = a
    return out


# ----------------------------------------------------------------------------- core


def normalize_scores(scores: np.ndarray) -> np.ndarray:
    """The toolbox's ``norm_score`` on all detection scores of the set (see module doc):
    single-precision min-max with the running max starting at ``realmin('single')``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s.copy()
    s32 = s.astype(np.float32)
    hi = np.maximum(_F32_REALMIN, s32.max())
    lo = np.minimum(_F32_REALMAX, s32.min())
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ((s32 - lo) / (hi - lo)).astype(np.float64)
    if hi == lo:
        log.warning(
            "all %d detection scores are equal (%g): the official normalisation divides 0 by 0 "
            "and loses every detection; give the detections distinct scores",
            s.size,
            float(hi),
        )
    return out


def check_scores(scores: np.ndarray, normalize: bool = True) -> list[str]:
    """Warnings about detection scores that make the result misleading (empty when fine):

    - some scores outside ``[0, 1]`` while most lie inside (a stray logit, ``-5`` or
      ``1e30``): with the official min-max normalisation they stretch the range and squeeze
      every other score into a few thresholds; without normalisation (``normalize=False``)
      scores below 0 never count and scores above 1 pass every threshold;
    - with normalisation, a few outliers (at most 1% of at least 20 scores) that span more
      than three quarters of the min-max range.

    :func:`evaluate` logs them; the numbers stay the official ones."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    n = s.size
    if n == 0:
        return []
    out = []
    inside = (s >= 0) & (s <= 1)
    n_out = int(n - inside.sum())
    fix = "check that the detector writes probabilities, and drop or clip the stray scores"
    if normalize:
        fix += ("; if every score is meant to lie in [0, 1], evaluate without normalisation "
                "(tinylib-eval --score-normalisation none, evaluate(..., normalize=False))")
    else:
        fix += ", or use the official min-max normalisation (--score-normalisation minmax)"
    if n_out and inside.sum() > n / 2:
        lo, hi = float(s.min()), float(s.max())
        if normalize:
            effect = (f"the official min-max normalisation maps [{lo:.6g}, {hi:.6g}] to [0, 1], "
                      "so these few scores squeeze all others into a small part of the "
                      "thresholds and can change AP a lot")
        else:
            effect = "without normalisation scores below 0 never count and scores above 1 always do"
        out.append(f"{n_out} of {n} detection scores lie outside [0, 1] (min {lo:.6g}, max "
                   f"{hi:.6g}) while the rest lie inside: {effect}; {fix}")
    elif normalize and n >= 20:
        srt = np.sort(s)
        k = max(1, int(0.01 * n))
        full = srt[-1] - srt[0]
        rest = srt[n - 1 - k] - srt[k]
        if full > 0 and rest < 0.25 * full:
            out.append(
                f"a few outlying detection scores dominate the min-max range of the score "
                f"normalisation: all {n} scores span [{srt[0]:.6g}, {srt[-1]:.6g}], all but the "
                f"{k} lowest and {k} highest span [{srt[k]:.6g}, {srt[n - 1 - k]:.6g}]; the "
                f"official normalisation squeezes the others into a small part of the "
                f"thresholds; check the detector's scores for stray values")
    return out


def match_image(
    pred_xywh: np.ndarray, gt_xywh: np.ndarray, iou_thresh: float = 0.5, plus_one: bool = True
) -> np.ndarray:
    """For each detection, the index of the face it hits (largest IoU, first on ties, IoU
    ``>= iou_thresh``) or -1. Order-independent by construction."""
    n = len(pred_xywh)
    if n == 0 or len(gt_xywh) == 0:
        return np.full(n, -1, dtype=np.int64)
    pred_xyxy = box_convert(np.asarray(pred_xywh, np.float64)[:, :4], "xywh", "xyxy")
    gt_xyxy = box_convert(np.asarray(gt_xywh, np.float64).reshape(-1, 4), "xywh", "xyxy")
    iou = box_iou(pred_xyxy, gt_xyxy, plus_one=plus_one)
    best = iou.argmax(axis=1)
    ok = iou[np.arange(n), best] >= iou_thresh
    return np.where(ok, best, -1).astype(np.int64)


@dataclass
class WiderResult:
    """AP and the 1,000-point curves per setting (official layout: threshold ``k`` is
    ``1 - k/1000``, curves run from the strictest threshold to 0)."""

    ap: dict[str, float]
    precision: dict[str, np.ndarray]
    recall: dict[str, np.ndarray]
    thresholds: np.ndarray
    n_faces: dict[str, int]
    n_images: int
    n_detections: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    settings: tuple[str, ...] = SETTINGS
    label: str = "WIDER val"  # subset_label(n_images, n_gt_images)
    n_gt_images: int | None = None  # images of the ground truth the subset was drawn from
    excluded: list[str] = field(default_factory=list)  # predicted images outside the subset

    @property
    def is_subset(self) -> bool:
        """True when evaluated on part of the ground truth's images."""
        return self.n_gt_images is not None and self.n_images < self.n_gt_images

    def table(self):
        """One row per setting: AP, final recall, precision at that recall, kept faces. A
        setting without kept faces shows its AP as :data:`NO_FACES` (not a 0.0 that reads
        like a failed detector)."""
        import pandas as pd  # heavy import, only for the table

        rows = []
        for s in self.settings:
            rows.append(
                {
                    "setting": s,
                    "ap": self.ap[s] if self.n_faces[s] else NO_FACES,
                    "max_recall": float(np.nanmax(self.recall[s])) if self.recall[s].size else 0.0,
                    "precision_at_max_recall": float(self.precision[s][-1]),
                    "faces": self.n_faces[s],
                }
            )
        return pd.DataFrame(rows).set_index("setting")

    def curve(self, setting: str) -> np.ndarray:
        """``(thresh_num, 2)`` ``[precision, recall]`` — the toolbox's ``pr_cruve``."""
        return np.stack([self.precision[setting], self.recall[setting]], axis=1)

    def save_curves(self, out_dir: str | os.PathLike, name: str = "tinylib") -> list[Path]:
        """Write ``wider_pr_info_<name>_<setting>_val.mat`` (variables ``pr_cruve`` and
        ``legend_name``, as the toolbox does, MATLAB v5, plus ``eval_set`` = :attr:`label`
        and ``n_images``) and a CSV per setting (columns ``threshold,precision,recall,
        eval_set``), atomically. On a subset the legend name carries the label too
        (``"tinylib [WIDER val subset (374 images)]"``), so a plot of it cannot pass for
        the benchmark."""
        import scipy.io  # heavy import, only to write .mat files

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        legend = f"{name} [{self.label}]" if self.is_subset else name
        label_cell = '"' + self.label.replace('"', '""') + '"' if "," in self.label else self.label
        written = []
        for s in self.settings:
            mat = out_dir / f"wider_pr_info_{name}_{s}_val.mat"
            content = {
                "pr_cruve": self.curve(s),
                "legend_name": legend,
                "eval_set": self.label,
                "n_images": self.n_images,
            }
            atomic_save(mat, lambda t, c=content: scipy.io.savemat(t, c))
            csv = out_dir / f"wider_pr_{name}_{s}_val.csv"
            body = "".join(
                f"{t:.3f},{p:.9g},{r:.9g},{label_cell}\n"
                for t, p, r in zip(self.thresholds, self.precision[s], self.recall[s])
            )
            atomic_write_text(csv, "threshold,precision,recall,eval_set\n" + body)
            written += [mat, csv]
        return written

    def __str__(self) -> str:
        return f"{self.label}: " + "  ".join(
            f"{s}: {format_ap(self.ap[s], self.n_faces[s], 4)}" for s in self.settings)


@dataclass
class _Prepared:
    scores: np.ndarray  # raw scores of the evaluated detections
    hit: np.ndarray  # global face index hit by each detection, -1 none
    face_offset: dict[str, int]
    n_faces_total: int
    keys: list[str]
    missing: list[str]
    extra: list[str]
    excluded: list[str] = field(default_factory=list)  # predicted gt images outside subset


def _prepare(predictions, gt: EvalGT, subset, plus_one, iou_thresh, progress) -> _Prepared:
    keys = list(gt.images)
    if subset is not None:
        subset = [_key_from_name(k) for k in subset]
        known = set(keys)
        unknown = [k for k in subset if k not in known]
        if unknown:
            raise KeyError(f"subset names images not in the ground truth: {unknown[:5]}")
        keys = list(dict.fromkeys(subset))
    if isinstance(predictions, (str, os.PathLike)):
        pred_dir = Path(predictions)
        preds = read_predictions(pred_dir, images=keys, progress=progress)
        present = {f"{p.parent.name}/{p.stem}" for p in pred_dir.glob("*/*.txt")}
    else:
        preds = _validated(predictions)
        present = set(preds)
    extra = sorted(present - set(gt.images))
    # predictions for ground-truth images outside the subset: dropped, counted nowhere
    excluded = sorted((present & set(gt.images)) - set(keys)) if subset is not None else []
    if excluded:
        log.info("%d predicted image(s) outside the subset dropped", len(excluded))
    if extra:
        log.warning(
            "%d prediction(s) for images not in the ground truth (not evaluated), e.g. %s",
            len(extra),
            ", ".join(extra[:3]),
        )
    missing = [k for k in keys if k not in preds]
    if missing and not isinstance(predictions, (str, os.PathLike)):
        log.warning(
            "no predictions for %d image(s) (counted as no detections), e.g. %s",
            len(missing),
            ", ".join(missing[:3]),
        )
    scores, hits, offsets = [], [], {}
    offset = 0
    for key in tqdm(keys, desc="match", disable=not progress):
        g = np.asarray(gt.boxes[key], dtype=np.float64).reshape(-1, 4)
        offsets[key] = offset
        p = preds.get(key)
        if p is not None and len(p) and len(g):  # the toolbox skips images without gt
            h = match_image(p, g, iou_thresh=iou_thresh, plus_one=plus_one)
            scores.append(p[:, 4])
            hits.append(np.where(h >= 0, h + offset, -1))
        offset += len(g)
    return _Prepared(
        scores=np.concatenate(scores) if scores else np.zeros(0),
        hit=np.concatenate(hits) if hits else np.zeros(0, dtype=np.int64),
        face_offset=offsets,
        n_faces_total=offset,
        keys=keys,
        missing=missing,
        extra=extra,
        excluded=excluded,
    )


def _kept_mask(gt: EvalGT, prep: _Prepared, setting: str) -> tuple[np.ndarray, int]:
    kept = np.zeros(prep.n_faces_total, dtype=bool)
    count = 0
    keep = gt.keep[setting]
    for key in prep.keys:
        idx = np.asarray(keep.get(key, ()), dtype=np.int64).ravel()
        count += idx.size  # the toolbox's count_face: length(keep_index)
        if idx.size:
            kept[prep.face_offset[key] + idx] = True
    return kept, count


def _counts(scores, hit, kept, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """(proposals, recalled) at each threshold."""
    hit_kept = np.zeros(hit.shape, dtype=bool)
    valid = hit >= 0
    hit_kept[valid] = kept[hit[valid]]
    ignored = valid & ~hit_kept
    proposals = count_at_least(scores[~ignored], thresholds)
    # a kept face is recalled from the highest score among the detections hitting it
    best = np.full(kept.size, -np.inf)
    np.maximum.at(best, hit[hit_kept], np.nan_to_num(scores[hit_kept], nan=-np.inf))
    recalled = count_at_least(best[np.isfinite(best)], thresholds)
    return proposals, recalled


def evaluate(
    predictions,
    gt: EvalGT | None = None,
    settings: Sequence[str] = SETTINGS,
    plus_one: bool = True,
    iou_thresh: float = 0.5,
    thresh_num: int = 1000,
    subset: Iterable[str] | None = None,
    normalize: bool = True,
    progress: bool = False,
    label: str | None = None,
) -> WiderResult:
    """Evaluate predictions on WIDER FACE val with the official semantics (module doc).

    ``predictions``: dict ``"event/stem" -> (N, 5)`` of ``x y w h score`` or a folder in the
    submission layout. ``gt``: an :class:`EvalGT` (default: the official val ground truth
    from the data root). ``subset``: evaluate only these images (``"event/stem"`` or
    ``"event/name.jpg"``, e.g. ``tinylib.data.registry.present_images("val")``): ground
    truth and keep lists restricted to them, detections in other images dropped; the result
    is labelled :func:`subset_label` ``(N, len(gt.images))`` unless ``label`` says
    otherwise. ``normalize=False`` skips the score normalisation (scores must then already
    lie in [0, 1]). Scores that look wrong (:func:`check_scores`) are logged as warnings."""
    if gt is None:
        gt = load_gt()
    prep = _prepare(predictions, gt, subset, plus_one, iou_thresh, progress)
    for message in check_scores(prep.scores, normalize):
        log.warning("%s", message)
    scores = normalize_scores(prep.scores) if normalize else prep.scores
    thresholds = wider_thresholds(thresh_num)
    ap, prec, rec, n_faces = {}, {}, {}, {}
    for s in settings:
        if s not in gt.keep:
            raise KeyError(f"setting {s!r} not in the ground truth (has {sorted(gt.keep)})")
        kept, count = _kept_mask(gt, prep, s)
        proposals, recalled = _counts(scores, prep.hit, kept, thresholds)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec[s] = recalled / proposals
            rec[s] = recalled / count if count else np.zeros(thresh_num)
        ap[s] = voc_ap(rec[s], prec[s])
        n_faces[s] = count
    return WiderResult(
        ap=ap,
        precision=prec,
        recall=rec,
        thresholds=thresholds,
        n_faces=n_faces,
        n_images=len(prep.keys),
        n_detections=int(prep.scores.size),
        missing=prep.missing,
        extra=prep.extra,
        settings=tuple(settings),
        label=label if label is not None else subset_label(len(prep.keys), len(gt.images)),
        n_gt_images=len(gt.images),
        excluded=prep.excluded,
    )


def operating_point(
    predictions, gt: EvalGT, min_score: float, setting: str = "hard", subset=None, **kw
) -> tuple[float, float]:
    """``(precision, recall)`` keeping detections with *raw* score ``>= min_score`` (no
    normalisation): the single point a score threshold gives, for the explorer widget."""
    prep = _prepare(predictions, gt, subset, kw.get("plus_one", True), kw.get("iou_thresh", 0.5), False)
    kept, count = _kept_mask(gt, prep, setting)
    proposals, recalled = _counts(prep.scores, prep.hit, kept, np.array([min_score], dtype=float))
    p = float(recalled[0] / proposals[0]) if proposals[0] else float("nan")
    r = float(recalled[0] / count) if count else 0.0
    return p, r


def operating_curve(
    predictions, gt: EvalGT, thresholds, setting: str = "hard", subset=None, **kw
) -> tuple[np.ndarray, np.ndarray]:
    """``(precision, recall)`` arrays, one entry per *raw* score threshold of ``thresholds``
    (detections with score ``>= t`` kept, no normalisation), with the protocol's matching and
    ignore rules for ``setting``: :func:`operating_point` at many thresholds at once.
    Precision is NaN where no detection is kept."""
    prep = _prepare(predictions, gt, subset, kw.get("plus_one", True), kw.get("iou_thresh", 0.5), False)
    kept, count = _kept_mask(gt, prep, setting)
    t = np.asarray(thresholds, dtype=float)
    proposals, recalled = _counts(prep.scores, prep.hit, kept, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(proposals > 0, recalled / np.maximum(proposals, 1), np.nan)
    recall = recalled / count if count else np.zeros(t.size)
    return precision, recall


# ----------------------------------------------------------------------------- ceilings


def gt_as_predictions(gt: EvalGT, subset=None, seed: int = 0) -> dict[str, np.ndarray]:
    """Every ground-truth face as a detection. Scores are distinct random numbers (a
    constant score would be lost by the official normalisation, 0/0). Faces with a negative
    width or height cannot be written as a valid detection and are left out."""
    rng = np.random.default_rng(seed)
    keys = list(gt.images) if subset is None else [_key_from_name(k) for k in subset]
    out = {}
    for k in keys:
        b = np.asarray(gt.boxes[k], dtype=np.float64).reshape(-1, 4)
        b = b[(b[:, 2] >= 0) & (b[:, 3] >= 0)]
        s = rng.uniform(0.5, 1.0, size=(len(b), 1))
        out[k] = np.hstack([b, s])
    return out


def label_detections(dets_xywh, gt_xywh, kept_idx=None, *, iou: float = 0.5,
                     plus_one: bool = True):
    """The WIDER labelling of one image's detections, the one place it is written (the
    drawings of :mod:`tinylib.viz` and :mod:`tinylib.widgets` both use it): ``(labels, found,
    kept)``.

    ``labels`` (N,) str per detection (``x y w h score`` rows, any order): taken in
    descending score order, a detection whose best face (IoU ``>= iou``) is outside
    ``kept_idx`` is ``"ignored"``, the first on a kept face ``"tp"``, a second one on the
    same face and one on no face ``"fp"``. ``found`` (M,) bool: the face is hit by some
    detection; ``kept`` (M,) bool: the face is in ``kept_idx`` (default all faces)."""
    d = np.asarray(dets_xywh, dtype=np.float64).reshape(-1, 5)
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    kept = np.zeros(len(g), dtype=bool)
    kept[np.arange(len(g)) if kept_idx is None else np.asarray(kept_idx, dtype=np.int64)] = True
    hit = (match_image(d, g, iou_thresh=iou, plus_one=plus_one) if len(d) and len(g)
           else np.full(len(d), -1))
    label = np.full(len(d), "fp", dtype=object)
    found = np.zeros(len(g), dtype=bool)
    for i in np.argsort(-d[:, 4], kind="stable"):
        h = hit[i]
        if h < 0:
            continue
        if not kept[h]:
            label[i] = "ignored"
        elif not found[h]:
            label[i] = "tp"
        found[h] = True
    return label.astype(str), found, kept


def ceilings(gt: EvalGT | None = None, **kw) -> dict:
    """AP of the ground truth evaluated as predictions, per setting, with the reasons it
    falls short of 1: faces that cannot be hit at all (non-positive ``+1`` width/height,
    e.g. WIDER val's ``w = -2`` box) and faces shadowed by an identical/overlapping face
    that the ``argmax`` picks first. Returns ``{"ap": {...}, "unreachable": {...},
    "result": WiderResult}``."""
    if gt is None:
        gt = load_gt()
    kw.setdefault("normalize", True)
    preds = gt_as_predictions(gt, subset=kw.pop("subset", None))
    res = evaluate(preds, gt, subset=list(preds), **kw)
    plus_one = kw.get("plus_one", True)
    unreachable = {}
    for s in res.settings:
        n_bad = 0
        for key in preds:
            g = np.asarray(gt.boxes[key], dtype=np.float64).reshape(-1, 4)
            if not len(g):
                continue
            h = match_image(preds[key], g, plus_one=plus_one)
            keep = np.asarray(gt.keep[s].get(key, ()), dtype=np.int64)
            n_bad += int((~np.isin(keep, h)).sum())  # no face's own box reaches it
        unreachable[s] = n_bad
    return {"ap": dict(res.ap), "unreachable": unreachable, "result": res}


# ----------------------------------------------------------------------------- published


def _curves_dir(root=None) -> Path:
    if root is not None:
        return Path(root) / "widerface" / "pr_curves"
    return data_file("widerface/pr_curves")


def published_methods(split: str = "Val", setting_class: str = "setting_int", root=None) -> list[str]:
    """Methods whose curves ship with the tiny-faces copy of the toolbox."""
    d = _curves_dir(root) / split / setting_class
    return sorted(p.name for p in d.iterdir() if p.is_dir())


def load_published_curve(
    method: str = "hr_res101", setting: str = "hard", split: str = "Val",
    setting_class: str = "setting_int", root=None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(precision, recall)`` from ``wider_pr_info_<method>_<setting>[_val].mat`` (MATLAB v5
    via SciPy, v7.3 via h5py; variable ``pr_cruve``, columns precision, recall)."""
    d = _curves_dir(root) / split / setting_class / method
    suffix = "_val" if split.lower() == "val" else ""
    path = d / f"wider_pr_info_{method}_{setting}{suffix}.mat"
    if not path.is_file():
        raise FileNotFoundError(f"published curve not found: {path}")
    import h5py  # only for MATLAB v7.3 curve files (HDF5)

    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            arr = np.asarray(f["pr_cruve"], dtype=np.float64).T  # MATLAB is column-major
    else:
        import scipy.io  # heavy import, only for MATLAB v5 curve files

        arr = np.asarray(scipy.io.loadmat(path)["pr_cruve"], dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{path}: expected pr_cruve of shape (N, 2), got {arr.shape}")
    return arr[:, 0], arr[:, 1]


def published_ap(method: str = "hr_res101", settings=SETTINGS, **kw) -> dict[str, float]:
    """The toolbox's AP (``VOCap(recall, precision)``) of a published curve, per setting."""
    out = {}
    for s in settings:
        p, r = load_published_curve(method, s, **kw)
        out[s] = voc_ap(r, p)
    return out


# ----------------------------------------------------------------------------- display


def format_ap(ap: float, n_faces: int, digits: int = 3) -> str:
    """An AP for people: ``"0.523"``, or :data:`NO_FACES` when the setting has no kept face
    in the images evaluated (its AP is undefined; ``evaluate`` stores 0.0)."""
    return f"{ap:.{digits}f}" if n_faces else NO_FACES


def ap_table(results: Mapping[str, WiderResult], digits: int = 3, detections: bool = True):
    """AP per setting of several results (rows: their labels), formatted by
    :func:`format_ap`, plus the number of detections; for showing, not computing."""
    import pandas as pd  # heavy import, only for the table

    rows = {}
    for label, r in results.items():
        rows[label] = {s: format_ap(r.ap[s], r.n_faces[s], digits) for s in r.settings}
        if detections:
            rows[label]["detections"] = r.n_detections
    return pd.DataFrame.from_dict(rows, orient="index")
