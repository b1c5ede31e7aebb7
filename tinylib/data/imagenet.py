"""ImageNet (ILSVRC2012) validation boxes with image sizes and class names.

Files under ``<root>/imagenet/`` (the repackaging of ``clovaai/wsolevaluation``)::

    ilsvrc2012_val_image_ids.txt      val/ILSVRC2012_val_00000001.JPEG
    ilsvrc2012_val_class_labels.txt   val/ILSVRC2012_val_00000001.JPEG,65
    ilsvrc2012_val_image_sizes.txt    val/ILSVRC2012_val_00000001.JPEG,500,375
    ilsvrc2012_val_localization.txt   val/ILSVRC2012_val_00000001.JPEG,111,108,441,193
    LOC_synset_mapping.txt            n01440764 tench, Tinca tinca   (line i <-> class i)

Coordinates are the official XML's pixel values (``xmin ymin xmax ymax``) kept as they
are. Also reads the official per-image PASCAL-VOC XML files (``ILSVRC2012_val_*.xml``).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..config import dataset_dir
from ._parse import AnnotationError, parse_int_rows, read_text_lines

log = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "VOC_COLUMNS",
    "load_synsets",
    "load_val_boxes",
    "read_voc_xml",
    "read_voc_dir",
    "image_stem",
]

COLUMNS = ("image", "class_index", "wnid", "class_name", "width", "height", "x1", "y1", "x2", "y2")
VOC_COLUMNS = ("image", "wnid", "width", "height", "x1", "y1", "x2", "y2", "truncated", "difficult")
FILES = {
    "ids": "ilsvrc2012_val_image_ids.txt",
    "labels": "ilsvrc2012_val_class_labels.txt",
    "sizes": "ilsvrc2012_val_image_sizes.txt",
    "boxes": "ilsvrc2012_val_localization.txt",
    "synsets": "LOC_synset_mapping.txt",
}


def image_stem(name: str) -> str:
    """``"val/ILSVRC2012_val_00000001.JPEG"`` -> ``"ILSVRC2012_val_00000001"``."""
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def load_synsets(root=None, path=None) -> pd.DataFrame:
    """``LOC_synset_mapping.txt`` -> columns ``class_index, wnid, class_name`` (the first
    synonym, e.g. ``tench``) and ``names`` (the full list as written)."""
    path = Path(path) if path is not None else dataset_dir("imagenet", root) / FILES["synsets"]
    rows = []
    for i, line in enumerate(read_text_lines(path), start=1):
        s = line.strip()
        if not s:
            continue
        parts = s.split(None, 1)
        if len(parts) != 2 or not (parts[0].startswith("n") and parts[0][1:].isdigit()):
            raise AnnotationError(path, i, line, "'<wnid> <name>[, <synonym> ...]' e.g. 'n01440764 tench, Tinca tinca'")
        rows.append((len(rows), parts[0], parts[1].split(",")[0].strip(), parts[1]))
    return pd.DataFrame(rows, columns=["class_index", "wnid", "class_name", "names"])


def _csv(path: Path, ncols: int, what: str) -> tuple[list[str], np.ndarray, list[int]]:
    """Lines ``image,int,int...`` -> (image stems, int matrix, line numbers)."""
    names, rows, numbers = [], [], []
    for i, line in enumerate(read_text_lines(path), start=1):
        s = line.strip()
        if not s:
            continue
        parts = [p.strip() for p in s.split(",")]
        names.append(image_stem(parts[0]))
        rows.append(parts[1:])
        numbers.append(i)
    values = parse_int_rows(path, rows, numbers, ncols, what)
    return names, values, numbers


def load_val_boxes(root=None, progress: bool = False) -> pd.DataFrame:
    """One row per ILSVRC2012 val box (columns :data:`COLUMNS`), in localization-file order.

    ``df.attrs["images"]`` lists the 50,000 image stems in id-file order. Every image must
    have a class, a size and at least one box; a box must lie inside its image."""
    d = dataset_dir("imagenet", root)
    ids_path = d / FILES["ids"]
    ids = [image_stem(s.strip()) for s in read_text_lines(ids_path) if s.strip()]
    lab_names, labels, _ = _csv(d / FILES["labels"], 1, "'image,class_index'")
    size_names, sizes, _ = _csv(d / FILES["sizes"], 2, "'image,width,height'")
    box_names, boxes, box_lines = _csv(d / FILES["boxes"], 4, "'image,x_min,y_min,x_max,y_max'")
    synsets = load_synsets(root)
    for path, names in ((d / FILES["labels"], lab_names), (d / FILES["sizes"], size_names)):
        if names != ids:
            k = next((i for i, (a, b) in enumerate(zip(names, ids)) if a != b), min(len(names), len(ids)))
            raise AnnotationError(
                path, None, f"entry #{k + 1} ({len(names)} entries)",
                f"the images of {ids_path.name} in the same order ({len(ids)})",
            )
    index = {name: k for k, name in enumerate(ids)}
    try:
        img = np.fromiter((index[n] for n in box_names), dtype=np.int64, count=len(box_names))
    except KeyError as exc:
        k = box_names.index(exc.args[0])
        raise AnnotationError(d / FILES["boxes"], box_lines[k], exc.args[0], f"an image of {ids_path.name}") from None
    cls = labels[:, 0]
    if cls.size and (cls.min() < 0 or cls.max() >= len(synsets)):
        raise AnnotationError(d / FILES["labels"], None, f"class {cls.max()}", f"classes 0..{len(synsets) - 1}")
    w, h = sizes[img, 0], sizes[img, 1]
    outside = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > w) | (boxes[:, 3] > h)
    if outside.any():
        log.warning("%d ImageNet boxes extend beyond their image", int(outside.sum()))
    c = cls[img]
    df = pd.DataFrame(
        {
            "image": np.array(ids, dtype=object)[img],
            "class_index": c,
            "wnid": synsets["wnid"].to_numpy(dtype=object)[c],
            "class_name": synsets["class_name"].to_numpy(dtype=object)[c],
            "width": w, "height": h,
            "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
        }
    )
    df.attrs = {"images": ids, "path": str(d)}
    return df


# --------------------------------------------------------------------------- VOC XML
def _xml_int(path, el, tag: str, context: str) -> int:
    node = el.find(tag)
    if node is None or node.text is None:
        raise AnnotationError(path, None, context, f"an element <{tag}>")
    text = node.text.strip()
    try:
        return int(round(float(text)))
    except ValueError:
        raise AnnotationError(path, None, f"<{tag}>{text}</{tag}> in {context}", f"a number in <{tag}>") from None


def read_voc_xml(path: str | os.PathLike) -> pd.DataFrame:
    """One official ILSVRC PASCAL-VOC XML file -> one row per ``<object>`` (columns
    :data:`VOC_COLUMNS`; ``image`` is ``<filename>`` without extension)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"XML annotation not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        text = None
        if line is not None:
            lines = read_text_lines(path)
            text = lines[line - 1] if 0 < line <= len(lines) else None
        raise AnnotationError(path, line, text, f"well-formed XML ({exc})") from None
    fn = root.findtext("filename")
    image = image_stem(fn.strip()) if fn and fn.strip() else path.stem
    size = root.find("size")
    if size is None:
        raise AnnotationError(path, None, None, "a <size> element with <width> and <height>")
    width = _xml_int(path, size, "width", "<size>")
    height = _xml_int(path, size, "height", "<size>")
    rows = []
    for k, obj in enumerate(root.findall("object"), start=1):
        ctx = f"<object> #{k}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise AnnotationError(path, None, ctx, "a <name> (WNID) in every <object>")
        bb = obj.find("bndbox")
        if bb is None:
            raise AnnotationError(path, None, ctx, "a <bndbox> in every <object>")
        coords = [_xml_int(path, bb, t, ctx) for t in ("xmin", "ymin", "xmax", "ymax")]
        truncated = int(obj.findtext("truncated") or 0)
        difficult = int(obj.findtext("difficult") or 0)
        rows.append((image, name, width, height, *coords, truncated, difficult))
    return pd.DataFrame(rows, columns=list(VOC_COLUMNS))


def read_voc_dir(directory: str | os.PathLike, progress: bool = False) -> pd.DataFrame:
    """All ``*.xml`` files of a directory (sorted), concatenated."""
    files = sorted(Path(directory).glob("*.xml"))
    parts = [read_voc_xml(f) for f in tqdm(files, disable=not progress, desc="VOC XML")]
    if not parts:
        return pd.DataFrame(columns=list(VOC_COLUMNS))
    return pd.concat(parts, ignore_index=True)


def relative_size(df: pd.DataFrame) -> np.ndarray:
    """``sqrt(box area / image area)`` of each row (the object-scale measure of the tiny-object
    papers: median 0.455 over the 80,477 ILSVRC2012 val boxes)."""
    area = (df["x2"] - df["x1"]).clip(lower=0) * (df["y2"] - df["y1"]).clip(lower=0)
    return np.sqrt(area.to_numpy(float) / (df["width"] * df["height"]).to_numpy(float))


def size_table(df: pd.DataFrame, side: int = 224,
               edges=(0, 8, 16, 32, 64, 96, 128, 160, 192, 224)) -> pd.DataFrame:
    """How many boxes fall in each bin of ``sqrt(area)`` once the image is resized to
    ``side x side`` (as networks see ImageNet): columns ``boxes``, ``share``."""
    px = np.minimum(relative_size(df) * side, edges[-1] - 1e-9)  # a whole-image box -> last bin
    bins = pd.cut(px, bins=list(edges), right=False, include_lowest=True)
    counts = pd.Series(bins).value_counts(sort=False)
    counts.index = [f"{int(i.left)}-{int(i.right)} px" for i in counts.index]
    out = counts.to_frame("boxes")
    out["share"] = (out["boxes"] / len(df)).round(3)
    return out
