"""FDDB (Face Detection Data Set and Benchmark): fold lists and ellipse annotations.

Files under ``<root>/fddb/``: ``FDDB-fold-NN.txt`` (one image per line, e.g.
``2002/08/11/big/img_591``) and ``FDDB-fold-NN-ellipseList.txt``: per image its name, the
number of faces, then one line per face
``major_axis_radius minor_axis_radius angle center_x center_y 1`` (angle in radians; the
trailing ``1`` is the detection-score column of the format, always 1 for ground truth).
Images (optional) live at ``<root>/fddb/originalPics/<name>.jpg``.

Each face is given both as its ellipse and as the tight axis-aligned box of that ellipse
(:func:`tinylib.boxes.ellipse_to_box`, xyxy).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..boxes import ellipse_to_box
from ..config import dataset_dir
from ._parse import AnnotationError, parse_float_rows, read_text_lines

log = logging.getLogger(__name__)

__all__ = [
    "FOLDS",
    "COLUMNS",
    "read_fold_list",
    "read_ellipse_list",
    "load_folds",
    "load_faces",
    "image_path",
]

FOLDS = tuple(range(1, 11))
COLUMNS = ("fold", "image", "major", "minor", "angle", "cx", "cy", "x1", "y1", "x2", "y2")
_ELLIPSE_EXPECTED = "5 numbers 'major minor angle center_x center_y' (+ optional score 1)"


def read_fold_list(path: str | os.PathLike) -> list[str]:
    """Image names of a ``FDDB-fold-NN.txt`` (blank lines ignored)."""
    out = []
    for i, line in enumerate(read_text_lines(path), start=1):
        s = line.strip()
        if not s:
            continue
        if len(s.split()) != 1:
            raise AnnotationError(path, i, line, "one image name per line (e.g. 2002/08/11/big/img_591)")
        out.append(s)
    return out


def read_ellipse_list(path: str | os.PathLike) -> pd.DataFrame:
    """Parse an ``FDDB-fold-NN-ellipseList.txt``: one row per face, columns ``image, major,
    minor, angle, cx, cy, x1, y1, x2, y2``; ``df.attrs["images"]`` all images in order.
    Malformed or truncated files raise :class:`AnnotationError` (file, line, text)."""
    path = Path(path)
    lines = read_text_lines(path)
    n = len(lines)
    while n and not lines[n - 1].strip():
        n -= 1
    images: list[str] = []
    img_index: list[int] = []
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    i = 0
    while i < n:
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        if len(name.split()) != 1:
            raise AnnotationError(path, i + 1, lines[i], "an image name (e.g. 2002/08/11/big/img_591)")
        if i + 1 >= n:
            raise AnnotationError(path, i + 1, lines[i], f"a face count after image {name!r}; the file ends")
        count_text = lines[i + 1].strip()
        if not count_text.isdigit():
            raise AnnotationError(path, i + 2, lines[i + 1], f"the face count (an integer >= 0) of image {name!r}")
        count = int(count_text)
        if i + 2 + count > n:
            raise AnnotationError(
                path, n, None,
                f"{count} ellipse lines for image {name!r} (line {i + 1}) but the file ends after {n - i - 2}",
            )
        k = len(images)
        images.append(name)
        for j in range(i + 2, i + 2 + count):
            rows.append(lines[j].split())
            line_numbers.append(j + 1)
            img_index.append(k)
        i += 2 + count
    try:
        values = parse_float_rows(path, rows, line_numbers, (5, 6), _ELLIPSE_EXPECTED)
    except AnnotationError as err:
        k = line_numbers.index(err.line)
        raise AnnotationError(
            path, err.line, err.text, f"{_ELLIPSE_EXPECTED} for image {images[img_index[k]]!r}"
        ) from None
    bad = np.flatnonzero((values[:, 0] <= 0) | (values[:, 1] <= 0))
    if bad.size:
        k = int(bad[0])
        raise AnnotationError(path, line_numbers[k], lines[line_numbers[k] - 1], "positive radii")
    boxes = ellipse_to_box(*values.T)
    df = pd.DataFrame(
        {
            "image": np.array(images, dtype=object)[np.asarray(img_index, dtype=np.int64)]
            if rows else np.array([], dtype=object),
            "major": values[:, 0], "minor": values[:, 1], "angle": values[:, 2],
            "cx": values[:, 3], "cy": values[:, 4],
            "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
        }
    )
    df.attrs = {"images": images, "path": str(path)}
    return df


def load_folds(root=None, folds=FOLDS) -> dict[int, list[str]]:
    """``{fold: [image, ...]}`` from ``FDDB-fold-NN.txt``."""
    d = dataset_dir("fddb", root)
    return {f: read_fold_list(d / f"FDDB-fold-{f:02d}.txt") for f in folds}


def load_faces(root=None, folds=FOLDS, check_folds: bool = True) -> pd.DataFrame:
    """All FDDB faces of ``folds`` (columns :data:`COLUMNS`): ellipses and their boxes.

    ``df.attrs["images"]`` lists every image (fold order). With ``check_folds`` the image
    order of each ellipse list must equal its fold list (it does in the official files)."""
    d = dataset_dir("fddb", root)
    parts = []
    images: list[str] = []
    for f in folds:
        path = d / f"FDDB-fold-{f:02d}-ellipseList.txt"
        df = read_ellipse_list(path)
        if check_folds:
            listed = read_fold_list(d / f"FDDB-fold-{f:02d}.txt")
            if listed != df.attrs["images"]:
                first = next(
                    (k for k, (a, b) in enumerate(zip(listed, df.attrs["images"])) if a != b),
                    min(len(listed), len(df.attrs["images"])),
                )
                raise AnnotationError(
                    path, None, f"image #{first + 1} differs or counts differ "
                    f"({len(df.attrs['images'])} vs {len(listed)})",
                    f"the images of FDDB-fold-{f:02d}.txt in the same order",
                )
        df.insert(0, "fold", np.full(len(df), f, dtype=np.int64))
        parts.append(df)
        images.extend(df.attrs["images"])
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(COLUMNS))
    out.attrs = {"images": images, "path": str(d)}
    return out


def image_path(image: str, root=None) -> Path | None:
    """``<root>/fddb/originalPics/<image>.jpg`` if present, else None."""
    p = dataset_dir("fddb", root) / "originalPics" / f"{image}.jpg"
    return p if p.is_file() else None


def canvas_size(faces: pd.DataFrame, margin: int = 20) -> tuple[int, int]:
    """``(width, height)`` of a canvas holding all ellipses of ``faces`` (FDDB images are not
    in the data root; their sizes are not in the annotations)."""
    return int(np.ceil(faces["x2"].max())) + margin, int(np.ceil(faces["y2"].max())) + margin
