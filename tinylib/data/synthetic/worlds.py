"""The world writers of the synthetic world: many rendered scenes written to disk in the
real layouts, so every loader and evaluator of tinylib runs unchanged on them.

A *data root* made by :func:`make_world` is laid out exactly like the real one::

    <root>/world.json                                   manifest (parameters, seed, counts)
    <root>/widerface/WIDER_{train,val}/images/<event>/<name>.jpg
    <root>/widerface/wider_face_{train,val}_bbx_gt.txt  official text format
    <root>/widerface/split_mat/wider_face_{train,val}.mat     official split MAT files
    <root>/widerface/image_sizes_train_val.csv          like the real (derived) one
    <root>/widerface/eval_gt/wider_{face,easy,medium,hard}_val.mat
    <root>/tinyperson/annotations/tiny_set_{train,test}.json   COCO json (TinyBenchmark)
    <root>/tinyperson/{train,test}  -> ../widerface/WIDER_{train,val}/images  (symlinks)

The images come from :func:`tinylib.data.synthetic.scene.render_scene`, each seeded
``(seed, split, index)``.

TinyPerson / COCO json
----------------------
One annotation per person: ``bbox`` is the full body (hair top to body bottom, shoulder
to shoulder) clipped to the image, ``category_id`` 1. ``ignore`` is true for persons whose
face is heavily occluded (``occlusion == 2``) and for one region per dense far-away
cluster (its members are not listed one by one; their faces are in the WIDER files with
``invalid = 1``). ``uncertain`` marks persons whose face is heavily blurred and under
10 px; ``in_dense_image`` images with 20 persons or more; ``logo`` is always false.
``file_name`` is relative to ``tinyperson/`` (``train/<event>/<name>.jpg``,
``test/<event>/<name>.jpg``); ``tinyperson/train`` and ``tinyperson/test`` are relative
symlinks to the WIDER image folders (copies where symlinks are not allowed).

Keep lists (eval_gt)
--------------------
The official easy/medium/hard ``gt_list`` also depend on blur, occlusion and pose. The
synthetic rule is **height only**: easy keeps faces with ``h > 50``, medium ``h > 30``,
hard ``h > 10`` pixels (nested, as the official ones are).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from tqdm.auto import tqdm

from tinylib import config

from .scene import (
    EVENT_SPEC,
    EVENTS,
    FACE_COLUMNS,
    SizeDistribution,
    face_size_distribution,
    render_scene,
)

log = logging.getLogger(__name__)

__all__ = [
    "GENERATOR_VERSION",
    "KEEP_HEIGHTS",
    "keep_indices",
    "make_world",
    "quick_world",
    "quick_world_params",
    "read_manifest",
]

#: Bump when the rendering or the layout changes: it is part of the cache key.
GENERATOR_VERSION = "1.4"
#: Face-height thresholds (pixels, strictly greater) of the synthetic keep lists.
KEEP_HEIGHTS = {"easy": 50, "medium": 30, "hard": 10}


def keep_indices(heights, setting: str) -> np.ndarray:
    """0-based indices of the faces kept by the synthetic ``setting`` (height only:
    ``h > KEEP_HEIGHTS[setting]``)."""
    h = np.asarray(heights, dtype=np.float64).reshape(-1)
    return np.flatnonzero(h > KEEP_HEIGHTS[setting])


def _image_name(event: str, k: int) -> str:
    eid, ename = event.split("--", 1)
    return f"{eid}_{ename}_{ename.lower()}_{eid}_{k}.jpg"


def _plan(n: int, events) -> list[tuple[str, str]]:
    """(event, file name) for n images, round-robin over events, grouped by event."""
    per = {e: [] for e in events}
    for i in range(n):
        e = events[i % len(events)]
        per[e].append(_image_name(e, len(per[e])))
    return [(e, name) for e in events for name in per[e]]


_WORKER_DIST: SizeDistribution | None = None


def _init_worker(dist: SizeDistribution) -> None:
    global _WORKER_DIST
    _WORKER_DIST = dist


def _render_one(task, size_dist: SizeDistribution | None = None):
    """Render and write one image (runs in worker processes too). Returns its tables."""
    (seed, split_code, index, event, name, width, height, out_path, quality) = task
    size_dist = size_dist if size_dist is not None else _WORKER_DIST

    rng = np.random.default_rng(np.random.SeedSequence([seed, split_code, index]))
    image, faces, persons = render_scene(rng, width, height, event=event, size_dist=size_dist)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_bytes(buf.getvalue())
    return faces, persons


def _bbx_txt(entries) -> str:
    lines = []
    for key, faces in entries:
        lines.append(key)
        lines.append(str(len(faces)))
        if len(faces) == 0:
            lines.append("0 0 0 0 0 0 0 0 0 0 ")
        for row in faces[FACE_COLUMNS].to_numpy(np.int64):
            lines.append(" ".join(str(int(v)) for v in row) + " ")
    return "\n".join(lines) + "\n"


def _cell(items) -> np.ndarray:
    arr = np.empty((len(items), 1), dtype=object)
    for i, it in enumerate(items):
        arr[i, 0] = it
    return arr


def _wider_mat_vars(entries) -> tuple[dict, list, dict]:
    """The 9 variables of an official WIDER split / eval MAT file (cells of cells)."""
    events = list(dict.fromkeys(k.split("/")[0] for k, _ in entries))
    by_event = {e: [(k, f) for k, f in entries if k.split("/")[0] == e] for e in events}
    base = {
        "event_list": _cell([np.array([e]) for e in events]),
        "file_list": _cell([_cell([k.split("/")[1][:-4] for k, _ in by_event[e]])
                            for e in events]),
        "face_bbx_list": _cell([_cell([f[["x", "y", "w", "h"]].to_numpy(np.float64).reshape(-1, 4)
                                       for _, f in by_event[e]]) for e in events]),
    }
    for attr in ("blur", "expression", "illumination", "invalid", "occlusion", "pose"):
        base[f"{attr}_label_list"] = _cell([
            _cell([f[attr].to_numpy(np.uint8).reshape(-1, 1) for _, f in by_event[e]])
            for e in events])
    return base, events, by_event


def _write_split_mat(path: Path, entries) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, _wider_mat_vars(entries)[0], do_compression=True)


def _write_eval_mats(directory: Path, entries) -> dict:
    base, events, by_event = _wider_mat_vars(entries)
    directory.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(directory / "wider_face_val.mat", base, do_compression=True)
    kept = {}
    for setting in ("easy", "medium", "hard"):
        gt = _cell([_cell([(keep_indices(f["h"], setting) + 1).astype(np.float64).reshape(-1, 1)
                           for _, f in by_event[e]]) for e in events])
        scipy.io.savemat(directory / f"wider_{setting}_val.mat", {**base, "gt_list": gt},
                         do_compression=True)
        kept[setting] = int(sum(len(keep_indices(f["h"], setting)) for _, f in entries))
    return kept


def _coco(entries, width, height, prefix: str) -> dict:
    images, anns = [], []
    aid = 1
    for iid, (key, persons) in enumerate(entries, start=1):
        images.append({"id": iid, "file_name": f"{prefix}/{key}", "width": width,
                       "height": height})
        dense = int((persons["kind"] == "person").sum()) >= 20
        for r in persons.itertuples(index=False):
            if r.w <= 0 or r.h <= 0:
                continue
            anns.append({"id": aid, "image_id": iid,
                         "bbox": [float(r.x), float(r.y), float(r.w), float(r.h)],
                         "category_id": 1, "area": float(r.w * r.h), "iscrowd": 0,
                         "ignore": bool(r.ignore), "uncertain": bool(r.uncertain),
                         "logo": False, "in_dense_image": dense, "segmentation": []})
            aid += 1
    return {"info": {"description": "tinylib synthetic world (TinyPerson layout)",
                     "version": GENERATOR_VERSION},
            "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person"}]}


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def _params(n_train, n_val, seed, image_size, dist: SizeDistribution, events, quality) -> dict:
    return {"n_train": int(n_train), "n_val": int(n_val), "seed": int(seed),
            "image_size": [int(image_size[0]), int(image_size[1])],
            "size_dist": dist.describe(), "events": list(events), "jpeg_quality": int(quality),
            "generator_version": GENERATOR_VERSION}


def _params_key(params: dict) -> str:
    blob = json.dumps(params, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_manifest(root: str | os.PathLike) -> dict:
    """The ``world.json`` of a synthetic data root."""
    path = Path(root) / "world.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not a synthetic world (no world.json)") from None


def _complete(root: Path, key: str | None = None) -> bool:
    try:
        man = read_manifest(root)
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return key is None or man.get("key") == key


@contextlib.contextmanager
def _lock(path: Path):
    """Best-effort exclusive lock (POSIX flock) so parallel workers do not all build."""
    try:
        import fcntl  # POSIX only, hence imported here
    except ImportError:  # pragma: no cover - Windows: rely on the atomic rename alone
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def make_world(n_train: int, n_val: int, *, seed: int = 0, image_size=(512, 384), root=None,
               size_dist=None, events=EVENTS, jpeg_quality: int = 92, workers: int = 1,
               progress: bool = False) -> Path:
    """Build (or reuse) a synthetic data root; returns its path.

    ``image_size`` is ``(W, H)``. ``root=None`` caches the world under
    ``config.cache_dir("synthetic", <key>)`` where ``key`` hashes every parameter and
    :data:`GENERATOR_VERSION`; a complete world (``world.json`` present) is reused at once.
    The world is built in a temporary sibling directory and renamed into place, so a
    concurrent builder never sees half a world; if another process finished first, its
    world is kept and ours discarded. ``workers > 1`` renders in processes (the output does
    not depend on it: every image has its own seed ``(seed, split, index)``).
    With an explicit ``root`` an existing world with other parameters raises ``ValueError``.
    """
    if n_train < 0 or n_val < 0:
        raise ValueError(f"n_train={n_train}, n_val={n_val}: counts must be >= 0")
    width, height = (int(v) for v in image_size)
    if width < 32 or height < 32:
        raise ValueError(f"image_size={image_size}: both sides must be >= 32 px")
    events = tuple(events)
    for e in events:
        if e not in EVENT_SPEC:
            raise ValueError(f"event {e!r}: expected some of {list(EVENT_SPEC)}")
    dist = face_size_distribution(size_dist)
    params = _params(n_train, n_val, seed, (width, height), dist, events, jpeg_quality)
    key = _params_key(params)
    if root is None:
        final = config.cache_dir("synthetic") / key
    else:
        final = Path(root).expanduser()
        if final.exists() and any(final.iterdir()):
            if _complete(final, key):
                return final
            raise ValueError(f"{final} exists and is not the world asked for (key {key}); "
                             "choose another root or delete it")
    if _complete(final, key):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _lock(final.parent / f".{final.name}.lock"):
        if _complete(final, key):
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            _build(tmp, params, key, dist, events, width, height, jpeg_quality, workers,
                   progress)
            _publish(tmp, final, key)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def _publish(tmp: Path, final: Path, key: str) -> None:
    try:
        os.replace(tmp, final)  # replaces only a missing or empty directory
        return
    except OSError:
        pass
    if _complete(final, key):
        log.info("another process built %s first; using it", final)
        return
    # a stale, incomplete directory (crashed build outside our rename): move it aside
    stale = final.with_name(f".{final.name}.stale-{os.getpid()}")
    os.replace(final, stale)
    shutil.rmtree(stale, ignore_errors=True)
    os.replace(tmp, final)


def _build(tmp: Path, params, key, dist, events, width, height, quality, workers, progress):
    wider = tmp / "widerface"
    tasks = []
    for split_code, (split, n) in enumerate((("train", params["n_train"]),
                                             ("val", params["n_val"]))):
        for index, (event, name) in enumerate(_plan(n, events)):
            out = wider / f"WIDER_{split}" / "images" / event / name
            tasks.append((params["seed"], split_code, index, event, name, width, height,
                          str(out), quality))
    if workers > 1 and len(tasks) > 1:
        # spawn, not fork: the caller may hold torch / OpenMP threads that fork can deadlock
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(dist,)) as ex:
            results = list(tqdm(ex.map(_render_one, tasks, chunksize=4), total=len(tasks),
                                disable=not progress, desc="synthetic world"))
    else:
        results = [_render_one(t, dist) for t in tqdm(tasks, disable=not progress,
                                                      desc="synthetic world")]
    counts = {}
    kept = {}
    sizes = ["split,image,width,height,num_faces_in_gt"]
    for split_code, split in enumerate(("train", "val")):
        sel = [(t, r) for t, r in zip(tasks, results) if t[1] == split_code]
        face_entries = [(f"{t[3]}/{t[4]}", r[0]) for t, r in sel]
        person_entries = [(f"{t[3]}/{t[4]}", r[1]) for t, r in sel]
        _write_text(wider / f"wider_face_{split}_bbx_gt.txt", _bbx_txt(face_entries))
        sizes += [f"{split},{key},{width},{height},{len(f)}" for key, f in face_entries]
        _write_split_mat(wider / "split_mat" / f"wider_face_{split}.mat", face_entries)
        if split == "val":
            kept = _write_eval_mats(wider / "eval_gt", face_entries)
        tp_split = "train" if split == "train" else "test"
        coco = _coco(person_entries, width, height, tp_split)
        _write_text(tmp / "tinyperson" / "annotations" / f"tiny_set_{tp_split}.json",
                    json.dumps(coco))
        link = tmp / "tinyperson" / tp_split
        target = Path("..") / "widerface" / f"WIDER_{split}" / "images"
        (wider / f"WIDER_{split}" / "images").mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(target, target_is_directory=True)
        except OSError:  # no symlinks (Windows without privileges): copy
            shutil.copytree(wider / f"WIDER_{split}" / "images", link)
        counts[split] = {"images": len(sel),
                         "faces": int(sum(len(r[0]) for _, r in sel)),
                         "persons": int(sum(int((r[1]["kind"] == "person").sum())
                                            for _, r in sel)),
                         "ignore_regions": int(sum(int((r[1]["kind"] != "person").sum())
                                                   for _, r in sel))}
    _write_text(wider / "image_sizes_train_val.csv", "\n".join(sizes) + "\n")
    manifest = {"kind": "tinylib synthetic world", "key": key, "params": params,
                "counts": counts, "val_kept": kept,
                "keep_rule": {s: f"face height > {t} px (height only)"
                              for s, t in KEEP_HEIGHTS.items()},
                "tinyperson_file_name": "relative to tinyperson/ (train/ and test/ link to "
                                        "widerface/WIDER_{train,val}/images)"}
    # the manifest is written last: its presence marks a complete world
    _write_text(tmp / "world.json", json.dumps(manifest, indent=1, sort_keys=True))


def quick_world_params() -> dict:
    """Parameters of the standard world (:func:`quick_world`) in the current tier."""
    return config.pick(
        {"n_train": 160, "n_val": 40, "seed": 0, "image_size": (512, 384),
         "size_dist": "quick"},
        {"n_train": 400, "n_val": 100, "seed": 0, "image_size": (768, 576),
         "size_dist": None},
        {"n_train": 4000, "n_val": 1000, "seed": 0, "image_size": (1024, 768),
         "size_dist": None},
    )


def quick_world(progress: bool = False, workers: int | None = None) -> Path:
    """The standard synthetic world: quick tier 160 train + 40 val images of 512x384
    (faces mostly 8–60 px); cpu tier 400 + 100 of 768x576 and full tier 4000 + 1000 of
    1024x768, both with the WIDER face-size distribution (rendered with all CPU cores)."""
    p = quick_world_params()
    if workers is None:
        workers = 1 if config.quick_mode() else max(1, os.cpu_count() or 1)
    return make_world(p["n_train"], p["n_val"], seed=p["seed"], image_size=p["image_size"],
                      size_dist=p["size_dist"], workers=workers, progress=progress)
