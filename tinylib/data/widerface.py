"""WIDER FACE: ground-truth files, evaluation ground truth and a torch Dataset.

Files (under the data root, ``TINYLIB_DATA``)::

    widerface/wider_face_{train,val}_bbx_gt.txt   official text ground truth
    widerface/wider_face_test_filelist.txt        test image list (no boxes)
    widerface/split_mat/wider_face_{train,test}.mat   official split MAT files
    widerface/eval_gt/wider_{face,easy,medium,hard}_val.mat   evaluation ground truth
    widerface/WIDER_{split}/images/<event>/<file>.jpg          images (optional)
    widerface/sample_images/<file>.jpg                          a few val images

The text format (``wider_face_split/readme.txt``) is, per image: the path
``<event>/<file>.jpg``, the number of faces, then one line per face
``x1 y1 w h blur expression illumination invalid occlusion pose``.

Quirks of the real files, all handled here:

* an image without faces is written with count ``0`` followed by a dummy line
  ``0 0 0 0 0 0 0 0 0 0`` (train: 4 images); the dummy is a *placeholder*, not a face, and
  is not in the table (``df.attrs["placeholders"]`` lists those images);
* the val txt instead writes 4 images as count ``1`` with an all-zero box line: that line
  *is* counted (it is one of the official 39,708 boxes) and is flagged ``degenerate``;
* boxes with zero or negative width/height are kept and flagged ``degenerate``; together
  with ``invalid`` they become ``ignore`` in the samples (never positives or negatives);
* trailing spaces on every box line; CRLF line ends (accepted everywhere).

In the MAT files both kinds of "empty" image look the same (one all-zero box), so the split
MAT reader has to be told which convention the text of that split uses; ``load_faces``
does this for the official files, so ``source="txt"`` and ``source="mat"`` give identical
tables for train and val.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch.utils.data

from ..boxes import box_convert
from ..config import DataRootError, dataset_dir
from ..io import atomic_write_bytes
from ._parse import (
    AnnotationError,
    load_mat,
    mat_array,
    mat_cells,
    mat_string,
    parse_int_rows,
    read_text_lines,
)
from .images import read_first_readable

log = logging.getLogger(__name__)

__all__ = [
    "AnnotationError",
    "ATTRIBUTES",
    "COLUMNS",
    "SETTINGS",
    "WiderEvalGT",
    "WiderFaceDataset",
    "read_bbx_gt",
    "format_bbx_gt",
    "write_bbx_gt",
    "read_split_mat",
    "read_eval_gt",
    "load_faces",
    "load_images",
    "load_eval_gt",
    "image_key",
    "image_path",
    "val_image_paths",
    "sample_images",
]

ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
BOX_FIELDS = ("x", "y", "w", "h") + ATTRIBUTES
COLUMNS = ("image", "event") + BOX_FIELDS + ("degenerate",)
SETTINGS = ("easy", "medium", "hard")
SPLITS = ("train", "val", "test")
_BOX_EXPECTED = "10 integers 'x y w h blur expression illumination invalid occlusion pose'"
_MAT_LABEL_VARS = {
    "blur": "blur_label_list",
    "expression": "expression_label_list",
    "illumination": "illumination_label_list",
    "invalid": "invalid_label_list",
    "occlusion": "occlusion_label_list",
    "pose": "pose_label_list",
}
# How the official text of each split writes an image without faces (see module docstring).
_EMPTY_AS_PLACEHOLDER = {"train": True, "val": False}


def _check_split(split: str, allowed=("train", "val")) -> str:
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
    return split


def _is_int(tok: str) -> bool:
    return tok.lstrip("+-").isdigit()


def image_key(image: str) -> str:
    """``"event/name.jpg"`` -> ``"event/name"`` (the key used by the evaluation)."""
    stem, ext = os.path.splitext(image)
    return stem if ext.lower() in (".jpg", ".jpeg", ".png") else image


# --------------------------------------------------------------------------- text format
def _empty_table() -> pd.DataFrame:
    cols = {"image": pd.Series([], dtype=object), "event": pd.Series([], dtype=object)}
    for f in BOX_FIELDS:
        cols[f] = pd.Series([], dtype=np.int64)
    cols["degenerate"] = pd.Series([], dtype=bool)
    return pd.DataFrame(cols)


def _make_table(images: list[str], img_index: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    if len(img_index) == 0:
        return _empty_table()
    names = np.array(images, dtype=object)
    events = np.array([im.split("/", 1)[0] if "/" in im else "" for im in images], dtype=object)
    cols: dict[str, object] = {"image": names[img_index], "event": events[img_index]}
    values = values.astype(np.int64, copy=False)
    for k, f in enumerate(BOX_FIELDS):
        cols[f] = values[:, k]
    cols["degenerate"] = (values[:, 2] <= 0) | (values[:, 3] <= 0)
    return pd.DataFrame(cols)


def _file_stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def read_bbx_gt(path: str | os.PathLike) -> pd.DataFrame:
    """Parse any file in the ``wider_face_*_bbx_gt.txt`` format into the face table.

    One row per face line (columns :data:`COLUMNS`), placeholders of count-0 images left
    out. ``df.attrs["images"]`` lists every image in file order (also those without faces),
    ``df.attrs["placeholders"]`` the count-0 images, ``df.attrs["path"]`` the file.
    Raises :class:`AnnotationError` (file, line, text) on a malformed or truncated file.
    Results are cached per file version; a copy is returned."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"WIDER FACE ground-truth file not found: {path}")
    df = _read_bbx_gt_cached(*_file_stamp(path))
    out = df.copy()
    out.attrs = {k: (list(v) if isinstance(v, list) else v) for k, v in df.attrs.items()}
    return out


@functools.lru_cache(maxsize=8)
def _read_bbx_gt_cached(path: str, _mtime: int, _size: int) -> pd.DataFrame:
    lines = read_text_lines(path)
    n = len(lines)
    while n and not lines[n - 1].strip():  # trailing blank lines / final newline
        n -= 1
    images: list[str] = []
    name_lines: list[int] = []
    placeholders: list[str] = []
    starts: list[int] = []  # index (0-based) of the first box line of each image
    counts: list[int] = []
    i = 0
    while i < n:
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        toks = name.split()
        if all(_is_int(t) for t in toks):
            hint = ""
            if images:
                hint = (
                    f" (the previous image {images[-1]!r}, line {name_lines[-1]}, declared "
                    f"{counts[-1]} faces; is the count too small?)"
                )
            raise AnnotationError(path, i + 1, name, "an image path '<event>/<file>.jpg'" + hint)
        if i + 1 >= n or not lines[i + 1].strip():
            raise AnnotationError(
                path, min(i + 2, n), None if i + 1 >= n else lines[i + 1],
                f"the face count of image {name!r} (line {i + 1}); the file ends or has a blank line",
            )
        count_text = lines[i + 1].strip()
        if not count_text.isdigit():
            raise AnnotationError(path, i + 2, lines[i + 1], f"the face count (an integer >= 0) of image {name!r}")
        count = int(count_text)
        images.append(name)
        name_lines.append(i + 1)
        start = i + 2
        if count == 0:
            # official files follow a count of 0 with a dummy all-zero line
            if start < n:
                nxt = lines[start].split()
                if len(nxt) == len(BOX_FIELDS) and all(_is_int(t) for t in nxt):
                    if any(int(t) != 0 for t in nxt):
                        raise AnnotationError(
                            path, start + 1, lines[start],
                            f"the dummy line '0 0 0 0 0 0 0 0 0 0' after the count 0 of image "
                            f"{name!r} (line {i + 1}); is the count wrong?",
                        )
                    start += 1
            placeholders.append(name)
            starts.append(start)
            counts.append(0)
            i = start
            continue
        end = start + count
        if end > n:
            have = n - start
            raise AnnotationError(
                path, n, None,
                f"{count} face lines for image {name!r} (line {i + 1}) but the file ends after {have}",
            )
        starts.append(start)
        counts.append(count)
        i = end

    counts_arr = np.asarray(counts, dtype=np.int64)
    starts_arr = np.asarray(starts, dtype=np.int64)
    total = int(counts_arr.sum()) if len(counts_arr) else 0
    img_index = np.repeat(np.arange(len(images)), counts_arr)
    if total:
        offsets = np.arange(total) - np.repeat(np.cumsum(counts_arr) - counts_arr, counts_arr)
        line_idx = np.repeat(starts_arr, counts_arr) + offsets
    else:
        line_idx = np.zeros(0, dtype=np.int64)
    rows = [lines[j].split() for j in line_idx.tolist()]
    try:
        values = parse_int_rows(path, rows, line_idx + 1, len(BOX_FIELDS), _BOX_EXPECTED)
    except AnnotationError as err:
        k = int(np.searchsorted(line_idx + 1, err.line))
        im = int(img_index[k])
        raise AnnotationError(
            path, err.line, err.text,
            f"{_BOX_EXPECTED} (face {k - int(np.cumsum(counts_arr)[im] - counts_arr[im]) + 1} of "
            f"{counts[im]} declared for image {images[im]!r} at line {name_lines[im]})",
        ) from None
    values = values.reshape(-1, len(BOX_FIELDS))
    df = _make_table(images, img_index, values)
    df.attrs = {"images": images, "placeholders": placeholders, "path": str(path)}
    log.debug("%s: %d images, %d faces, %d placeholders", path, len(images), len(df), len(placeholders))
    return df


def format_bbx_gt(faces: pd.DataFrame, images: list[str] | None = None, newline: str = "\n") -> str:
    """The text of ``faces`` in the official format (images without faces: count ``0`` and
    the dummy line, as the official train file). ``images`` gives the order and the images
    without faces (default: ``faces.attrs["images"]`` or the order of first appearance)."""
    if images is None:
        images = list(faces.attrs.get("images") or pd.unique(faces["image"]))
    groups = faces.groupby("image", sort=False).indices
    values = faces[list(BOX_FIELDS)].to_numpy(np.int64)
    out: list[str] = []
    for im in images:
        rows = groups.get(im, ())
        out.append(im)
        out.append(str(len(rows)))
        if len(rows) == 0:
            out.append("0 0 0 0 0 0 0 0 0 0 ")
        out.extend(" ".join(map(str, values[r])) + " " for r in rows)
    return newline.join(out) + newline


def write_bbx_gt(path: str | os.PathLike, faces: pd.DataFrame, images: list[str] | None = None) -> Path:
    """Write :func:`format_bbx_gt` atomically (temporary name + ``os.replace``)."""
    return atomic_write_bytes(path, format_bbx_gt(faces, images).encode("utf-8"))


# --------------------------------------------------------------------------- MAT format
def _mat_var(mat: dict, name: str, path) -> np.ndarray:
    if name not in mat:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise AnnotationError(path, None, f"variables {present}", f"a variable {name!r}")
    return mat[name]


def _mat_events(mat: dict, path):
    events = [mat_string(e) for e in mat_cells(_mat_var(mat, "event_list", path))]
    files = mat_cells(_mat_var(mat, "file_list", path))
    if len(files) != len(events):
        raise AnnotationError(
            path, None, f"{len(files)} file lists", f"one file list per event ({len(events)} events)"
        )
    return events, [[mat_string(f) for f in mat_cells(fl)] for fl in files]


def read_split_mat(path: str | os.PathLike, empty_as_placeholder: bool = True) -> pd.DataFrame:
    """Parse a split MAT file (``wider_face_{train,val}.mat``, or the eval ``wider_face_val.mat``)
    into the same table as :func:`read_bbx_gt`.

    ``empty_as_placeholder``: an image whose only box is all zeros (box and labels) is an
    image without faces; the official train text writes it as count 0 + dummy line (a
    placeholder, left out), the official val text as count 1 (a real, degenerate row).
    ``load_faces`` picks the right value per split."""
    path = Path(path)
    mat = load_mat(path)
    events, files = _mat_events(mat, path)
    bbx = mat_cells(_mat_var(mat, "face_bbx_list", path))
    labels = {a: mat_cells(_mat_var(mat, v, path)) for a, v in _MAT_LABEL_VARS.items()}
    images: list[str] = []
    placeholders: list[str] = []
    blocks: list[np.ndarray] = []
    counts: list[int] = []
    for e, event in enumerate(events):
        boxes_e = mat_cells(bbx[e])
        labels_e = {a: mat_cells(labels[a][e]) for a in ATTRIBUTES}
        if len(boxes_e) != len(files[e]) or any(len(v) != len(files[e]) for v in labels_e.values()):
            raise AnnotationError(
                path, None, f"event {event!r}",
                f"as many box and label arrays as files ({len(files[e])})",
            )
        for j, stem in enumerate(files[e]):
            name = f"{event}/{stem}.jpg"
            b = mat_array(boxes_e[j], np.int64).reshape(-1, 4)
            cols = [b]
            for a in ATTRIBUTES:
                v = mat_array(labels_e[a][j], np.int64).reshape(-1)
                if len(v) != len(b):
                    raise AnnotationError(
                        path, None, f"{name}: {len(v)} {a} labels for {len(b)} boxes",
                        "one label per box",
                    )
                cols.append(v[:, None])
            block = np.hstack(cols)
            images.append(name)
            if empty_as_placeholder and (len(block) == 0 or (len(block) == 1 and not block.any())):
                placeholders.append(name)
                block = block[:0]
            blocks.append(block)
            counts.append(len(block))
    values = np.vstack(blocks) if blocks else np.zeros((0, len(BOX_FIELDS)), dtype=np.int64)
    img_index = np.repeat(np.arange(len(images)), np.asarray(counts, dtype=np.int64))
    df = _make_table(images, img_index, values)
    df.attrs = {"images": images, "placeholders": placeholders, "path": str(path)}
    return df


# --------------------------------------------------------------------------- public loaders
def _gt_txt(split: str, root) -> Path:
    return dataset_dir("widerface", root) / f"wider_face_{split}_bbx_gt.txt"


def _split_mat(split: str, root) -> Path:
    base = dataset_dir("widerface", root)
    candidates = [base / "split_mat" / f"wider_face_{split}.mat", base / "eval_gt" / f"wider_face_{split}.mat"]
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(
        f"WIDER FACE {split} MAT file not found; looked at " + ", ".join(str(c) for c in candidates)
    )


def load_faces(split: str, root=None, source: str = "txt") -> pd.DataFrame:
    """One row per face of a WIDER FACE split (columns :data:`COLUMNS`).

    ``root`` is the data root (default ``TINYLIB_DATA``). ``source="txt"`` reads
    ``widerface/wider_face_{split}_bbx_gt.txt``; ``source="mat"`` the split MAT file
    (``split_mat/`` or ``eval_gt/``); both give identical tables."""
    _check_split(split)
    if source == "txt":
        path = _gt_txt(split, root)
        if not path.exists():
            raise FileNotFoundError(
                f"WIDER FACE {split} ground truth not found: {path} (set TINYLIB_DATA to the data root)"
            )
        return read_bbx_gt(path)
    if source == "mat":
        return read_split_mat(_split_mat(split, root), _EMPTY_AS_PLACEHOLDER[split])
    raise ValueError(f"source must be 'txt' or 'mat', got {source!r}")


def load_images(split: str, root=None) -> list[str]:
    """All images of a split in file order (``"event/name.jpg"``), faces or not.

    ``test`` reads ``wider_face_test_filelist.txt``."""
    _check_split(split, SPLITS)
    if split == "test":
        path = dataset_dir("widerface", root) / "wider_face_test_filelist.txt"
        return [s.strip() for s in read_text_lines(path) if s.strip()]
    return list(load_faces(split, root).attrs["images"])


# --------------------------------------------------------------------------- eval ground truth
@dataclass
class WiderEvalGT:
    """The WIDER FACE val evaluation ground truth (the official ``eval_tools`` files).

    ``images``: keys ``"event/stem"`` in file order; ``boxes[key]``: ``(N, 4)`` float
    ``x, y, w, h``; ``keep[setting][key]``: 0-based indices of the boxes that count for the
    setting (``gt_list`` of the MAT files is 1-based); the other boxes are ignored (matching
    them is neither a true nor a false positive). ``events``: event names in order;
    ``event_images[event]``: that event's keys; ``invalid[key]``: the invalid flags."""

    images: list[str]
    boxes: dict[str, np.ndarray]
    keep: dict[str, dict[str, np.ndarray]]
    events: list[str]
    event_images: dict[str, list[str]] = field(default_factory=dict)
    invalid: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = ""

    @property
    def settings(self) -> tuple[str, ...]:
        return tuple(self.keep)

    def num_boxes(self) -> int:
        return int(sum(len(b) for b in self.boxes.values()))

    def num_kept(self, setting: str) -> int:
        return int(sum(len(k) for k in self.keep[setting].values()))

    def ignore_mask(self, key: str, setting: str) -> np.ndarray:
        """Bool ``(N,)``: True for the boxes of ``key`` that the setting does not count."""
        mask = np.ones(len(self.boxes[key]), dtype=bool)
        mask[self.keep[setting][key]] = False
        return mask

    def __repr__(self) -> str:
        kept = ", ".join(f"{s} {self.num_kept(s)}" for s in self.keep)
        return (
            f"WiderEvalGT({len(self.images)} images, {len(self.events)} events, "
            f"{self.num_boxes()} boxes; kept: {kept})"
        )


def _mat_keys(mat: dict, path) -> list[str]:
    events, files = _mat_events(mat, path)
    return [f"{ev}/{stem}" for ev, fl in zip(events, files) for stem in fl]


def read_eval_gt(directory: str | os.PathLike, settings=SETTINGS) -> WiderEvalGT:
    """Read ``wider_face_val.mat`` and ``wider_{setting}_val.mat`` from ``directory``.

    Works for the official files and for files written by ``scipy.io.savemat`` with object
    (cell) arrays of any orientation."""
    directory = Path(directory)
    face_path = directory / "wider_face_val.mat"
    mat = load_mat(face_path)
    events, files = _mat_events(mat, face_path)
    bbx = mat_cells(_mat_var(mat, "face_bbx_list", face_path))
    inv = mat_cells(mat["invalid_label_list"]) if "invalid_label_list" in mat else None
    images: list[str] = []
    boxes: dict[str, np.ndarray] = {}
    invalid: dict[str, np.ndarray] = {}
    event_images: dict[str, list[str]] = {}
    for e, event in enumerate(events):
        cells = mat_cells(bbx[e])
        inv_e = mat_cells(inv[e]) if inv is not None else None
        if len(cells) != len(files[e]):
            raise AnnotationError(
                face_path, None, f"event {event!r}: {len(cells)} box arrays",
                f"one box array per file ({len(files[e])})",
            )
        keys = []
        for j, stem in enumerate(files[e]):
            key = f"{event}/{stem}"
            b = mat_array(cells[j], np.float64).reshape(-1, 4)
            boxes[key] = b
            if inv_e is not None:
                invalid[key] = mat_array(inv_e[j], np.int64).reshape(-1).astype(bool)
            keys.append(key)
        images.extend(keys)
        event_images[event] = keys
    keep: dict[str, dict[str, np.ndarray]] = {}
    for setting in settings:
        spath = directory / f"wider_{setting}_val.mat"
        smat = load_mat(spath)
        skeys = _mat_keys(smat, spath)
        gl = mat_cells(_mat_var(smat, "gt_list", spath))
        # gt_list is a cell per event of cells per image
        lists = [x for cell in gl for x in mat_cells(cell)]
        if len(lists) != len(skeys):
            raise AnnotationError(
                spath, None, f"{len(lists)} gt_list entries", f"one per image ({len(skeys)})"
            )
        per: dict[str, np.ndarray] = {}
        for key, g in zip(skeys, lists):
            if key not in boxes:
                raise AnnotationError(spath, None, key, "an image listed in wider_face_val.mat")
            idx = mat_array(g, np.int64).reshape(-1) - 1
            n = len(boxes[key])
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise AnnotationError(
                    spath, None, f"{key}: gt_list {(idx + 1).tolist()}",
                    f"1-based indices into its {n} boxes",
                )
            per[key] = idx
        missing = [k for k in images if k not in per]
        if missing:
            raise AnnotationError(spath, None, missing[0], "every image of wider_face_val.mat")
        keep[setting] = {k: per[k] for k in images}
    return WiderEvalGT(
        images=images, boxes=boxes, keep=keep, events=events, event_images=event_images,
        invalid=invalid, path=str(directory),
    )


def load_eval_gt(root=None, settings=SETTINGS) -> WiderEvalGT:
    """The val evaluation ground truth from ``<root>/widerface/eval_gt/`` (default data root)."""
    return read_eval_gt(dataset_dir("widerface", root) / "eval_gt", settings=settings)


# --------------------------------------------------------------------------- Dataset
def image_path(image: str, split: str, root=None) -> Path | None:
    """Where the image ``"event/name.jpg"`` of ``split`` is on disk, or None.

    Looks at ``widerface/WIDER_{split}/images/<event>/<file>`` then
    ``widerface/sample_images/<file>``."""
    base = dataset_dir("widerface", root)
    fname = image.rsplit("/", 1)[-1]
    for c in (base / f"WIDER_{split}" / "images" / image, base / "sample_images" / fname):
        if c.is_file():
            return c
    return None


def val_image_paths(root, keys: Iterable[str] | None = None, gt: WiderEvalGT | None = None) -> dict[str, Path]:
    """Paths ``<root>/widerface/WIDER_val/images/<key>.jpg`` (e.g. of a synthetic world)."""
    base = Path(root) / "widerface" / "WIDER_val" / "images"
    keys = list(keys) if keys is not None else list(gt.images if gt is not None else [])
    out = {}
    for k in keys:
        p = base / f"{k}.jpg"
        if not p.is_file():
            raise FileNotFoundError(f"val image not found: {p}")
        out[k] = p
    return out


def sample_images(root=None, gt: WiderEvalGT | None = None) -> dict[str, Path]:
    """The real WIDER val images shipped in the data root (``widerface/sample_images``),
    keyed ``"event/stem"`` as in the val ground truth (looked up in ``gt`` when given, else
    the event is read off the file name, right for the shipped ``0--Parade`` images)."""
    d = dataset_dir("widerface", root) / "sample_images"
    if not d.is_dir():
        raise DataRootError(f"widerface/sample_images not found under {d.parent.parent}. See "
                            "`tinylib-data status` for where to obtain it and where to put it.")
    by_stem = {k.rsplit("/", 1)[-1]: k for k in gt.images} if gt is not None else {}
    out = {}
    for p in sorted(Path(d).glob("*.jpg")):
        num, word = (p.stem.split("_") + [""])[:2]
        out[by_stem.get(p.stem, f"{num}--{word}/{p.stem}")] = p
    return out


class WiderFaceDataset(torch.utils.data.Dataset):
    """WIDER FACE images with their boxes, as detection samples ``(image, target)``.
    (``split="test"``: the images of the test list with empty targets.)

    ``image`` is ``uint8 H x W x 3`` RGB; ``target`` has ``boxes`` (``float32 (N, 4)`` xyxy),
    ``ignore`` (``bool (N,)`` = invalid | degenerate), ``image_id`` (``"event/stem"``) and
    ``attributes`` (dict of ``(N,)`` int arrays: blur ... pose, degenerate).

    By default only the images of the split present on disk are used (the count of missing
    ones is logged); ``images=`` restricts to a subset (``"event/name.jpg"`` or
    ``"event/name"``) and then a missing image raises ``FileNotFoundError`` naming it. An
    unreadable image is skipped with a warning (counted in ``.skipped``) and the next
    readable sample is returned. ``transform(image, target, rng)`` gets a NumPy Generator
    seeded from ``(seed, epoch, index)`` when ``seed`` is given (see :meth:`set_epoch`),
    else from ``torch.initial_seed()`` (different per DataLoader worker and epoch)."""

    def __init__(self, root=None, split: str = "val", transform=None, images=None,
                 seed: int | None = None, faces: pd.DataFrame | None = None):
        _check_split(split, SPLITS)
        self.root = dataset_dir(root=root)
        self.split = split
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.skipped = 0
        if faces is not None:
            table = faces
        elif split == "test":  # no boxes: images of the test list, empty targets
            table = _empty_table()
            table.attrs = {"images": load_images("test", self.root), "placeholders": []}
        else:
            table = load_faces(split, self.root)
        all_images = list(table.attrs.get("images") or pd.unique(table["image"]))
        if images is None:
            chosen = []
            paths = []
            for im in all_images:
                p = image_path(im, split, self.root)
                if p is not None:
                    chosen.append(im)
                    paths.append(p)
            missing = len(all_images) - len(chosen)
            if missing:
                log.info(
                    "WIDER FACE %s: %d of %d images present on disk (%d missing under %s)",
                    split, len(chosen), len(all_images), missing, self.root / "widerface",
                )
        else:
            by_key = {image_key(im): im for im in all_images}
            chosen, paths = [], []
            for req in images:
                im = by_key.get(image_key(str(req)))
                if im is None:
                    raise KeyError(f"image {req!r} is not in the WIDER FACE {split} ground truth")
                p = image_path(im, split, self.root)
                if p is None:
                    raise FileNotFoundError(
                        f"WIDER FACE image {im} not found: looked at "
                        f"{self.root / 'widerface' / f'WIDER_{split}' / 'images' / im} and "
                        f"{self.root / 'widerface' / 'sample_images' / im.rsplit('/', 1)[-1]}"
                    )
                chosen.append(im)
                paths.append(p)
        self.images = chosen
        self.paths = paths
        groups = table.groupby("image", sort=False).indices
        self._rows = {im: np.asarray(groups.get(im, []), dtype=np.int64) for im in chosen}
        self.faces = table

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def target(self, index: int) -> dict:
        """The target of sample ``index`` without reading the image."""
        im = self.images[index]
        cols = self._columns()
        rows = self._rows[im]
        xywh = cols["_xywh"][rows].reshape(-1, 4)
        degenerate = cols["_degenerate"][rows]
        invalid = cols["_invalid"][rows]
        attributes = {a: cols[a][rows] for a in ATTRIBUTES}
        attributes["degenerate"] = degenerate
        return {
            "boxes": box_convert(np.asarray(xywh, np.float64).reshape(-1, 4), "xywh", "xyxy").astype(np.float32).reshape(-1, 4),
            "ignore": invalid | degenerate,
            "image_id": image_key(im),
            "attributes": attributes,
        }

    def _columns(self) -> dict[str, np.ndarray]:
        """The face table's columns as arrays, built once (a pandas row lookup per target is
        ~100x slower, and size statistics read every target)."""
        if getattr(self, "_cols", None) is None:
            f = self.faces
            self._cols = {a: f[a].to_numpy(dtype=np.int64) for a in ATTRIBUTES}
            # the derived columns, under keys no attribute has ("invalid" is one)
            self._cols.update({"_xywh": f[["x", "y", "w", "h"]].to_numpy(dtype=np.float64).reshape(-1, 4),
                               "_degenerate": f["degenerate"].to_numpy(dtype=bool),
                               "_invalid": f["invalid"].to_numpy() != 0})
        return self._cols

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng([int(self.seed), self.epoch, index])
        return np.random.default_rng([torch.initial_seed() % (2**63), index])

    def __getitem__(self, index: int):
        if len(self.images) == 0:
            raise IndexError("empty WiderFaceDataset")
        i, image = read_first_readable(self.paths, index, on_skip=self._count_skip)
        target = self.target(i)
        if self.transform is not None:
            image, target = self.transform(image, target, self._rng(i))
        return image, target

    def _count_skip(self) -> None:
        self.skipped += 1
