"""Per-split counts of every dataset tinylib can read (``tinylib-data stats NAME``).

``collect(name, root=None)`` returns one dict per split it can read::

    {"dataset": "widerface-train", "images": 12880, "objects": 159420, "degenerate": 27,
     "ignored": 2399, "source": ".../wider_face_train_bbx_gt.txt"}

``objects`` counts annotated boxes/faces (for classification sets: labelled images),
``degenerate`` boxes of zero or negative width or height, ``ignored`` boxes that are
neither positives nor negatives (WIDER ``invalid``, TinyPerson ignore/uncertain/logo...).

``name`` is a dataset of the registry (``widerface_annotations``, ``fddb``,
``imagenet_val_boxes``, ``tinyperson``, ``cifar100``, ``imagenet32`` ...), a short name
(``widerface``, ``imagenet``), ``synthetic`` (the quick synthetic world of
``tinylib.data.synthetic.quick_world()``, read with these same loaders; ``root`` is not used
for it) or ``all``.
For an explicit name whose files are absent a ``FileNotFoundError`` says what is missing;
``all`` skips absent datasets (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .. import papers
from ..config import dataset_dir
from . import cifar, fddb, imagenet, imagenet32, synthetic, tinyperson, widerface

log = logging.getLogger(__name__)

__all__ = ["collect", "OFFICIAL", "NAMES", "compare_official"]

# Official counts to compare against (the datasets' papers / READMEs). Those the scorecard
# also compares (WIDER FACE, FDDB) come from the one table of paper numbers, tinylib.papers.
_paper = papers.value


OFFICIAL = {
    "widerface-train": {"images": _paper("data.widerface.train.images"),
                        "objects": _paper("data.widerface.train.boxes"),
                        "note": "159,420 faces + 4 placeholders"},
    "widerface-val": {"images": _paper("data.widerface.val.images"), "objects": _paper("data.widerface.val.faces")},
    "widerface-test": {"images": _paper("data.widerface.test.images"), "objects": None},
    "widerface-val-eval": {"images": _paper("data.widerface.val.images"),
                           "objects": _paper("data.widerface.val.faces")},
    "fddb": {"images": _paper("data.fddb.images"), "objects": _paper("data.fddb.faces")},
    "imagenet-val": {"images": 50000, "objects": None},
    "tinyperson-train": {"images": 794, "objects": 42197, "note": "incl. dense images (tiny_set_train_with_dense)"},
    "tinyperson-test": {"images": 816, "objects": 30454},
    "cifar100-train": {"images": 50000, "objects": 50000},
    "cifar100-test": {"images": 10000, "objects": 10000},
    "imagenet32-train": {"images": 1281167, "objects": 1281167},
    "imagenet32-val": {"images": 50000, "objects": 50000},
}


def _row(dataset, images, objects, degenerate=0, ignored=0, source="", **extra) -> dict:
    row = {
        "dataset": dataset,
        "images": int(images),
        "objects": None if objects is None else int(objects),
        "degenerate": int(degenerate),
        "ignored": int(ignored),
    }
    row.update(extra)
    row["source"] = str(source)
    return row


def _widerface(root: Path, prefix: str = "widerface") -> list[dict]:
    rows = []
    for split in ("train", "val"):
        df = widerface.load_faces(split, root)
        rows.append(
            _row(f"{prefix}-{split}", len(df.attrs["images"]), len(df), df["degenerate"].sum(),
                 (df["invalid"] != 0).sum(), df.attrs["path"], placeholders=len(df.attrs["placeholders"]))
        )
    test_list = root / "widerface" / "wider_face_test_filelist.txt"
    if prefix == "widerface" and test_list.is_file():
        rows.append(_row(f"{prefix}-test", len(widerface.load_images("test", root)), None, source=test_list))
    return rows


def _widerface_eval(root: Path, prefix: str = "widerface") -> list[dict]:
    gt = widerface.load_eval_gt(root)
    boxes = np.concatenate([b for b in gt.boxes.values() if len(b)] or [np.zeros((0, 4))])
    degenerate = int(((boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)).sum())
    kept = {f"kept_{s}": gt.num_kept(s) for s in gt.keep}
    return [_row(f"{prefix}-val-eval", len(gt.images), gt.num_boxes(), degenerate, 0, gt.path,
                 events=len(gt.events), **kept)]


def _fddb(root: Path) -> list[dict]:
    df = fddb.load_faces(root)
    deg = ((df["x2"] - df["x1"]) <= 0) | ((df["y2"] - df["y1"]) <= 0)
    return [_row("fddb", len(df.attrs["images"]), len(df), deg.sum(), 0, df.attrs["path"], folds=df["fold"].nunique())]


def _imagenet(root: Path) -> list[dict]:
    df = imagenet.load_val_boxes(root)
    deg = ((df["x2"] - df["x1"]) <= 0) | ((df["y2"] - df["y1"]) <= 0)
    return [_row("imagenet-val", len(df.attrs["images"]), len(df), deg.sum(), 0, df.attrs["path"],
                 classes=df["class_index"].nunique())]


def _tinyperson(root: Path, prefix: str = "tinyperson", required: bool = True) -> list[dict]:
    rows = []
    for split in ("train", "test"):
        try:
            path = tinyperson.annotation_path(split, root)
        except FileNotFoundError:
            if required and split == "train":
                raise
            log.info("%s-%s: annotations absent", prefix, split)
            continue
        s = tinyperson.read_annotations(path)
        c = s.counts()
        rows.append(_row(f"{prefix}-{split}", c["images"], c["boxes"], c["degenerate"],
                         int(s.boxes["ignored"].sum()), path, positive=c["positive"],
                         dense_images=c["dense_images"]))
    return rows


def _cifar(root: Path) -> list[dict]:
    d = cifar.cifar_dir(root)
    rows = []
    for split in ("train", "test"):
        p = d / f"{split}.bin"
        if not p.is_file():
            continue
        _, labels = cifar.read_cifar_bin(p)
        rows.append(_row(f"cifar100-{split}", len(labels), len(labels), source=p,
                         classes=len(np.unique(labels[:, 1]))))
    if not rows:
        raise FileNotFoundError(f"CIFAR-100 binary files not found under {d} (tinylib-data fetch cifar100)")
    return rows


def _imagenet32(root: Path) -> list[dict]:
    rows = []
    for split in ("train", "val"):
        try:
            files = imagenet32.split_files(split, root)
        except FileNotFoundError:
            continue
        n = sum(len(imagenet32.read_labels(f)) for f in files)
        rows.append(_row(f"imagenet32-{split}", n, n, source=files[0].parent, files=len(files)))
    if not rows:
        raise FileNotFoundError(f"no ImageNet32 files under {root / 'imagenet32'} (see tinylib-data status)")
    return rows


def _synthetic(root: Path | None = None) -> list[dict]:
    """The synthetic world's statistics; it lives in the cache (``synthetic.quick_world``), so
    the data root plays no part."""
    world = Path(synthetic.quick_world())
    rows = _widerface(world, prefix="synthetic-widerface")
    if (world / "widerface" / "eval_gt" / "wider_face_val.mat").is_file():
        rows += _widerface_eval(world, prefix="synthetic-widerface")
    rows += _tinyperson(world, prefix="synthetic-tinyperson", required=False)
    return rows


_COLLECTORS: dict[str, Callable[[Path], list[dict]]] = {
    "widerface": _widerface,
    "widerface_eval": _widerface_eval,
    "fddb": _fddb,
    "imagenet": _imagenet,
    "tinyperson": _tinyperson,
    "cifar100": _cifar,
    "imagenet32": _imagenet32,
    "synthetic": _synthetic,
}
_ALIASES = {
    "widerface_annotations": "widerface",
    "widerface_train_images": "widerface",
    "widerface_val_images": "widerface",
    "widerface_samples": "widerface",
    "widerface_test_images": "widerface",
    "fddb_images": "fddb",
    "imagenet_val_boxes": "imagenet",
    "cifar": "cifar100",
}
NAMES = tuple(sorted(set(_COLLECTORS) | set(_ALIASES) | {"all"}))
_ALL = ("widerface", "widerface_eval", "fddb", "imagenet", "tinyperson", "cifar100", "imagenet32")


def collect(name: str, root=None) -> list[dict]:
    """One dict per readable split of dataset ``name`` (see the module docstring)."""
    key = _ALIASES.get(name, name)
    if key == "all":
        base = dataset_dir(root=root)
        rows = []
        for k in _ALL:
            try:
                rows += _COLLECTORS[k](base)
            except FileNotFoundError as exc:
                log.info("stats: %s skipped: %s", k, exc)
        return rows
    if key not in _COLLECTORS:
        log.info("stats: no statistics for %r (not an annotated dataset)", name)
        if name in ("demo", "tinyfaces_hr", "widerface_pr_curves"):
            return []
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(NAMES)}")
    if key == "synthetic":
        return _synthetic()
    return _COLLECTORS[key](dataset_dir(root=root))


def compare_official(rows: list[dict]):
    """A DataFrame of ``rows`` beside the official counts (:data:`OFFICIAL`)."""
    out = []
    for r in rows:
        off = OFFICIAL.get(r["dataset"], {})
        out.append({
            "dataset": r["dataset"], "images": r["images"], "official images": off.get("images"),
            "objects": r["objects"], "official objects": off.get("objects"),
            "degenerate": r["degenerate"], "ignored": r["ignored"], "note": off.get("note", ""),
        })
    return pd.DataFrame(out)
