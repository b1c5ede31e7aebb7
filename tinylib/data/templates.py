"""The 25 templates of the Tiny Faces HR detector (``tinyfaces_hr/RefBox_N25*.mat``).

* ``RefBox_N25.mat`` -- variable ``clusters`` (25 x 4, ``x1 y1 x2 y2`` centred at 0): the
  authors' K-medoids clustering of WIDER FACE train face shapes (sizes at original
  resolution).
* ``RefBox_N25_scaled.mat`` -- ``clusters`` (25 x 5): the templates the released HR model
  uses after the template-resolution analysis; column 5 is the image scale the template
  runs at (0.5, 1 or 2) and ``x1..y2`` are in pixels **of that scaled image** (the face it
  finds in the original image is ``(w, h) / scale``).

The +1 convention: the MATLAB code (``cluster_rects.m``, ``tiny_face_detector.m``) measures
``w = x2 - x1 + 1`` and ``h = y2 - y1 + 1``, and WIDER's ``w, h`` annotation is that number, so
the ``w``/``h`` columns here follow it (template 25 of ``RefBox_N25`` is 3.80 x 4.80 px). This
is the one place in tinylib where template sizes carry the ``+1``; subtract 1 to get the
``x2 - x1`` convention of :mod:`tinylib.boxes`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from ..config import dataset_dir

__all__ = ["load_templates", "read_templates_mat", "TEMPLATE_COLUMNS"]

TEMPLATE_COLUMNS = ("x1", "y1", "x2", "y2", "w", "h", "scale")


def read_templates_mat(path) -> pd.DataFrame:
    """Read a ``RefBox_N25*.mat`` file -> DataFrame with :data:`TEMPLATE_COLUMNS`, one row per
    template in file order (index 0..24; the paper numbers them 1..25). Files without a
    fifth column get ``scale = 1``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"template file not found: {path}")
    mat = scipy.io.loadmat(path)
    if "clusters" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: expected a variable 'clusters', found {keys}")
    c = np.asarray(mat["clusters"], dtype=np.float64)
    if c.ndim != 2 or c.shape[1] not in (4, 5):
        raise ValueError(f"{path}: 'clusters' must be N x 4 or N x 5 (x1 y1 x2 y2 [scale]), "
                         f"got {c.shape}")
    df = pd.DataFrame(c[:, :4], columns=["x1", "y1", "x2", "y2"])
    df["w"] = df["x2"] - df["x1"] + 1.0
    df["h"] = df["y2"] - df["y1"] + 1.0
    df["scale"] = c[:, 4] if c.shape[1] == 5 else 1.0
    return df


def load_templates(scaled: bool = True, root=None) -> pd.DataFrame:
    """The HR templates from the data root: ``RefBox_N25_scaled.mat`` (``scaled=True``, the set
    the detector runs) or ``RefBox_N25.mat`` (the raw clusters). See the module doc for the
    ``+1`` convention of ``w`` and ``h``."""
    name = "RefBox_N25_scaled.mat" if scaled else "RefBox_N25.mat"
    return read_templates_mat(dataset_dir("tinyfaces_hr", root) / name)
