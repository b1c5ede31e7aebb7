"""Section 3 of *Finding Tiny Faces* on ImageNet features: context (Fig. 4), foveal
descriptors (Fig. 5) and template resolution (Fig. 7), for both inits of one trunk, on every
usable real face — the shipped table ``tinylib/weights/studies_section3.csv`` (issue 25).

THE PROTOCOL (fixed and written down before any gain was looked at; :data:`PROTOCOL`)
====================================================================================
Question (the paper's): what is the best way to find faces of one fixed size — 25x20 (small)
and 250x200 (large), both at their **real** size — with a scanning-window template?

Network. The ImageNet MobileNetV1 x0.25 of the data bundle cut into stages s1..s5 (strides
2, 4, 8, 16, 32; receptive fields 7, 19, 43, 219, 315 px, computed by the receptive-field
walker: :mod:`tinylib.studies.trunk`). A *template* reads the features of one or several
stages at the window centre (one heatmap pixel) and scores them linearly. Two inits side by
side, every condition and seed run with both:
``imagenet`` — the released weights fine-tuned as the paper fine-tunes (lower layers slower:
s1-s2 frozen, s3 at 0.1 x, s4/s5/template at 1 x; BatchNorm frozen at ImageNet statistics);
``scratch`` — the same architecture, random init, everything trained, BatchNorm on batches.

Conditions (per face size; :data:`CONDITIONS`).
* Context (Fig. 4) = the receptive field of the features the template reads: one stage each,
  s2 (RF 19), s3 (43), s4 (219), s5 (315). *Tight* = the stage whose RF is closest to the
  face's extent sqrt(h*w) — s2 for 25x20 (19 vs 22), s4 for 250x200 (219 vs 224); *loose* =
  every stage with a larger RF. Gain = best loose - tight, the best loose stage **chosen on
  the tuning half**, its AP reported on the test half. Where too much context hurts tiny
  faces: s5 (RF 315, "beyond 300x300" in the paper) - s4 (219), with train vs test AP.
* Foveal (Fig. 5): the paper's "res4+res3+res2 vs res4 (291x291)" maps to s2+s3+s4 vs s4
  (RF 219): the drop = AP(s2+s3+s4) - AP(s4). (The paper's res5 pair, s2+..+s5 vs s5, is not
  run: its 320-px windows do not fit the CPU budget.)
* Resolution (Fig. 7): the template s2+s3+s4 at 1x versus 2x (25x20 faces interpolated to
  50x40: the paper's "2X upsampled (interpolated) test image") and 1x versus 0.5x (250x200
  faces downsampled to 125x100). Same faces, same positions, same network; at 2x the RF covers
  half as many image pixels, at 0.5x twice as many.

Windows. Square, side = the deepest stage's RF rounded up to 32 (s2: 32, s3: 64, s4 and
s2+s3+s4: 224, s5: 320 network pixels; 2x and 0.5x: 224), so every pixel that can reach the
centre score is in the window and nothing else is cut. A 1x window is the centre of one
320-px cut, so all 1x conditions see the same pixels. Positives: a usable face
(:func:`tinylib.studies.scenes.usable_faces`: valid, not heavily occluded, 1x-5x the study's
size) shrunk to the study's size (x U(0.95, 1.05), centred within 8 %). Negatives (windows
whose template box overlaps no annotated face by IoU >= 0.3): half random positions, a quarter
shifted 0.6-1.0 face sizes off a face, a quarter on a face at 2x or 0.5x the size — most of
them hard, all from the same photos as the positives.

Data (:func:`section3_scenes`). Train: **every** usable face of the bundle's 1,239 WIDER_train
photos, once each (jittered once, ``data_seed`` 0), with 1 (25x20) or 10 (250x200) negatives
per positive. Test:
every usable face of the **test half** of the WIDER val subset (187 photos,
:mod:`tinylib.data.splits`) with **6 negatives per positive** for 25x20 faces and **30** for
250x200 faces (revision 1), so window AP stays away from its ceiling; the **tuning half** the same way, for the one protocol choice (the best loose stage)
and reported beside. A test condition has >= 1,000 positive windows, or all usable faces
where fewer exist (the table's ``test_positives`` says which: 25x20 ~ 700, 250x200 ~ 40).

Training. :func:`tinylib.engine.train` via :func:`~tinylib.studies.training.train_classifier`:
AdamW, cosine schedule, weight decay 1e-4, 150 steps of 32 windows (16 positives, 16
negatives, random flips) = 2,400 positive draws (~0.7 of the 25x20 train faces, ~6 passes
over the 250x200 ones); lr 1e-3 (imagenet) / 2e-3 (scratch). Train AP: the final model on
100 (25x20) or 40 (250x200) train positives with the test's ratio of train negatives. Curve:
the running AP of the training scores (last 10 steps) at every step and, for seed 0, train AP
on 48 (25x20) or 16 (250x200) train positives with the test's ratio of negatives every 25
steps (table ``studies_section3_curves``).

Seeds 0-4: network init (scratch; the template's for imagenet), batch order and flips; the
windows are fixed. Verdict: a gain is outside the seed spread when |gain| > 2 x its standard
error sqrt(s_a^2/n + s_b^2/n) over the 5 seeds (:func:`tinylib.studies.compare.describe_gain`).

Revision 1 (made after the first two runs, before any gain existed): those runs (ImageNet
init, 250x200, s5) scored test AP 0.99 with the 43 usable test faces and 1:6 negatives — the
large-face measure sat at its ceiling. The 250x200 test and tuning windows were raised to 30
negatives per positive (cheap: ~40 positives), their training windows to 10 negatives per
positive (the 380 train faces had only 380 negatives), the train-AP check to 40 positives at
the same 1:30, and those two runs discarded; nothing else changed.

Budget: cpu tier, 2 worker processes of 1 thread; about 50 min on an idle 2-core machine
(single-thread step and scoring times of every condition: ``tools/run_studies.py --time``;
measured on a busy machine they add up to ~100 core-minutes, ~50 min with two workers).
The ImageNet runs go first, then the scratch ones. Resumable: each (init, size,
condition, seed) is written to ``runs/studies/results/`` when done and skipped by a rerun;
the window pools are cached in ``runs/studies/pools/``.

Window AP is not the paper's WIDER AP: only differences between conditions are compared
with the paper's, by sign and by size.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import config
from ..data import splits
from ..io import atomic_write_text
from .scenes import MAX_DOWNSCALE, Scene, real_scenes, render_scenes
from .specs import LARGE_FACE, SMALL_FACE
from .training import train_classifier, window_ap
from .trunk import _STAGE_RF, TRUNK_STAGES, TrunkStudyNet, window_side
from .windows import plan_windows, torch_threads

log = logging.getLogger(__name__)

__all__ = ["Protocol", "PROTOCOL", "Condition", "CONDITIONS", "EFFECTS", "FACES", "protocol",
           "section3_scenes", "build_pools", "tasks", "run_task", "run_section3",
           "assemble", "curves", "cut_fast", "live_sample", "sample_protocol", "TABLE", "CURVES",
           "POOL_SIDE"]

TABLE = "studies_section3"
CURVES = "studies_section3_curves"
FACES = {"small": SMALL_FACE, "large": LARGE_FACE}
POOL_SIDE = 320  # the 1x cut: the largest window (s5); smaller windows are its centre
OTHER_SIDE = 224  # the 2x / 0.5x cut (the s2+s3+s4 window)
OTHER_RES = {"small": 2.0, "large": 0.5}


@dataclass(frozen=True)
class Protocol:
    """The settings of the Section 3 run (see the module docstring)."""

    steps: int = 150
    batch_size: int = 32
    lr: tuple[tuple[str, float], ...] = (("imagenet", 1e-3), ("scratch", 2e-3))
    weight_decay: float = 1e-4
    train_neg_per_pos: int = 1
    test_neg_per_pos: int = 6
    test_neg_per_pos_large: int = 30  # revision 1 (see the docstring)
    train_neg_per_pos_large: int = 10  # revision 1
    train_ap_pos_large: int = 40  # revision 1
    curve_pos_large: int = 16  # revision 1
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    data_seed: int = 0
    train_ap_pos: int = 100
    curve_every: int = 25
    curve_pos: int = 48
    running_ap_steps: int = 10
    max_train_pos: int | None = None  # None: every usable face
    max_test_pos: int | None = None
    n_train_images: int | None = None  # None: every photo with a usable face
    min_test_pos: int = 1000
    workers: int = 2
    eval_batch: int = 64
    pool_side: int = POOL_SIDE
    other_side: int = OTHER_SIDE

    def lr_of(self, init: str) -> float:
        return dict(self.lr)[init]

    def neg_of(self, size: str) -> int:
        """Negatives per positive of the test and tuning windows (and the train-AP subset)."""
        return self.test_neg_per_pos_large if size == "large" else self.test_neg_per_pos

    def train_neg_of(self, size: str) -> int:
        return self.train_neg_per_pos_large if size == "large" else self.train_neg_per_pos

    def train_ap_pos_of(self, size: str) -> int:
        return self.train_ap_pos_large if size == "large" else self.train_ap_pos

    def curve_pos_of(self, size: str) -> int:
        return self.curve_pos_large if size == "large" else self.curve_pos


#: the protocol of the shipped table (cpu tier)
PROTOCOL = Protocol()


def protocol() -> Protocol:
    """The protocol of this tier: quick = a tiny sample (seconds; a demo, never the claim),
    cpu and full = :data:`PROTOCOL` (the shipped table's)."""
    quick = replace(PROTOCOL, steps=20, seeds=(0, 1), max_train_pos=64, max_test_pos=48,
                    n_train_images=40, train_ap_pos=32, curve_every=10, curve_pos=16,
                    workers=1, test_neg_per_pos=4, test_neg_per_pos_large=4,
                    train_neg_per_pos_large=1, train_ap_pos_large=16, curve_pos_large=8)
    return config.pick(quick, PROTOCOL, PROTOCOL)


def sample_protocol() -> Protocol:
    """The protocol of a chapter's **live sample** at this tier (a demo beside the shipped
    table, recorded only as ``KEY.sample``): quick = :func:`protocol`'s tiny sample (seconds);
    cpu = a few minutes on a laptop (fewer photos, steps and seeds than the shipped run);
    full = :data:`PROTOCOL` itself (a GPU machine re-makes the table's runs)."""
    cpu = replace(PROTOCOL, steps=60, seeds=(0, 1), max_train_pos=600, max_test_pos=200,
                  n_train_images=300, train_ap_pos=64, curve_every=20, curve_pos=32, workers=1,
                  train_neg_per_pos_large=4)
    return config.pick(protocol(), cpu, PROTOCOL)


@dataclass(frozen=True)
class Condition:
    """One trained template: the stages it reads and the resolution it works at."""

    name: str
    layers: tuple[str, ...]
    resolution: float = 1.0
    effects: tuple[str, ...] = ()

    @property
    def window(self) -> int:
        return window_side(self.layers)

    @property
    def rf(self) -> int:
        """Receptive field of the deepest stage read, network pixels."""
        return _STAGE_RF[max(self.layers, key=TRUNK_STAGES.index)]

    @property
    def pool(self) -> str:
        return "1x" if self.resolution == 1.0 else "other"


def _conditions(size: str) -> dict[str, Condition]:
    other = OTHER_RES[size]
    label = f"{other:g}x"
    return {
        "s2": Condition("s2", ("s2",), effects=("context",)),
        "s3": Condition("s3", ("s3",), effects=("context",)),
        "s4": Condition("s4", ("s4",), effects=("context", "foveal")),
        "s5": Condition("s5", ("s5",), effects=("context",)),
        "s2+s3+s4": Condition("s2+s3+s4", ("s2", "s3", "s4"), effects=("foveal", "resolution")),
        label: Condition(label, ("s2", "s3", "s4"), resolution=other, effects=("resolution",)),
    }


CONDITIONS = {size: _conditions(size) for size in FACES}
EFFECTS = ("context", "foveal", "resolution")


def tight_stage(size: str) -> str:
    """The stage whose RF is closest to the face's extent sqrt(h * w)."""
    h, w = FACES[size]
    extent = math.sqrt(h * w)
    return min(("s2", "s3", "s4", "s5"), key=lambda s: abs(_STAGE_RF[s] - extent))


def _condition_label(effect: str, size: str, cond: Condition) -> str:
    """The condition's name in the table for one effect (resolution calls s2+s3+s4 "1x")."""
    if effect == "resolution" and cond.resolution == 1.0:
        return "1x"
    return cond.name


# ------------------------------------------------------------------------------ data
@dataclass
class Section3Data:
    """The scenes of one face size: train (WIDER_train), test and tuning halves (WIDER val
    subset), and where they came from."""

    size: str
    train: list[Scene]
    test: list[Scene]
    tuning: list[Scene]
    kind: str  # "real" or "synthetic"
    images: dict = field(default_factory=dict)  # set name -> image keys


def section3_scenes(size: str, proto: Protocol = PROTOCOL, root=None, source: str = "auto",
                    progress: bool = False) -> Section3Data:
    """Every WIDER_train photo with a usable face of ``size`` (``proto.n_train_images`` of
    them when set) and the val subset's photos split into the test and tuning halves. Without
    the real images (``source="auto"``) or with ``source="synthetic"``: rendered scenes (a
    demo, never the claim)."""
    from ..data import sources

    face = FACES[size]
    src = sources.choose(sources.WIDER_IMAGES, what="WIDER FACE train+val images", fallback=None)
    if source == "real" and not src.is_real:
        raise FileNotFoundError(str(src))
    if source != "synthetic" and src.is_real:
        root = root or src.root
        train = real_scenes(face, "train", root, proto.n_train_images, proto.data_seed, progress)
        val = real_scenes(face, "val", root, None, proto.data_seed, progress)
        keys = [s.image_id for s in val]
        half = splits.halves(keys)
        test_keys, tuning_keys = set(half["test"]), set(half["tuning"])
        test = [s for s in val if s.image_id in test_keys]
        tuning = [s for s in val if s.image_id in tuning_keys]
        images = {"train": [s.image_id for s in train], "test": [s.image_id for s in test],
                  "tuning": [s.image_id for s in tuning]}
        return Section3Data(size, train, test, tuning, "real", images)
    n = 24 if size == "small" else 12
    kw = dict(face_height=face[0] * 1.5, image_size=(640, 480) if size == "small" else (900, 700),
              n_persons=12 if size == "small" else 2)
    train = render_scenes(n, seed=10, **kw)
    test = render_scenes(n // 2, seed=11, **kw)
    tuning = render_scenes(n // 2, seed=12, **kw)
    images = {k: [s.image_id for s in v] for k, v in (("train", train), ("test", test), ("tuning", tuning))}
    return Section3Data(size, train, test, tuning, "synthetic", images)


def _scale_range():
    return (1.0 / MAX_DOWNSCALE / 1.06, 1.06)  # usable faces: 1x-5x the size, shrunk only


def _plan(scenes, size, n_pos, neg, rng):
    plan = plan_windows(scenes, FACES[size], None, rng, neg, _scale_range())
    if n_pos is not None:
        pos = [p for p in plan if p[4] == 1]
        negs = [p for p in plan if p[4] == 0]
        keep = np.sort(np.random.default_rng(rng).choice(len(pos), min(n_pos, len(pos)), replace=False))
        pos = [pos[i] for i in keep]
        plan = pos + negs[: neg * len(pos)]
    return plan


def _pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """The image and its 2x2-average reductions (``cv2.INTER_AREA`` halving)."""
    import cv2

    out = [image]
    for _ in range(levels):
        h, w = out[-1].shape[:2]
        if min(h, w) < 4:
            break
        out.append(cv2.resize(out[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    return out


def cut_fast(image: np.ndarray, windows: np.ndarray, native: int, out: int,
             pyramid: list | None = None) -> np.ndarray:
    """The windows ``(K, 3)`` = ``(cx, cy, s)`` of one image as ``uint8 (K, 3, out, out)``:
    ``native / s`` image pixels around ``(cx, cy)`` resampled to ``native`` pixels (bilinear,
    from the 2x2-average pyramid level where ``s * 2^l`` is in (1/2, 1], so each output pixel
    averages the image pixels it covers), then to ``out`` (bilinear up, area down); outside
    the image = the image's mean colour. The same windows as
    :func:`tinylib.studies.windows.cut_windows` (which uses ``roi_align``), with OpenCV: many
    times faster for the large 1x cuts of the Section 3 pools."""
    import cv2

    mean = tuple(float(v) for v in image.reshape(-1, 3).mean(0))
    windows = np.asarray(windows, np.float64).reshape(-1, 3)
    need = int(np.clip(np.floor(np.log2(1.0 / windows[:, 2].min())), 0, 12)) if len(windows) else 0
    pyr = pyramid if pyramid is not None and len(pyramid) > need else _pyramid(image, need)
    res = np.empty((len(windows), 3, out, out), np.uint8)
    for k, (cx, cy, s) in enumerate(windows):
        lvl = int(np.clip(np.floor(np.log2(1.0 / s)), 0, len(pyr) - 1))
        f = 2.0 ** lvl
        a = 1.0 / (s * f)
        bx = (cx + (0.5 - native / 2) / s) / f - 0.5
        by = (cy + (0.5 - native / 2) / s) / f - 0.5
        m = np.array([[a, 0.0, bx], [0.0, a, by]])
        crop = cv2.warpAffine(pyr[lvl], m, (native, native), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=mean)
        if out != native:
            crop = cv2.resize(crop, (out, out), interpolation=cv2.INTER_LINEAR if out > native
                              else cv2.INTER_AREA)
        res[k] = crop.transpose(2, 0, 1)
    return res


def _write_pool(path: Path, scenes, plan, native: int, out: int) -> None:
    tmp = path.with_suffix(".tmp.npy")
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(plan), 3, out, out))
    by_scene: dict[int, list[int]] = {}
    for i, p in enumerate(plan):
        by_scene.setdefault(p[0], []).append(i)
    for si, idx in by_scene.items():  # one scene at a time: bounded memory
        arr[idx] = cut_fast(scenes[si].image, np.array([plan[i][1:4] for i in idx]), native, out)
    arr.flush()
    del arr
    os.replace(tmp, path)


def build_pools(data: Section3Data, proto: Protocol, pool_dir, progress: bool = False) -> dict:
    """Cut (once; cached in ``pool_dir``) the windows of one face size: for ``train``,
    ``test`` and ``tuning`` the 1x cut (``pool_side`` px, every 1x window is its centre) and
    the 2x / 0.5x cut (``other_side`` px) of the same plan, and the labels/kinds
    (``{size}_{split}.npz``). Returns ``{split: {"labels", "kinds", "n_pos", "n_neg"}}``."""
    pool_dir = Path(pool_dir)
    pool_dir.mkdir(parents=True, exist_ok=True)
    size = data.size
    other = OTHER_RES[size]
    meta = {}
    specs = (("train", data.train, proto.max_train_pos, proto.train_neg_of(size), 1),
             ("test", data.test, proto.max_test_pos, proto.neg_of(size), 2),
             ("tuning", data.tuning, proto.max_test_pos, proto.neg_of(size), 3))
    for split, scenes, n_pos, neg, tag in tqdm(specs, desc=f"windows {size}", disable=not progress,
                                               leave=False):
        npz = pool_dir / f"{size}_{split}.npz"
        paths = {v: pool_dir / f"{size}_{split}_{v}.npy" for v in ("1x", "other")}
        if not (npz.is_file() and all(p.is_file() for p in paths.values())):
            plan = _plan(scenes, size, n_pos, neg, [proto.data_seed, tag])
            side = proto.pool_side
            _write_pool(paths["1x"], scenes, plan, side, side)
            native_other = int(round(proto.other_side / other))
            _write_pool(paths["other"], scenes, plan, native_other, proto.other_side)
            labels = np.array([p[4] for p in plan], np.int8)
            kinds = np.array([p[5] for p in plan])
            images = np.array([scenes[p[0]].image_id for p in plan])
            tmp = npz.with_suffix(".tmp.npz")
            np.savez(tmp, labels=labels, kinds=kinds, images=images)
            os.replace(tmp, npz)
        z = np.load(npz, allow_pickle=False)
        labels = z["labels"]
        meta[split] = {"labels": labels, "kinds": z["kinds"], "n_pos": int(labels.sum()),
                       "n_neg": int((labels == 0).sum()),
                       "n_images": int(len(np.unique(z["images"][labels == 1])))}
    return meta


# ------------------------------------------------------------------------------ one run
def _crop(batch: np.ndarray, side: int) -> np.ndarray:
    o = (batch.shape[-1] - side) // 2
    return batch[..., o:o + side, o:o + side] if o > 0 else batch


class _PoolBatches(torch.utils.data.Dataset):
    """``n`` balanced batches (half positives, random flips) read from a pool memory map,
    centre-cropped to the condition's window; item ``i`` = batch ``i``."""

    def __init__(self, pool, labels, side, batch_size, n, rng):
        rng = np.random.default_rng(rng)
        pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        half = batch_size // 2
        self.pool, self.labels, self.side = pool, labels, side
        self.draws = []
        for _ in range(n):
            idx = np.concatenate([rng.choice(pos, half), rng.choice(neg, batch_size - half)])
            self.draws.append((idx, rng.random(len(idx)) < 0.5))

    def __len__(self):
        return len(self.draws)

    def __getitem__(self, i):
        idx, flips = self.draws[i]
        order = np.argsort(idx)  # memory maps read faster in order
        x = np.empty((len(idx), 3, self.side, self.side), np.uint8)
        x[order] = _crop(self.pool[idx[order]], self.side)
        x[flips] = x[flips][..., ::-1]
        return torch.from_numpy(x), torch.from_numpy(self.labels[idx].astype(np.float32))


@torch.no_grad()
def _scores(model, pool, idx, side, batch: int) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(idx), batch):
        j = idx[i:i + batch]
        x = torch.from_numpy(np.ascontiguousarray(_crop(pool[j], side)))
        out.append(model(x).float().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros(0)


def _subset(labels, n_pos, neg_per_pos, rng):
    rng = np.random.default_rng(rng)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    p = rng.choice(pos, min(n_pos, len(pos)), replace=False)
    n = rng.choice(neg, min(n_pos * neg_per_pos, len(neg)), replace=False)
    return np.sort(np.concatenate([p, n]))


def task_id(init: str, size: str, cond: str, seed: int) -> str:
    return f"{init}__{size}__{cond.replace('+', '-')}__seed{seed}"


def tasks(proto: Protocol, sizes=("small", "large"), inits=("imagenet", "scratch"),
          conditions: dict | None = None) -> list[dict]:
    """Every run of the protocol: the ImageNet ones first, each init's most expensive first.
    ``conditions``: ``{size: (condition names)}`` to run only those (a live sample)."""
    out = []
    for size in sizes:
        for init in inits:
            for cond in CONDITIONS[size].values():
                if conditions is not None and cond.name not in conditions.get(size, ()):
                    continue
                for seed in proto.seeds:
                    cost = cond.window ** 2 * (2 if init == "scratch" else 1)
                    out.append({"init": init, "size": size, "cond": cond.name, "seed": seed,
                                "id": task_id(init, size, cond.name, seed), "cost": cost})
    return sorted(out, key=lambda t: (t["init"] != "imagenet", -t["cost"], t["id"]))


def run_task(task: dict, proto: Protocol, pool_dir, out_dir, threads: int = 1) -> dict:
    """Train and score one (init, size, condition, seed); writes ``out_dir/ID.json`` (and
    ``ID.curve.csv``) atomically and returns the record. An existing record is returned as is."""
    out_dir, pool_dir = Path(out_dir), Path(pool_dir)
    path = out_dir / f"{task['id']}.json"
    if path.is_file():
        return json.loads(path.read_text())
    torch.set_num_threads(threads)
    size, init, seed = task["size"], task["init"], int(task["seed"])
    cond = CONDITIONS[size][task["cond"]]
    side = cond.window if cond.pool == "1x" else proto.other_side
    pools, labels = {}, {}
    for split in ("train", "test", "tuning"):
        pools[split] = np.load(pool_dir / f"{size}_{split}_{cond.pool}.npy", mmap_mode="r")
        labels[split] = np.load(pool_dir / f"{size}_{split}.npz", allow_pickle=False)["labels"]
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = TrunkStudyNet(cond.layers, init=init, pretrained="auto")
    batches = _PoolBatches(pools["train"], labels["train"], side, proto.batch_size, proto.steps,
                           [proto.data_seed, seed, 1])
    curve_idx = _subset(labels["train"], proto.curve_pos_of(size), proto.neg_of(size),
                        [proto.data_seed, 7])
    curve = []

    def on_step(row):
        step = int(row["step"])
        if seed == proto.seeds[0] and (step % proto.curve_every == 0 or step == proto.steps):
            sc = _scores(model, pools["train"], curve_idx, side, proto.eval_batch)
            curve.append({"step": step, "train_ap": window_ap(sc, labels["train"][curve_idx])})

    with torch_threads(threads):
        hist = train_classifier(model, batches, proto.steps, lr=proto.lr_of(init), device="cpu",
                                weight_decay=proto.weight_decay, desc=task["id"], on_step=on_step,
                                running_ap=proto.running_ap_steps)
        train_seconds = time.perf_counter() - start
        aps = {}
        for split in ("test", "tuning"):
            idx = np.arange(len(labels[split]))
            aps[split] = window_ap(_scores(model, pools[split], idx, side, proto.eval_batch),
                                   labels[split])
        tr_idx = _subset(labels["train"], proto.train_ap_pos_of(size), proto.neg_of(size),
                         [proto.data_seed, 5])
        train_ap = window_ap(_scores(model, pools["train"], tr_idx, side, proto.eval_batch),
                             labels["train"][tr_idx])
    hist = hist.assign(step=hist["step"] + 1)  # "after step n", as the engine counts
    hist = hist.merge(pd.DataFrame(curve, columns=["step", "train_ap"]), on="step", how="left") \
        if curve else hist.assign(train_ap=np.nan)
    rec = {**{k: task[k] for k in ("id", "init", "size", "cond", "seed")},
           "layers": "+".join(cond.layers), "resolution": cond.resolution, "rf": cond.rf,
           "window": side, "ap": aps["test"], "ap_tuning": aps["tuning"], "train_ap": train_ap,
           "loaded_imagenet": bool(model.loaded),
           "n_train_pos": int(labels["train"].sum()), "n_train_neg": int((labels["train"] == 0).sum()),
           "n_test_pos": int(labels["test"].sum()), "n_test_neg": int((labels["test"] == 0).sum()),
           "n_tuning_pos": int(labels["tuning"].sum()), "steps": proto.steps,
           "batch_size": proto.batch_size, "train_seconds": round(train_seconds, 1),
           "seconds": round(time.perf_counter() - start, 1),
           "final_running_ap": float(hist["running_ap"].iloc[-1]) if len(hist) else float("nan"),
           "final_loss": float(hist["loss"].iloc[-1]) if len(hist) else float("nan")}
    out_dir.mkdir(parents=True, exist_ok=True)
    hist.assign(id=task["id"]).to_csv(out_dir / f"{task['id']}.curve.csv.tmp", index=False)
    os.replace(out_dir / f"{task['id']}.curve.csv.tmp", out_dir / f"{task['id']}.curve.csv")
    atomic_write_text(path, json.dumps(rec, indent=1) + "\n")
    return rec


def _worker_init():
    torch.set_num_threads(1)


def run_section3(out_dir, proto: Protocol | None = None, sizes=("small", "large"),
                 inits=("imagenet", "scratch"), source: str = "auto", progress: bool = True,
                 workers: int | None = None, data: dict | None = None,
                 conditions: dict | None = None) -> pd.DataFrame:
    """Run the whole protocol (resumable: done runs are skipped) into ``out_dir``
    (``pools/``, ``results/``) and return the assembled table (:func:`assemble`).
    ``data``: ``{size: Section3Data}`` to use instead of :func:`section3_scenes`;
    ``conditions``: ``{size: (names)}`` to run only those conditions."""
    proto = proto or protocol()
    workers = proto.workers if workers is None else workers
    out_dir = Path(out_dir)
    pool_dir, res_dir = out_dir / "pools", out_dir / "results"
    metas, kinds, images = {}, {}, {}
    for size in sizes:
        npz_ok = all((pool_dir / f"{size}_{s}.npz").is_file() for s in ("train", "test", "tuning"))
        info = out_dir / f"data_{size}.json"
        if npz_ok and info.is_file() and (data is None or size not in data):
            d = json.loads(info.read_text())
            kinds[size], images[size] = d["kind"], d["images"]
            metas[size] = build_pools(Section3Data(size, [], [], [], d["kind"]), proto, pool_dir)
            continue
        sd = (data or {}).get(size) or section3_scenes(size, proto, source=source, progress=progress)
        metas[size] = build_pools(sd, proto, pool_dir, progress=progress)
        kinds[size], images[size] = sd.kind, sd.images
        atomic_write_text(info, json.dumps({"kind": sd.kind, "images": sd.images}) + "\n")
        del sd
    todo = tasks(proto, sizes, inits, conditions)
    left = [t for t in todo if not (res_dir / f"{t['id']}.json").is_file()]
    bar = tqdm(total=len(todo), initial=len(todo) - len(left), desc="section 3 runs",
               disable=not progress)
    if workers <= 1:
        for t in left:
            run_task(t, proto, pool_dir, res_dir)
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init) as pool:
            futs = [pool.submit(run_task, t, proto, pool_dir, res_dir) for t in left]
            for f in as_completed(futs):
                f.result()
                bar.update()
    bar.close()
    atomic_write_text(out_dir / "run.json", json.dumps(
        {"protocol": asdict(proto), "kinds": kinds, "images": images}, default=list) + "\n")
    return assemble(out_dir, proto, sizes, inits, conditions)


def assemble(out_dir, proto: Protocol = PROTOCOL, sizes=("small", "large"),
             inits=("imagenet", "scratch"), conditions: dict | None = None) -> pd.DataFrame:
    """The table from the run's records: one row per (init, effect, size, condition, seed);
    a run shared by two effects (s4: context and foveal; s2+s3+s4: foveal and resolution's
    1x) appears under each. Raises ``FileNotFoundError`` naming the runs not done yet."""
    res_dir = Path(out_dir) / "results"
    todo = tasks(proto, sizes, inits, conditions)
    missing = [t["id"] for t in todo if not (res_dir / f"{t['id']}.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{res_dir}: {len(missing)} of {len(todo)} runs not done "
                                f"(e.g. {missing[0]}); rerun to finish them")
    kinds = {}
    run_json = Path(out_dir) / "run.json"
    if run_json.is_file():
        kinds = json.loads(run_json.read_text()).get("kinds", {})
    rows = []
    for t in todo:
        rec = json.loads((res_dir / f"{t['id']}.json").read_text())
        cond = CONDITIONS[t["size"]][t["cond"]]
        for effect in cond.effects:
            n_pos = rec["n_test_pos"]
            rows.append({
                "init": rec["init"], "effect": effect, "size": rec["size"],
                "face": "x".join(map(str, FACES[rec["size"]])),
                "condition": _condition_label(effect, rec["size"], cond), "run": cond.name,
                "layers": rec["layers"], "resolution": rec["resolution"], "rf": rec["rf"],
                "rf_image": round(rec["rf"] / rec["resolution"]), "window": rec["window"],
                "seed": rec["seed"], "ap": rec["ap"], "ap_tuning": rec["ap_tuning"],
                "train_ap": rec["train_ap"], "n_train_pos": rec["n_train_pos"],
                "n_train_neg": rec["n_train_neg"], "n_test_pos": n_pos,
                "n_test_neg": rec["n_test_neg"], "n_tuning_pos": rec["n_tuning_pos"],
                "test_positives": (f">= {proto.min_test_pos}" if n_pos >= proto.min_test_pos
                                   else f"all usable faces ({n_pos} < {proto.min_test_pos})"),
                "steps": rec["steps"], "data": kinds.get(rec["size"], "real"),
                "imagenet_loaded": rec["loaded_imagenet"], "seconds": rec["seconds"]})
    order = {e: i for i, e in enumerate(EFFECTS)}
    frame = pd.DataFrame(rows)
    frame["_e"] = frame["effect"].map(order)
    frame["_s"] = frame["size"].map({"small": 0, "large": 1})
    frame["_i"] = frame["init"].map({"imagenet": 0, "scratch": 1})
    return (frame.sort_values(["_i", "_e", "_s", "rf_image", "condition", "seed"], kind="stable")
            .drop(columns=["_e", "_s", "_i"]).reset_index(drop=True))


def curves(out_dir, proto: Protocol = PROTOCOL, sizes=("small", "large"),
           inits=("imagenet", "scratch")) -> pd.DataFrame:
    """The training curves of every run: ``init, size, condition, seed, step, loss,
    running_ap`` and (seed 0, every ``curve_every`` steps) ``train_ap``."""
    res_dir = Path(out_dir) / "results"
    parts = []
    for t in tasks(proto, sizes, inits):
        c = pd.read_csv(res_dir / f"{t['id']}.curve.csv")
        c = c[["step", "loss", "running_ap", "train_ap"]].copy()
        keep = (c["step"] % 5 == 0) | c["train_ap"].notna() | (c["step"] == c["step"].max())
        c = c[keep]
        c.insert(0, "seed", t["seed"])
        c.insert(0, "condition", t["cond"])
        c.insert(0, "size", t["size"])
        c.insert(0, "init", t["init"])
        parts.append(c)
    return pd.concat(parts, ignore_index=True)



def live_sample(conditions: dict, inits=("imagenet",), proto: Protocol | None = None,
                out_dir=None, progress: bool = False, source: str = "auto") -> pd.DataFrame:
    """A chapter's live sample: the runs of ``conditions`` (``{size: (names)}``) at
    :func:`sample_protocol` (quick: seconds), on the real photos when the data root has them,
    else on synthetic scenes. Returns one row per (init, size, condition): ``ap`` and
    ``train_ap`` (mean over the seeds, %), ``ap_std``, ``seeds``, ``steps``, ``n_train_pos``,
    ``n_test_pos``, ``n_test_images`` (the photos they come from), ``data``, ``imagenet_loaded`` (False: the ImageNet weights were absent and
the "imagenet" runs started from random weights, with a warning). A demo beside the shipped table: record it as ``KEY.sample``,
    never as the claim. ``out_dir=None``: a temporary folder, removed afterwards."""
    import tempfile

    proto = proto or sample_protocol()
    with tempfile.TemporaryDirectory() as tmp:
        frame = run_section3(out_dir or tmp, proto, sizes=tuple(conditions), inits=tuple(inits),
                             progress=progress, workers=1, conditions=conditions, source=source)
        photos = {size: len(json.loads((Path(out_dir or tmp) / f"data_{size}.json").read_text())
                            ["images"]["test"]) for size in conditions}
    runs = frame.drop_duplicates(["init", "size", "run", "seed"])
    g = runs.groupby(["init", "size", "run"], sort=False)
    out = g.agg(ap=("ap", "mean"), ap_std=("ap", "std"), train_ap=("train_ap", "mean"),
                seeds=("seed", "nunique"), steps=("steps", "first"), rf_image=("rf_image", "first"),
                n_train_pos=("n_train_pos", "first"), n_test_pos=("n_test_pos", "first"),
                data=("data", "first"), imagenet_loaded=("imagenet_loaded", "all"),
                ).reset_index().rename(columns={"run": "condition"})
    out["n_test_images"] = out["size"].map(photos)
    out[["ap", "ap_std", "train_ap"]] *= 100
    return out


def run_status(out_dir, proto: Protocol = PROTOCOL, sizes=("small", "large"),
               inits=("imagenet", "scratch")) -> str:
    """How far the run in ``out_dir`` is: runs done of all, CPU seconds they took, and the
    wall time the rest would take at the rate of the runs done so far (per cost unit)."""
    res_dir = Path(out_dir) / "results"
    todo = tasks(proto, sizes, inits)
    done = [t for t in todo if (res_dir / f"{t['id']}.json").is_file()]
    if not done:
        return f"{out_dir}: 0 of {len(todo)} runs done"
    secs = [json.loads((res_dir / f"{t['id']}.json").read_text())["seconds"] for t in done]
    rate = sum(secs) / sum(t["cost"] for t in done)  # seconds per cost unit (window area x init)
    left = sum(t["cost"] for t in todo if t not in done) * rate
    by = pd.Series([t["init"] for t in done]).value_counts().to_dict()
    return (f"{out_dir}: {len(done)} of {len(todo)} runs done ({by}); {sum(secs) / 60:.0f} "
            f"worker-minutes so far; the rest ~{left / 60:.0f} worker-minutes at this rate "
            f"(~{left / 60 / max(1, proto.workers):.0f} min with {proto.workers} workers)")
