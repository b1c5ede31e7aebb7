"""TinyPerson (Yu et al., WACV 2020): the COCO-style json of the TinyBenchmark release.

Layout under the data root (see ``tinylib-data status tinyperson`` for how to obtain it)::

    tinyperson/annotations/tiny_set_{train,test}.json
    tinyperson/{train,test}/<file_name>          e.g. labeled_images/bb_V0032_I0001640.jpg

The json follows COCO with extra per-annotation flags (TinyBenchmark ``dataset/README``):
``images``: ``file_name, height, width, id`` (+ ``corner`` ``[x1, y1, x2, y2]`` in the cut
"corner" files); ``annotations``: ``bbox`` (``x, y, w, h``, float), ``category_id``
(1 ``sea_person``, 2 ``earth_person``; 1 ``person`` in the task files), ``area``,
``iscrowd``, ``segmentation``, ``image_id``, ``id`` and the booleans ``ignore`` (crowds,
ambiguous regions, reflections: the *ignore regions*), ``uncertain`` (cannot tell if it is
a person), ``logo`` and ``in_dense_image`` (box of an image with > 200 boxes).

The evaluation rules of the benchmark, applied in :func:`read_annotations`:
* ``ignored`` = ``ignore | uncertain | logo | iscrowd`` (and degenerate boxes): neither
  positive nor negative; an annotation of a category named ``"ignore"`` counts as ignore;
* images with ``in_dense_image`` boxes are *dense images*, left out of training and
  evaluation (``images["dense"]``);
* ``positive`` = not ignored and not in a dense image ("normal" boxes).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch.utils.data

from ..boxes import box_convert
from ..config import dataset_dir
from ._parse import AnnotationError
from .images import read_first_readable

log = logging.getLogger(__name__)

__all__ = [
    "TinyPersonSet",
    "TinyPersonDataset",
    "read_annotations",
    "load_annotations",
    "annotation_path",
    "image_path",
    "BOX_COLUMNS",
]

SPLITS = ("train", "test")
FLAGS = ("ignore", "uncertain", "logo", "in_dense_image")
BOX_COLUMNS = (
    "id", "image_id", "file_name", "category_id", "category", "x", "y", "w", "h", "area",
    "iscrowd", *FLAGS, "degenerate", "ignored", "positive",
)
IMAGE_COLUMNS = ("id", "file_name", "width", "height", "corner", "dense", "boxes", "positives")


@dataclass
class TinyPersonSet:
    """One parsed json: ``images`` (one row per image entry), ``boxes`` (one row per
    annotation, columns :data:`BOX_COLUMNS`), ``categories`` ``{id: name}``."""

    images: pd.DataFrame
    boxes: pd.DataFrame
    categories: dict[int, str]
    path: str = ""

    def counts(self) -> dict:
        b = self.boxes
        return {
            "images": len(self.images),
            "dense_images": int(self.images["dense"].sum()),
            "boxes": len(b),
            "positive": int(b["positive"].sum()),
            "ignore": int(b["ignore"].sum()),
            "uncertain": int(b["uncertain"].sum()),
            "dense_boxes": int(b["in_dense_image"].sum()),
            "degenerate": int(b["degenerate"].sum()),
        }


def _json_error(path, exc: json.JSONDecodeError) -> AnnotationError:
    lines = exc.doc.splitlines() if exc.doc else []
    text = lines[exc.lineno - 1][max(0, exc.colno - 40) : exc.colno + 40] if 0 < exc.lineno <= len(lines) else None
    return AnnotationError(path, exc.lineno, text, f"valid JSON ({exc.msg}, column {exc.colno})")


def _flag(value, path, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise AnnotationError(path, None, f"{where}: {key}={value!r}", f"a boolean {key!r}")


def read_annotations(path: str | os.PathLike) -> TinyPersonSet:
    """Parse a TinyPerson (or any COCO) json; missing TinyPerson flags default to False.

    Errors name the file, the line (for JSON syntax errors) or the annotation index/id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"TinyPerson annotation file not found: {path}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(path, exc) from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise AnnotationError(path, None, f"top-level keys {sorted(data) if isinstance(data, dict) else type(data).__name__}",
                              "a COCO object with 'images' and 'annotations'")
    categories = {}
    for c in data.get("categories", []):
        try:
            categories[int(c["id"])] = str(c.get("name", c["id"]))
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(path, None, repr(c), "categories with an integer 'id'") from None
    ignore_cats = {cid for cid, name in categories.items() if name.lower() == "ignore"}

    img_rows = []
    for k, im in enumerate(data["images"]):
        try:
            corner = im.get("corner")
            img_rows.append((int(im["id"]), str(im["file_name"]), int(im["width"]), int(im["height"]),
                             None if corner is None else tuple(float(v) for v in corner)))
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(path, None, f"images[{k}] = {str(im)[:200]}",
                                  f"'id', 'file_name', 'width', 'height' ({type(exc).__name__}: {exc})") from None
    images = pd.DataFrame(img_rows, columns=["id", "file_name", "width", "height", "corner"])
    if images["id"].duplicated().any():
        dup = int(images.loc[images["id"].duplicated(), "id"].iloc[0])
        raise AnnotationError(path, None, f"image id {dup}", "unique image ids")
    names = dict(zip(images["id"], images["file_name"]))

    rows = []
    for k, a in enumerate(data["annotations"]):
        where = f"annotations[{k}] (id {a.get('id') if isinstance(a, dict) else '?'})"
        try:
            bbox = [float(v) for v in a["bbox"]]
            image_id = int(a["image_id"])
            cat = int(a.get("category_id", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(path, None, f"{where} = {str(a)[:200]}",
                                  f"'bbox' [x, y, w, h], 'image_id' ({type(exc).__name__}: {exc})") from None
        if len(bbox) != 4 or not np.all(np.isfinite(bbox)):
            raise AnnotationError(path, None, f"{where}: bbox={a['bbox']!r}", "bbox of 4 finite numbers [x, y, w, h]")
        if image_id not in names:
            raise AnnotationError(path, None, f"{where}: image_id={image_id}", "the id of an entry of 'images'")
        flags = [_flag(a.get(f, False), path, where, f) for f in FLAGS]
        rows.append((int(a.get("id", k)), image_id, names[image_id], cat, categories.get(cat, str(cat)),
                     *bbox, float(a.get("area", bbox[2] * bbox[3])), int(a.get("iscrowd", 0)), *flags))
    cols = ["id", "image_id", "file_name", "category_id", "category", "x", "y", "w", "h", "area",
            "iscrowd", *FLAGS]
    boxes = pd.DataFrame(rows, columns=cols)
    if boxes.empty:
        boxes = boxes.astype({c: (bool if c in FLAGS else float if c in "xywh" or c == "area" else object)
                              for c in cols})
    if ignore_cats:
        boxes["ignore"] = boxes["ignore"] | boxes["category_id"].isin(ignore_cats)
    boxes["degenerate"] = (boxes["w"] <= 0) | (boxes["h"] <= 0)
    boxes["ignored"] = (boxes["ignore"] | boxes["uncertain"] | boxes["logo"]
                        | (boxes["iscrowd"] != 0) | boxes["degenerate"])
    dense_ids = set(boxes.loc[boxes["in_dense_image"], "image_id"])
    boxes["positive"] = ~boxes["ignored"] & ~boxes["in_dense_image"]
    images["dense"] = images["id"].isin(dense_ids)
    per = boxes.groupby("image_id").agg(boxes=("id", "size"), positives=("positive", "sum"))
    images["boxes"] = images["id"].map(per["boxes"]).fillna(0).astype(np.int64)
    images["positives"] = images["id"].map(per["positives"]).fillna(0).astype(np.int64)
    return TinyPersonSet(images=images, boxes=boxes[list(BOX_COLUMNS)], categories=categories, path=str(path))


def annotation_path(split: str, root=None) -> Path:
    """The json of ``split`` (``train`` / ``test``); looks in ``tinyperson/annotations/``
    then ``tinyperson/tiny_set/annotations/``; raises ``FileNotFoundError`` naming both."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    base = dataset_dir("tinyperson", root)
    candidates = [base / "annotations" / f"tiny_set_{split}.json",
                  base / "tiny_set" / "annotations" / f"tiny_set_{split}.json"]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        f"TinyPerson {split} annotations not found (looked at "
        + ", ".join(str(c) for c in candidates)
        + "); TinyPerson is hand-placed: see `tinylib-data status` for how to obtain it"
    )


def load_annotations(split: str, root=None) -> TinyPersonSet:
    return read_annotations(annotation_path(split, root))


def image_path(file_name: str, split: str, root=None) -> Path | None:
    """``tinyperson/<split>/<file_name>`` (official), else ``tinyperson/<file_name>``."""
    base = dataset_dir("tinyperson", root)
    for c in (base / split / file_name, base / file_name, base / "tiny_set" / split / file_name):
        if c.is_file():
            return c
    return None


class TinyPersonDataset(torch.utils.data.Dataset):
    """TinyPerson images as detection samples ``(image uint8 HxWx3, target)``.

    ``target``: ``boxes`` float32 (N, 4) xyxy, ``ignore`` bool (N,) (= ``ignored``: ignore,
    uncertain, logo, crowd, degenerate), ``image_id`` (the file name without extension),
    ``attributes`` (``category_id``, ``uncertain``, ``in_dense_image`` arrays). Dense images
    are left out unless ``include_dense``; images absent on disk are left out (logged).
    A ``corner`` image entry is cropped to its corner and its boxes are used as written
    (they are relative to the corner). Unreadable images are skipped (``.skipped``)."""

    def __init__(self, root=None, split: str = "train", transform=None, include_dense: bool = False,
                 annotations: TinyPersonSet | None = None, seed: int | None = None):
        self.root = root
        self.split = split
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.skipped = 0
        self.set = annotations if annotations is not None else load_annotations(split, root)
        images = self.set.images
        if not include_dense:
            images = images[~images["dense"]]
        paths = [image_path(f, split, root) for f in images["file_name"]]
        present = [p is not None for p in paths]
        if not all(present):
            log.info("TinyPerson %s: %d of %d images present on disk", split, sum(present), len(paths))
        self.images = images[present].reset_index(drop=True)
        self.paths = [p for p in paths if p is not None]
        self._rows = self.set.boxes.groupby("image_id").indices

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def target(self, index: int) -> dict:
        im = self.images.iloc[index]
        rows = self.set.boxes.iloc[self._rows.get(int(im["id"]), np.zeros(0, dtype=np.int64))]
        xywh = rows[["x", "y", "w", "h"]].to_numpy(dtype=np.float64).reshape(-1, 4)
        return {
            "boxes": box_convert(np.asarray(xywh, np.float64).reshape(-1, 4), "xywh", "xyxy").astype(np.float32).reshape(-1, 4),
            "ignore": rows["ignored"].to_numpy(dtype=bool),
            "image_id": os.path.splitext(str(im["file_name"]))[0],
            "attributes": {
                "category_id": rows["category_id"].to_numpy(dtype=np.int64),
                "uncertain": rows["uncertain"].to_numpy(dtype=bool),
                "in_dense_image": rows["in_dense_image"].to_numpy(dtype=bool),
            },
        }

    def __getitem__(self, index: int):
        def count_skip():
            self.skipped += 1

        i, image = read_first_readable(self.paths, index, on_skip=count_skip)
        corner = self.images.iloc[i]["corner"]
        if corner is not None and not (isinstance(corner, float) and np.isnan(corner)):
            x1, y1, x2, y2 = (int(round(v)) for v in corner)
            image = image[y1:y2, x1:x2]
        target = self.target(i)
        if self.transform is not None:
            rng = (np.random.default_rng([int(self.seed), self.epoch, i]) if self.seed is not None
                   else np.random.default_rng([torch.initial_seed() % (2**63), i]))
            image, target = self.transform(image, target, rng)
        return image, target
