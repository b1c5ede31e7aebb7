"""Section 3 of *Finding Tiny Faces* as small, repeatable experiments: context (Fig. 4),
foveal descriptors (Fig. 5) and template resolution (Fig. 7) for **one fixed face size**.

The paper asks "what is the best way to find faces of a fixed size (25x20, height x width)?"
and answers it with scanning-window detectors: a fully convolutional network whose heatmap
value at ``(x, y)`` scores a fixed-size face centred there. We ask the same question on
*windows*: crops centred on a candidate position, scored by the network's output at the
crop centre (= one pixel of the heatmap).

Pieces
------
* :class:`StudySpec` — one experimental condition: target face size ``face_hw`` (in the
  test image), template resolution ``resolution`` (the paper's sigma: the image is
  interpolated by sigma, so the template sees faces of ``sigma * face_hw``), context
  (``"tight"``: everything outside the face box + a small margin is blanked, so the
  effective receptive field is the object extent; ``"loose"``: the full window, several
  times the face, reaches the output), the feature ``layers`` read at the centre
  (several = the multi-layer "foveal"/hypercolumn descriptor, one = last layer only) and the
  training budget.
* :func:`sample_windows` — positives centred on faces rescaled to exactly ``face_hw``
  (the paper rescales training images so faces match the template), negatives drawn at
  random positions plus hard ones (shifted off a face, or a face of the wrong size).
  Faces are first resampled to ``face_hw`` and only *then* interpolated by sigma, so a 2x
  template sees no more detail than the 1x one (exactly the situation of the paper's
  "2X upsampled (interpolated) test image").
* :class:`StudyNet` — a small FCN (``arch="tiny"``, CPU-friendly) or torchvision ResNet-18
  stages (``arch="resnet18"``, random init, for a GPU), with the centre read-out over one or
  several stages; :func:`analytic_receptive_field` / :func:`effective_receptive_field`
  measure what each model can see.
* :func:`train_classifier` — a compact generic training loop (device/AMP from
  :func:`tinylib.config.runtime`, tqdm switchable) returning a history DataFrame.
* :func:`window_ap` — average precision over a window set (VOC AP via
  :func:`tinylib.eval.pr.voc_ap`). This is *window-level* AP (test windows at a fixed
  1:``test_neg_per_pos`` positive:negative ratio), not the WIDER FACE protocol; only
  differences between conditions are meaningful.
* :func:`study_data` — the scenes the windows are cut from, chosen in one place: **real
  WIDER FACE images** (train windows from ``WIDER_train``, test windows from ``WIDER_val``;
  :func:`real_scenes`, faces picked by :func:`usable_faces`) when the data root holds them
  (:data:`tinylib.data.sources.WIDER_IMAGES`), else the **synthetic world**
  (:func:`render_scenes`, the embedded default). It says which (:class:`StudyData`), and the
  scorecard notes repeat it (:meth:`StudyData.note`).
* :func:`run_studies` — train and test each condition over several seeds (each seed draws
  its own training windows and initialisation; the test windows are fixed); returns a table.
* :func:`describe_gain`, :func:`record_comparison`, :func:`record_gain` — the verdict (sign
  against the paper, inside or outside the seed spread) and the scorecard rows.
* :func:`context_specs`, :func:`foveal_specs`, :func:`resolution_specs` — the standard
  conditions, sized by quick mode (:func:`budget`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import config
from .eval.pr import voc_ap

log = logging.getLogger(__name__)

__all__ = [
    "StudySpec",
    "WindowSet",
    "Scene",
    "budget",
    "scenes_from_dataset",
    "scenes_from_root",
    "render_scenes",
    "study_scenes",
    "StudyData",
    "study_data",
    "usable_faces",
    "real_scenes",
    "window_grid",
    "sample_windows",
    "context_mask",
    "StudyNet",
    "build_model",
    "analytic_receptive_field",
    "effective_receptive_field",
    "balanced_batches",
    "train_classifier",
    "predict",
    "window_ap",
    "run_study",
    "run_studies",
    "torch_threads",
    "context_specs",
    "foveal_specs",
    "resolution_specs",
    "describe_gain",
    "record_comparison",
    "record_gain",
    "SMALL_FACE",
    "LARGE_FACE",
]

SMALL_FACE = (25, 20)  # the paper's "small" face, height x width
LARGE_FACE = (250, 200)  # the paper's "large" face, height x width

_MEAN, _STD = 0.5, 0.25  # input normalisation of uint8 windows: (x / 255 - mean) / std


# --------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class StudySpec:
    """One condition of a fixed-size face study (see the module docstring).

    ``face_hw``: target face size (h, w) in the test image. ``resolution``: template
    resolution sigma (the template is built for ``sigma * face_hw``). ``context_factor``:
    window side / face side, in test-image pixels (the same image region for every sigma).
    ``context``: ``"loose"`` or ``"tight"`` (blank outside the face box grown by
    ``tight_margin`` on each side). ``layers``: stages read at the centre (``"s1"`` ..
    ``"s5"``, strides 2 .. 32)."""

    face_hw: tuple[int, int] = SMALL_FACE
    resolution: float = 1.0
    context: str = "loose"
    context_factor: float = 3.0
    tight_margin: float = 0.1
    layers: tuple[str, ...] = ("s2", "s3", "s4")
    arch: str = "tiny"
    width: int = 8
    steps: int = 60
    batch_size: int = 16
    lr: float = 2e-3
    n_train_pos: int = 128
    n_test_pos: int = 96
    neg_per_pos: int = 3
    test_neg_per_pos: int = 4
    scale_range: tuple[float, float] = (0.2, 5.0)

    def __post_init__(self):
        if self.context not in ("tight", "loose"):
            raise ValueError(f"context must be 'tight' or 'loose', got {self.context!r}")
        if self.resolution <= 0:
            raise ValueError(f"resolution must be > 0, got {self.resolution}")
        if not self.layers:
            raise ValueError("layers must name at least one stage")
        bad = [name for name in self.layers if name not in _STAGES]
        if bad:
            raise ValueError(f"unknown layers {bad}; expected some of {list(_STAGES)}")

    @property
    def template_hw(self) -> tuple[int, int]:
        """Face size the template is built for: ``round(sigma * face_hw)``."""
        return (round(self.face_hw[0] * self.resolution), round(self.face_hw[1] * self.resolution))

    @property
    def native_crop_hw(self) -> tuple[int, int]:
        """Window size in test-image pixels (even numbers)."""
        return tuple(int(2 * math.ceil(self.context_factor * s / 2)) for s in self.face_hw)

    @property
    def crop_hw(self) -> tuple[int, int]:
        """Window size the network sees (native window interpolated by sigma)."""
        return tuple(max(8, round(s * self.resolution)) for s in self.native_crop_hw)

    def data_key(self) -> tuple:
        """Conditions with the same key share the same sampled windows."""
        return (self.face_hw, self.resolution, self.context_factor, self.n_train_pos,
                self.n_test_pos, self.neg_per_pos, self.test_neg_per_pos, self.scale_range)

    def plan_key(self) -> tuple:
        """Conditions with the same key cut the same windows (same faces, positions, scales),
        possibly at different resolutions: the data key without the resolution."""
        key = self.data_key()
        return key[:1] + key[2:]


def budget() -> dict:
    """Sizes of the studies in quick mode (CPU, seconds) and full mode (GPU): model, steps,
    windows, seeds, the "large" face (quick mode stands in 64x52 for 250x200 to keep the
    windows small), context factors, the real WIDER images read per split
    (``n_train_images``/``n_test_images``, ``None`` = all with usable faces) and the synthetic
    scenes rendered per size.

    Five seeds in both modes: with two, a standard deviation is little more than the gap
    between two numbers, and a gain cannot be judged against it."""
    return config.pick(
        dict(arch="tiny", width=8, steps=60, batch_size=16, lr=3e-3, n_train_pos=192,
             n_test_pos=192, seeds=(0, 1, 2, 3, 4), large_face=(64, 52), small_context=3.0,
             large_context=1.6, n_train_images=60, n_test_images=40, n_train_scenes=40,
             n_test_scenes=30, image_size=(384, 288), persons={"small": 12, "large": 6},
             workers=1, threads=1),
        dict(arch="resnet18", width=64, steps=2000, batch_size=64, lr=1e-3, n_train_pos=4000,
             n_test_pos=1000, seeds=(0, 1, 2, 3, 4), large_face=LARGE_FACE, small_context=6.0,
             large_context=1.6, n_train_images=None, n_test_images=None, n_train_scenes=400,
             n_test_scenes=150, image_size=(1024, 768), persons={"small": 30, "large": 4},
             workers=os.cpu_count() or 1, threads=None),
    )


def study_scenes(size: str, seed: int = 0, progress: bool = False,
                 source: str = "auto") -> tuple[list, list]:
    """``(train scenes, test scenes)`` of :func:`study_data` (real WIDER images when present,
    else synthetic scenes); use :func:`study_data` to also learn which."""
    data = study_data(size, seed=seed, source=source, progress=progress)
    return data.train, data.test


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


def _base(**overrides) -> StudySpec:
    b = budget()
    keys = ("arch", "width", "steps", "batch_size", "lr", "n_train_pos", "n_test_pos")
    return replace(StudySpec(**{k: b[k] for k in keys}), **overrides)


def _face(size: str) -> tuple[tuple[int, int], float]:
    b = budget()
    if size == "small":
        return SMALL_FACE, b["small_context"]
    if size == "large":
        return tuple(b["large_face"]), b["large_context"]
    raise ValueError(f"size must be 'small' or 'large', got {size!r}")


def context_specs(size: str) -> dict[str, StudySpec]:
    """Fig. 4: tight (object extent) versus loose (window of ``context_factor`` x the face)."""
    face, ctx = _face(size)
    return {c: _base(face_hw=face, context_factor=ctx, context=c) for c in ("tight", "loose")}


def foveal_specs(size: str) -> dict[str, StudySpec]:
    """Fig. 5: hypercolumn of s2+s3+s4 ("foveal") versus s4 only, both with loose context."""
    face, ctx = _face(size)
    return {
        "foveal": _base(face_hw=face, context_factor=ctx, layers=("s2", "s3", "s4")),
        "last_only": _base(face_hw=face, context_factor=ctx, layers=("s4",)),
    }


def resolution_specs(size: str) -> dict[str, StudySpec]:
    """Fig. 7: 1x versus 2x templates for small faces, 1x versus 0.5x for large ones.

    The window covers the same image region in both; the context factor is smaller than in
    the context study to keep the 2x windows affordable on a CPU."""
    face, _ = _face(size)
    if size == "small":
        return {
            "1x": _base(face_hw=face, context_factor=2.0, resolution=1.0),
            "2x": _base(face_hw=face, context_factor=2.0, resolution=2.0),
        }
    ctx = budget()["large_context"]
    return {
        "1x": _base(face_hw=face, context_factor=ctx, resolution=1.0),
        "0.5x": _base(face_hw=face, context_factor=ctx, resolution=0.5),
    }


# --------------------------------------------------------------------------- scenes
@dataclass
class Scene:
    """An image (``uint8 H x W x 3``) with the face boxes usable as positives (``boxes``,
    ``float (N, 4)`` xyxy) and every face-like box a negative must stay away from
    (``avoid``: the positives plus ignored / occluded / invalid faces; default = ``boxes``)."""

    image: np.ndarray
    boxes: np.ndarray
    image_id: str = ""
    avoid: np.ndarray | None = None

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.avoid = self.boxes if self.avoid is None else np.asarray(self.avoid, np.float64).reshape(-1, 4)


def scenes_from_dataset(dataset, limit: int | None = None) -> list[Scene]:
    """Scenes from any detection dataset yielding ``(image, target)`` samples; boxes marked
    ``ignore`` are not positives but are still avoided by negatives."""
    out = []
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(n):
        image, target = dataset[i]
        boxes = np.asarray(target["boxes"], dtype=np.float64).reshape(-1, 4)
        ignore = np.asarray(target.get("ignore", np.zeros(len(boxes), bool)), dtype=bool)
        keep = ~ignore & (boxes[:, 2] > boxes[:, 0] + 1) & (boxes[:, 3] > boxes[:, 1] + 1)
        out.append(Scene(np.asarray(image), boxes[keep], str(target.get("image_id", i)), avoid=boxes))
    return out


def _render_one(task) -> Scene:
    from .data import synthetic

    seed, i, width, height, dist, n_persons = task
    rng = np.random.default_rng([seed, i])
    image, faces, _ = synthetic.render_scene(rng, width, height, size_dist=dist, n_persons=n_persons)
    xywh = faces[["x", "y", "w", "h"]].to_numpy(np.float64).reshape(-1, 4)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    good = (faces["invalid"].to_numpy() == 0) & (faces["occlusion"].to_numpy() < 2)
    return Scene(image, xyxy[good], f"scene_{seed}_{i}", avoid=xyxy)


def render_scenes(n: int, face_height: float, seed: int = 0, image_size=(512, 384),
                  sigma: float = 0.25, n_persons: int | None = None, workers: int = 1,
                  progress: bool = False) -> list[Scene]:
    """``n`` scenes of the synthetic world (:func:`tinylib.data.synthetic.render_scene`)
    whose face heights are log-normal around ``face_height`` (so faces need little
    rescaling to reach the study's size), with ``n_persons`` persons each (default: the
    generator's choice). Positives: faces that are valid and not heavily occluded
    (occlusion code < 2); all faces are avoided by negatives. Scene ``i`` is rendered with
    the generator seeded ``(seed, i)``: reproducible, and the same for any ``workers``
    (``> 1`` renders in that many processes)."""
    from tqdm.auto import tqdm

    width, height = image_size
    dist = {"kind": "lognormal", "median": float(face_height), "sigma": float(sigma)}
    tasks = [(seed, i, width, height, dist, n_persons) for i in range(n)]
    bar = dict(total=n, desc="scenes", disable=not progress, leave=False)
    if workers <= 1 or n <= 1:
        return [_render_one(t) for t in tqdm(tasks, **bar)]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(workers, n), mp_context=mp.get_context("spawn")) as pool:
        return list(tqdm(pool.map(_render_one, tasks, chunksize=max(1, n // (4 * workers))), **bar))


def scenes_from_root(root, split: str, limit: int | None = None) -> list[Scene]:
    """Scenes of a data root in the WIDER FACE layout (e.g. a synthetic world on disk)."""
    from .data.widerface import WiderFaceDataset

    return scenes_from_dataset(WiderFaceDataset(root=root, split=split), limit)


# --------------------------------------------------------------------------- real faces
MAX_DOWNSCALE = 5.0  # real positives: faces between 1x and 5x the study's face size
ASPECT_RANGE = (0.6, 2.5)  # real positives: face box height / width


def usable_faces(faces: pd.DataFrame, face_hw) -> np.ndarray:
    """Which rows of a WIDER face table (:func:`tinylib.data.widerface.load_faces`) may be
    positives for a study of ``face_hw`` faces (``bool`` array).

    A usable face is valid (``invalid == 0``), not degenerate, not heavily occluded
    (``occlusion < 2``; partial occlusion is kept, as in the paper's training set), has a
    plausible box shape (height / width within :data:`ASPECT_RANGE`, which drops the < 1 %
    of slivers) and is **at least as large as the study's face and at most**
    :data:`MAX_DOWNSCALE` **times larger** (by ``sqrt(h * w)``): rescaling it to ``face_hw``
    then only ever shrinks it (the 0.95-1.05 jitter aside), so a positive never shows
    detail that was not in the image; and its context window stays mostly inside the image.
    Blur, expression, illumination and pose are not used (blurred and atypical faces are
    part of the task)."""
    w = faces["w"].to_numpy(np.float64)
    h = faces["h"].to_numpy(np.float64)
    side = np.sqrt(np.clip(w, 0, None) * np.clip(h, 0, None))
    target = math.sqrt(face_hw[0] * face_hw[1])
    aspect = h / np.maximum(w, 1e-9)
    return ((faces["invalid"].to_numpy() == 0) & ~faces["degenerate"].to_numpy(bool)
            & (faces["occlusion"].to_numpy() < 2) & (w > 0) & (h > 0)
            & (aspect >= ASPECT_RANGE[0]) & (aspect <= ASPECT_RANGE[1])
            & (side >= target) & (side <= MAX_DOWNSCALE * target))


def real_scenes(face_hw, split: str, root=None, limit: int | None = None, seed: int = 0,
                progress: bool = False) -> list[Scene]:
    """Scenes of real WIDER FACE images of ``split`` (``"train"`` or ``"val"``) under the data
    root ``root``: only images present in ``widerface/WIDER_{split}/images/`` that hold at
    least one usable face (:func:`usable_faces` for ``face_hw``); ``limit`` of them, drawn
    with ``seed`` (kept in file order), or all. ``Scene.boxes`` = the usable faces,
    ``Scene.avoid`` = every annotated face of the image (invalid, occluded, too small or too
    large ones too), so no negative is centred on a face of the target size. Windows that
    reach past the image border are filled with the image's mean colour (:func:`sample_windows`)."""
    from tqdm.auto import tqdm

    from .data import widerface
    from .data.images import read_image

    base = (Path(root) if root is not None else config.data_root()) / "widerface" / f"WIDER_{split}" / "images"
    faces = widerface.load_faces(split, root)
    present = {im for im in pd.unique(faces["image"]) if (base / im).is_file()}
    faces = faces[faces["image"].isin(present)]
    ok = usable_faces(faces, face_hw)
    images = list(pd.unique(faces.loc[ok, "image"]))
    if not images:
        raise ValueError(f"no image under {base} has a face usable for a {face_hw} study")
    if limit is not None and limit < len(images):
        pick = np.random.default_rng([seed, {"train": 0, "val": 1}.get(split, 2)]).choice(
            len(images), limit, replace=False)
        images = [images[i] for i in sorted(pick)]
    groups = faces.groupby("image", sort=False).indices
    xywh_all = faces[["x", "y", "w", "h"]].to_numpy(np.float64)
    out = []
    for im in tqdm(images, desc=f"WIDER {split}", disable=not progress, leave=False):
        rows = groups[im]
        xyxy = np.concatenate([xywh_all[rows, :2], xywh_all[rows, :2] + xywh_all[rows, 2:]], axis=1)
        out.append(Scene(read_image(base / im), xyxy[ok[rows]], widerface.image_key(im), avoid=xyxy))
    return out


@dataclass
class StudyData:
    """The scenes of one study size and where they came from (see :func:`study_data`).

    ``kind``: ``"real"`` (WIDER FACE train images for training, val images for testing) or
    ``"synthetic"`` (rendered scenes); ``source``: the answer of
    :func:`tinylib.data.sources.choose` for the real images (says what was missing)."""

    size: str
    face_hw: tuple[int, int]
    train: list[Scene]
    test: list[Scene]
    kind: str
    source: object = None  # tinylib.data.sources.Source

    @property
    def is_real(self) -> bool:
        return self.kind == "real"

    def __str__(self) -> str:
        n_tr = sum(len(s.boxes) for s in self.train)
        n_te = sum(len(s.boxes) for s in self.test)
        face = "x".join(map(str, self.face_hw))
        if self.is_real:
            return (f"{self.size} faces ({face}): REAL WIDER FACE images under {self.source.root} — "
                    f"train windows from {len(self.train)} WIDER_train images ({n_tr} usable faces), "
                    f"test windows from {len(self.test)} WIDER_val images ({n_te} usable faces); usable = "
                    f"valid, not heavily occluded, 1x-{MAX_DOWNSCALE:g}x the study's face size")
        if self.source is not None and not self.source.is_real:
            why = (f"the data root {config.data_root(must_exist=False)} lacks "
                   + ", ".join(self.source.missing)
                   + "; set TINYLIB_DATA to the real data root to run on real faces")
        else:
            why = "synthetic scenes requested (source='synthetic')"
        return (f"{self.size} faces ({face}): SYNTHETIC world — {len(self.train)} train / {len(self.test)} "
                f"test rendered scenes ({n_tr} / {n_te} usable faces). Why: {why}")

    def note(self, table: pd.DataFrame | None = None) -> str:
        """Where the numbers of ``table`` (a :func:`run_studies` table) come from, for the
        scorecard: ``"real WIDER faces (N train / M val windows per seed, ...)"`` or
        ``"synthetic world ..."``."""
        if not self.is_real:
            return "Data: synthetic world (rendered scenes, no real faces) — not comparable."
        if table is not None and len(table):
            n_tr = "/".join(str(v) for v in pd.unique(table["n_train"]))
            n_te = "/".join(str(v) for v in pd.unique(table["n_test"]))
            counts = f"{n_tr} train / {n_te} val windows per seed, "
        else:
            counts = ""
        return (f"Data: real WIDER faces ({counts}cut from {len(self.train)} WIDER_train / "
                f"{len(self.test)} WIDER_val images).")


def study_data(size: str, seed: int = 0, source: str = "auto", progress: bool = False) -> StudyData:
    """The train and test scenes of the ``"small"`` or ``"large"`` study — the one place
    where the data is chosen.

    ``source="auto"``: the real WIDER FACE images when the data root holds them
    (:data:`tinylib.data.sources.WIDER_IMAGES`: both annotation files and both image
    folders): train scenes from ``WIDER_train``, test scenes from ``WIDER_val``
    (:func:`real_scenes`; ``budget()["n_train_images"]``/``["n_test_images"]`` of them,
    drawn with ``seed``). Otherwise the synthetic world: scenes whose faces are already
    close to the study's face height (:func:`render_scenes`), train and test with disjoint
    seeds. ``"real"`` raises ``FileNotFoundError`` (saying what is missing) instead of
    falling back; ``"synthetic"`` forces the synthetic scenes."""
    from .data import sources

    if source not in ("auto", "real", "synthetic"):
        raise ValueError(f"source must be 'auto', 'real' or 'synthetic', got {source!r}")
    b = budget()
    face, _ = _face(size)
    src = sources.choose(sources.WIDER_IMAGES, what="WIDER FACE train+val images", fallback=None)
    if source == "real" and not src.is_real:
        raise FileNotFoundError(str(src))
    if src.is_real and source != "synthetic":
        train = real_scenes(face, "train", src.root, b["n_train_images"], seed, progress)
        test = real_scenes(face, "val", src.root, b["n_test_images"], seed, progress)
        return StudyData(size, face, train, test, "real", src)
    kw = dict(face_height=face[0], image_size=b["image_size"], n_persons=b["persons"][size],
              workers=b["workers"], progress=progress)
    train = render_scenes(b["n_train_scenes"], seed=2 * seed, **kw)
    test = render_scenes(b["n_test_scenes"], seed=2 * seed + 1, **kw)
    return StudyData(size, face, train, test, "synthetic", src)


# --------------------------------------------------------------------------- windows
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
    from torchvision.ops import roi_align

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
    The crops run with one CPU thread."""
    rng = np.random.default_rng(rng)
    neg_per_pos = spec.neg_per_pos if neg_per_pos is None else neg_per_pos
    th, tw = spec.face_hw
    target = math.sqrt(th * tw)
    native, out = spec.native_crop_hw, spec.crop_hw
    lo, hi = spec.scale_range
    faces = []  # (scene index, box, scale)
    for si, sc in enumerate(scenes):
        for b in sc.boxes:
            s = target / math.sqrt(max((b[2] - b[0]) * (b[3] - b[1]), 1e-9))
            if lo <= s <= hi:
                faces.append((si, b, s))
    if not faces:
        raise ValueError(
            f"no face can be rescaled to {spec.face_hw} within scale_range {spec.scale_range} "
            f"({sum(len(s.boxes) for s in scenes)} faces in {len(scenes)} scenes)"
        )
    scales = np.array([f[2] for f in faces])

    def template_box(cx, cy, s):
        return np.array([cx - tw / s / 2, cy - th / s / 2, cx + tw / s / 2, cy + th / s / 2])

    def is_negative(si, cx, cy, s):
        return bool(np.all(_iou_one(template_box(cx, cy, s), scenes[si].avoid) < 0.3))

    plan = []  # (scene, cx, cy, s, label, kind)
    for _ in range(n_pos):
        si, b, s = faces[rng.integers(len(faces))]
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
    images = torch.zeros((len(plan), 3, *out), dtype=torch.uint8)
    by_scene: dict[int, list[int]] = {}
    for i, p in enumerate(plan):
        by_scene.setdefault(p[0], []).append(i)
    with torch_threads(1):  # small per-scene ops: extra threads only cost (a lot on a busy machine)
        for si, idx in by_scene.items():
            images[idx] = _crop_many(scenes[si], np.array([plan[i][1:4] for i in idx]), native, out)
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


# --------------------------------------------------------------------------- models
_STAGES = ("s1", "s2", "s3", "s4", "s5")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class StudyNet(nn.Module):
    """A fixed-size scanning-window detector scored at the window centre.

    ``arch="tiny"``: five blocks (conv3x3 stride 2 + conv3x3, BN, ReLU), stages ``s1..s5``
    at strides 2..32 with ``width * (1, 2, 4, 4, 4)`` channels. ``arch="resnet18"``:
    torchvision ResNet-18 (random init) with ``s2..s5`` = ``layer1..layer4`` (strides
    4..32; ``s1`` = the stem at stride 2). The features of each stage in ``layers`` are
    sampled (bilinearly) at the window centre and concatenated — a hypercolumn / foveal
    descriptor when several stages are used — then a linear layer gives one logit.
    ``mask`` (``(H, W)``), if given, blanks the normalised input outside it (tight context).
    Only the stages up to the deepest one in ``layers`` are built and run."""

    def __init__(self, layers: Sequence[str] = ("s2", "s3", "s4"), arch: str = "tiny",
                 width: int = 8, mask: torch.Tensor | None = None):
        super().__init__()
        self.layers = tuple(layers)
        self.arch = arch
        depth = max(_STAGES.index(name) for name in self.layers) + 1
        if arch == "tiny":
            chans = [width * m for m in (1, 2, 4, 4, 4)][:depth]
            cins = [3] + chans[:-1]
            self.stages = nn.ModuleList(_block(ci, co) for ci, co in zip(cins, chans))
        elif arch == "resnet18":
            from torchvision.models import resnet18

            r = resnet18(weights=None)
            mods = [nn.Sequential(r.conv1, r.bn1, r.relu), nn.Sequential(r.maxpool, r.layer1),
                    r.layer2, r.layer3, r.layer4]
            chans = [64, 64, 128, 256, 512][:depth]
            self.stages = nn.ModuleList(mods[:depth])
        else:
            raise ValueError(f"arch must be 'tiny' or 'resnet18', got {arch!r}")
        self.channels = dict(zip(_STAGES, chans))
        self.head = nn.Linear(sum(self.channels[n] for n in self.layers), 1)
        self.register_buffer("mask", None if mask is None else mask.float().clone())

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        x = (x - _MEAN) / _STD
        if self.mask is not None:
            x = x * self.mask
        return x

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        x = self.normalise(x)
        for name, stage in zip(_STAGES, self.stages):
            x = stage(x)
            out[name] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features(x)
        grid = torch.zeros(x.shape[0], 1, 1, 2, device=x.device, dtype=feats[self.layers[0]].dtype)
        cols = [F.grid_sample(feats[n], grid.to(feats[n].dtype), mode="bilinear",
                              align_corners=False).flatten(1) for n in self.layers]
        return self.head(torch.cat(cols, dim=1)).squeeze(1)


def build_model(spec: StudySpec) -> StudyNet:
    mask = context_mask(spec.crop_hw, spec.template_hw, spec.tight_margin) if spec.context == "tight" else None
    return StudyNet(spec.layers, arch=spec.arch, width=spec.width, mask=mask)


def analytic_receptive_field(layer: str, arch: str = "tiny") -> int:
    """Theoretical receptive field (pixels, one side) of one unit of stage ``layer``."""
    if arch == "tiny":
        convs = [(3, 2), (3, 1)] * (_STAGES.index(layer) + 1)
    elif arch == "resnet18":
        convs = [(7, 2)]
        for i in range(1, _STAGES.index(layer) + 1):
            if i == 1:
                convs += [(3, 2)] + [(3, 1)] * 4
            else:
                convs += [(3, 2), (3, 1)] + [(3, 1)] * 2
    else:
        raise ValueError(f"unknown arch {arch!r}")
    rf, jump = 1, 1
    for k, s in convs:
        rf += (k - 1) * jump
        jump *= s
    return rf


def effective_receptive_field(model: nn.Module, crop_hw, tol: float = 1e-8) -> tuple[int, int]:
    """Height and width of the input region that influences the centre output: the bounding
    box of the pixels where the input gradient is non-zero (the model in eval mode, summed
    over a few random inputs). Runs with one CPU thread (three single-window passes)."""
    was_training = model.training
    model.eval()
    g = torch.zeros(crop_hw)
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(0)
    with torch_threads(1):
        for _ in range(3):
            x = torch.rand(1, 3, *crop_hw, generator=gen).to(dev).requires_grad_(True)
            model(x).sum().backward()
            g += x.grad.detach().abs().sum(dim=(0, 1)).cpu()
    model.train(was_training)
    ys, xs = torch.nonzero(g > tol * g.max(), as_tuple=True)
    if len(ys) == 0:
        return (0, 0)
    return (int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1))


# --------------------------------------------------------------------------- training
def balanced_batches(windows: WindowSet, batch_size: int, rng, flip: bool = True
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches, half positives half negatives, random horizontal flips."""
    rng = np.random.default_rng(rng)
    pos = np.flatnonzero(windows.labels.numpy() > 0.5)
    neg = np.flatnonzero(windows.labels.numpy() <= 0.5)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"need positives and negatives, got {len(pos)} and {len(neg)}")
    half = batch_size // 2
    while True:
        idx = np.concatenate([rng.choice(pos, half), rng.choice(neg, batch_size - half)])
        x = windows.images[idx]
        if flip:
            flips = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x = torch.where(flips[:, None, None, None], x.flip(-1), x)
        yield x, windows.labels[idx]


def train_classifier(model: nn.Module, loader: Iterable, steps: int, lr: float = 1e-3,
                     device: str | None = None, amp: bool | None = None,
                     progress: bool = False, weight_decay: float = 1e-4,
                     desc: str = "train") -> pd.DataFrame:
    """Train a binary classifier (``model(x) -> logits (N,)``) with AdamW + BCE and a
    cosine learning-rate schedule for ``steps`` batches of ``loader`` (cycled if shorter).

    ``device``/``amp`` default to :func:`tinylib.config.runtime` (CUDA with bf16/fp16
    autocast when present, CPU fp32 otherwise). Returns the history: one row per step with
    ``step, loss, accuracy, lr``."""
    from tqdm.auto import tqdm

    device = device or config.runtime().device
    if amp is None:
        amp_dtype = config.amp_dtype_for(device)
    elif amp:
        amp_dtype = config.amp_dtype_for(device) or torch.bfloat16
    else:
        amp_dtype = None
    dev_type = torch.device(device).type
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / max(steps, 1))))
    scaler = torch.amp.GradScaler(dev_type, enabled=amp_dtype == torch.float16)
    rows = []
    it = iter(loader)
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True).float()
        with torch.autocast(dev_type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        acc = ((logits.detach() > 0).float() == y).float().mean().item()
        rows.append({"step": step, "loss": loss.item(), "accuracy": acc, "lr": opt.param_groups[0]["lr"]})
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return pd.DataFrame(rows, columns=["step", "loss", "accuracy", "lr"])


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256,
            device: str | None = None) -> np.ndarray:
    """Scores (sigmoid of the logits) of ``images`` in eval mode."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        out.append(torch.sigmoid(model(images[i:i + batch_size].to(device)).float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def window_ap(scores, labels) -> float:
    """Average precision of window scores against binary labels (VOC AP: precision made
    monotone, area where recall changes). Ties are broken by order (stable sort)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel() > 0.5
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.size} vs {labels.size}")
    if labels.sum() == 0:
        raise ValueError("window_ap needs at least one positive")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order])
    fp = np.cumsum(~labels[order])
    return voc_ap(tp / labels.sum(), tp / np.maximum(tp + fp, 1))


# --------------------------------------------------------------------------- studies
@dataclass
class StudyResult:
    name: str
    spec: StudySpec
    ap: list[float] = field(default_factory=list)
    train_ap: list[float] = field(default_factory=list)
    seconds: float = 0.0
    histories: list[pd.DataFrame] = field(default_factory=list)
    model: nn.Module | None = None

    @property
    def ap_mean(self) -> float:
        return float(np.mean(self.ap))

    @property
    def ap_std(self) -> float:
        """Sample standard deviation over seeds (``ddof=1``; 0 for a single seed)."""
        return float(np.std(self.ap, ddof=1)) if len(self.ap) > 1 else 0.0


def run_study(spec: StudySpec, train: WindowSet, test: WindowSet, seed: int = 0,
              device: str | None = None, progress: bool = False, name: str = "study",
              train_eval: int | None = 512):
    """Train one model for ``spec`` on ``train`` windows (seeded) and return
    ``(test AP, train AP, history, model)``. The train AP (an over-fitting check) is measured
    on ``train_eval`` training windows drawn with ``seed`` (``None``: all of them)."""
    device = device or config.runtime().device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec)
    batches = balanced_batches(train, spec.batch_size, rng=np.random.default_rng([seed, 1]))
    hist = train_classifier(model, batches, spec.steps, lr=spec.lr, device=device,
                            progress=progress, desc=name)
    ap = window_ap(predict(model, test.images, device=device), test.labels.numpy())
    idx = np.arange(len(train))
    if train_eval is not None and train_eval < len(train):
        idx = np.sort(np.random.default_rng([seed, 2]).choice(len(train), train_eval, replace=False))
        if train.labels[idx].sum() == 0:  # (never with the standard ratios) keep AP defined
            idx = np.arange(len(train))
    train_ap = window_ap(predict(model, train.images[idx], device=device), train.labels.numpy()[idx])
    return ap, train_ap, hist, model


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


def run_studies(specs: dict[str, StudySpec], train_scenes: Sequence[Scene],
                test_scenes: Sequence[Scene], seeds: Sequence[int] = (0,), data_seed: int = 0,
                device: str | None = None, progress: bool = False,
                threads: int | str | None = "budget") -> tuple[pd.DataFrame, dict]:
    """Train and test every condition of ``specs`` for each seed.

    Test windows are drawn once from ``test_scenes`` (a fixed test set, as a benchmark is
    fixed); training windows are drawn anew for each seed from ``train_scenes``, so the seed
    spread covers the draw of the training windows as well as the initialisation and batch
    order. Conditions with the same :meth:`StudySpec.plan_key` get the *same* windows (same
    faces, positions and scales), each cut at its own resolution: conditions that differ
    only in the model (context mask, layers) or in the template resolution are compared on
    identical windows. Generators are seeded ``(data_seed, plan)`` for the test set and
    ``(data_seed, plan, seed)`` for training, ``plan`` a checksum of the plan key, so a
    condition gets the same windows whatever other conditions run beside it. Returns
    ``(table, results)``: one row per condition with ``ap_mean, ap_std`` (sample std over
    seeds), ``ap_per_seed, train_ap_mean``, receptive field, ``n_train``/``n_test`` (windows
    per seed), ``seconds``, and the :class:`StudyResult` objects.

    ``threads``: CPU threads while it runs, restored afterwards (default ``budget()["threads"]``:
    1 in quick mode — the tiny convolutions gain nothing from more, and on a busy 2-core
    machine a second thread makes each step many times slower)."""
    if threads == "budget":
        threads = budget()["threads"]
    with torch_threads(threads):
        return _run_studies(specs, train_scenes, test_scenes, seeds, data_seed, device, progress)


def _run_studies(specs, train_scenes, test_scenes, seeds, data_seed, device, progress):
    plans = {spec.plan_key(): zlib.crc32(repr(spec.plan_key()).encode()) for spec in specs.values()}
    tests: dict[tuple, WindowSet] = {}
    for spec in specs.values():
        if spec.data_key() not in tests:
            rng = np.random.default_rng([data_seed, plans[spec.plan_key()]])
            tests[spec.data_key()] = sample_windows(test_scenes, spec, spec.n_test_pos, rng,
                                                    spec.test_neg_per_pos)
    results = {name: StudyResult(name, spec) for name, spec in specs.items()}
    sizes: dict[str, tuple[int, int]] = {}
    for seed in seeds:  # one seed's training windows at a time (full-mode windows are large)
        cache: dict[tuple, WindowSet] = {}
        for name, spec in specs.items():
            key = spec.data_key()
            if key not in cache:
                rng = np.random.default_rng([data_seed, plans[spec.plan_key()], seed])
                cache[key] = sample_windows(train_scenes, spec, spec.n_train_pos, rng)
            train, test = cache[key], tests[key]
            sizes[name] = (len(train), len(test))
            res = results[name]
            start = time.perf_counter()
            ap, train_ap, hist, model = run_study(spec, train, test, seed=seed, device=device,
                                                  progress=progress, name=name)
            res.seconds += time.perf_counter() - start
            res.ap.append(ap)
            res.train_ap.append(train_ap)
            res.histories.append(hist)
            res.model = model
        del cache
    rows = []
    for name, spec in specs.items():
        res = results[name]
        erf = effective_receptive_field(res.model, spec.crop_hw)
        log.info("%s: AP %.3f +- %.3f (%d seeds, %.1fs)", name, res.ap_mean, res.ap_std, len(seeds), res.seconds)
        rows.append({
            "condition": name, "face_hw": "x".join(map(str, spec.face_hw)),
            "template_hw": "x".join(map(str, spec.template_hw)),
            "window_hw": "x".join(map(str, spec.crop_hw)), "context": spec.context,
            "layers": "+".join(spec.layers), "effective_rf_hw": f"{erf[0]}x{erf[1]}",
            "ap_mean": res.ap_mean, "ap_std": res.ap_std,
            "ap_per_seed": [round(a, 4) for a in res.ap], "train_ap_mean": float(np.mean(res.train_ap)),
            "n_train": sizes[name][0], "n_test": sizes[name][1], "seconds": round(res.seconds, 1),
        })
    return pd.DataFrame(rows), results


# --------------------------------------------------------------------------- reporting
def _gain_stats(table: pd.DataFrame, base: str, other: str) -> dict:
    rows = table.set_index("condition")
    a, b = rows.loc[base], rows.loc[other]
    gain = 100 * (float(b["ap_mean"]) - float(a["ap_mean"]))
    na, nb = len(a["ap_per_seed"]), len(b["ap_per_seed"])
    sa, sb = 100 * float(a["ap_std"]), 100 * float(b["ap_std"])
    se = math.sqrt(sa ** 2 / na + sb ** 2 / nb)
    n = min(na, nb)
    return {"gain": gain, "std": (sa, sb), "se": se, "n": n, "outside": n >= 2 and abs(gain) > 2 * se}


def describe_gain(table: pd.DataFrame, base: str, other: str, paper_gain: float | None = None) -> str:
    """One honest sentence comparing two conditions of a :func:`run_studies` table: the AP
    difference in points, the seed spread, whether it agrees in sign with the paper, and
    plainly whether the gain is **outside the seed spread**.

    The rule: the gain is outside the seed spread when it exceeds twice its standard error,
    ``|gain| > 2 * sqrt(std_a^2 / n_a + std_b^2 / n_b)`` (``std``: the sample standard
    deviation of window AP over the ``n`` seeds of each condition; each seed draws its own
    training windows and initialisation, on a fixed test set) — roughly a 95 % two-sided
    test, sharper with more seeds. With one seed there is no spread and the sentence says so."""
    st = _gain_stats(table, base, other)
    gain, (sa, sb), se, n = st["gain"], st["std"], st["se"], st["n"]
    text = (f"{other} - {base} = {gain:+.1f} AP points (seed std {sb:.1f} / {sa:.1f} over {n} seeds, "
            f"standard error of the gain {se:.1f})")
    if paper_gain is not None:
        same = np.sign(gain) == np.sign(paper_gain) and gain != 0
        text += f"; paper {paper_gain:+.1f}: {'same sign' if same else 'NOT the same sign'}"
    if n < 2:
        text += "; one seed only: no seed spread to judge the gain against"
    elif st["outside"]:
        text += f"; OUTSIDE the seed spread (|gain| > 2 x s.e. = {2 * se:.1f}): a real difference at this budget"
    else:
        text += f"; INSIDE the seed spread (|gain| <= 2 x s.e. = {2 * se:.1f}): not distinguishable from seed noise"
    return text


def _data_note(data, table) -> str:
    return "" if data is None else data.note(table)


def record_gain(key: str, table: pd.DataFrame, base: str, other: str, *, paper=None,
                claim: str = "", note: str = "", data: StudyData | None = None):
    """Record ``key`` = the AP gain (points) of ``other`` over ``base`` in the scorecard, with
    :func:`describe_gain` as the note, followed by ``note`` and where the data came from
    (``data``: the :class:`StudyData` of the run). ``paper`` may be a number or a text
    (e.g. ``"~0"``). Window AP is not the paper's WIDER AP and synthetic scenes are not
    real faces, so no tolerance is set: the status is always "not comparable"."""
    from . import scorecard

    paper_gain = float(paper) if isinstance(paper, Real) else None
    text = " ".join(t for t in (describe_gain(table, base, other, paper_gain) + ".", note,
                                _data_note(data, table)) if t)
    gain = _gain_stats(table, base, other)["gain"]
    return scorecard.record(key, claim=claim or f"gain of {other} over {base}", paper=paper,
                            ours=round(gain, 1), unit="AP points", note=text)


def record_comparison(prefix: str, table: pd.DataFrame, base: str, other: str, *,
                      paper_base=None, paper_other=None, paper_gain: float | None = None,
                      claim: str = "", note: str = "", data: StudyData | None = None) -> pd.DataFrame:
    """Record ``{prefix}.{base}``, ``{prefix}.{other}`` (window AP, %) and
    ``{prefix}.gain`` (AP points) in the scorecard. Window AP is not the paper's WIDER AP,
    so no tolerance is set (status "not comparable", and all the more on synthetic data);
    the notes say whether the sign of the effect agrees and whether the gain is outside the
    seed spread (:func:`describe_gain`), then ``note``, then which data the numbers come
    from (``data``: the :class:`StudyData` of the run, :meth:`StudyData.note`). Returns the
    recorded rows."""
    from . import scorecard

    rows = table.set_index("condition")
    metric = "window AP (ours) vs WIDER-style AP (paper)"
    tail = " ".join(t for t in (note, _data_note(data, table)) if t)
    out = []
    for name, paper in ((base, paper_base), (other, paper_other)):
        r = rows.loc[name]
        out.append(scorecard.record(
            f"{prefix}.{name}", claim=f"{claim}: {name}", paper=paper,
            ours=round(100 * float(r["ap_mean"]), 1), unit="AP %",
            note=f"{metric}; ±{100 * float(r['ap_std']):.1f} over seeds {r['ap_per_seed']}; "
                 f"template {r['template_hw']}, window {r['window_hw']}, RF {r['effective_rf_hw']}. {tail}".strip()))
    out.append(record_gain(f"{prefix}.gain", table, base, other, paper=paper_gain,
                           claim=f"{claim}: gain of {other} over {base}", note=note, data=data))
    return pd.DataFrame([c.as_row() for c in out]).drop(columns=["notebook"])
