"""The images the study windows are cut from: :class:`Scene` (an image with the faces that may
be positives and those negatives must avoid), synthetic scenes (:func:`render_scenes`),
real WIDER FACE scenes (:func:`real_scenes`, faces picked by :func:`usable_faces`) and the
one place where the data of a study is chosen (:func:`study_data` -> :class:`StudyData`)."""

from __future__ import annotations

import math
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import config
from ..data import sources, synthetic, widerface
from ..data.images import read_image
from ..data.widerface import WiderFaceDataset
from .specs import _face, budget

__all__ = [
    "MAX_DOWNSCALE",
    "ASPECT_RANGE",
    "Scene",
    "scenes_from_dataset",
    "render_scenes",
    "scenes_from_root",
    "usable_faces",
    "real_scenes",
    "StudyData",
    "study_data",
    "study_scenes",
]

MAX_DOWNSCALE = 5.0  # real positives: faces between 1x and 5x the study's face size
ASPECT_RANGE = (0.6, 2.5)  # real positives: face box height / width

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
    width, height = image_size
    dist = {"kind": "lognormal", "median": float(face_height), "sigma": float(sigma)}
    tasks = [(seed, i, width, height, dist, n_persons) for i in range(n)]
    bar = dict(total=n, desc="scenes", disable=not progress, leave=False)
    if workers <= 1 or n <= 1:
        return [_render_one(t) for t in tqdm(tasks, **bar)]
    with ProcessPoolExecutor(min(workers, n), mp_context=mp.get_context("spawn")) as pool:
        return list(tqdm(pool.map(_render_one, tasks, chunksize=max(1, n // (4 * workers))), **bar))


def scenes_from_root(root, split: str, limit: int | None = None) -> list[Scene]:
    """Scenes of a data root in the WIDER FACE layout (e.g. a synthetic world on disk)."""
    return scenes_from_dataset(WiderFaceDataset(root=root, split=split), limit)


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
    base = config.dataset_dir("widerface", root) / f"WIDER_{split}" / "images"
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


def study_scenes(size: str, seed: int = 0, progress: bool = False,
                 source: str = "auto") -> tuple[list, list]:
    """``(train scenes, test scenes)`` of :func:`study_data` (real WIDER images when present,
    else synthetic scenes); use :func:`study_data` to also learn which."""
    data = study_data(size, seed=seed, source=source, progress=progress)
    return data.train, data.test
