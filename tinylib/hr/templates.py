"""Template knowledge of the HR detector, in one place: the template shapes and the image
scale each was built for (:class:`Templates`), the released model's A/B routing
(:data:`HR25_A`, :data:`HR25_B`), the paper's 25 templates (:func:`hr_template_set`, read
through :func:`tinylib.data.templates.load_templates`) and tinylib's own Jaccard k-medoids
templates when the released files are absent (:func:`own_template_set`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..analysis.clustering import apply_resolution_rule, kmedoids_shapes
from ..data import sources
from ..data.templates import load_templates
from ..data.widerface import load_faces

log = logging.getLogger(__name__)

__all__ = ["Templates", "HR25_A", "HR25_B", "hr_template_set", "own_template_set"]


@dataclass
class Templates:
    """Template shapes ``sizes_wh`` ``(T, 2)`` = ``(w, h)`` (pixels of the image at
    ``scale``) and the A/B routing.

    ``a`` templates run on every pyramid level, ``b`` (the tiny ones, trained on 2x
    upsampled faces) only on upsampled levels; the rest are trained but pruned at test
    time (Table 1 of the paper: A+B). (The clustering of :mod:`tinylib.analysis.clustering`
    works on ``(h, w)`` shapes; its tables name their columns.)"""

    sizes_wh: np.ndarray  # (T, 2) w, h
    scales: np.ndarray  # (T,) image scale the template is meant for (0.5, 1, 2)
    a: list[int] = field(default_factory=list)
    b: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.sizes_wh = np.ascontiguousarray(np.asarray(self.sizes_wh, dtype=np.float64).reshape(-1, 2))
        self.scales = np.asarray(self.scales, dtype=np.float64).reshape(-1)
        if len(self.scales) != len(self.sizes_wh):
            raise ValueError(f"{len(self.sizes_wh)} template sizes but {len(self.scales)} scales")
        if (self.sizes_wh <= 0).any():
            raise ValueError("template widths and heights must be positive")
        if not self.a and not self.b:
            self.a = [int(i) for i in np.flatnonzero(np.isclose(self.scales, 1.0))]
            self.b = [int(i) for i in np.flatnonzero(self.scales > 1.0 + 1e-9)]
            if not self.a and not self.b:
                self.a = list(range(len(self.sizes_wh)))
        self.a = [int(i) for i in self.a]
        self.b = [int(i) for i in self.b]

    def __len__(self) -> int:
        return len(self.sizes_wh)

    @classmethod
    def from_any(cls, obj) -> Templates:
        """From a :class:`Templates`, a DataFrame with ``w, h[, scale]`` columns (e.g.
        ``tinylib.data.templates.load_templates()`` or tinylib's own clustering), an array
        ``(T, 2)`` of w, h, ``(T, 3)`` w, h, scale, ``(T, 4)`` centred boxes (MATLAB ``x2 - x1 + 1``
        widths, as in ``RefBox_N25.mat``) or ``(T, 5)`` boxes + scale, or a dict from
        :meth:`to_dict`."""
        if isinstance(obj, Templates):
            return obj
        if isinstance(obj, dict):
            return cls(np.asarray(obj["sizes"]), np.asarray(obj["scales"]),
                       list(obj.get("a", [])), list(obj.get("b", [])))
        if hasattr(obj, "columns"):  # DataFrame
            cols = {c.lower(): c for c in obj.columns}
            if "w" not in cols or "h" not in cols:
                raise ValueError(f"template table needs columns w and h, has {list(obj.columns)}")
            sizes_wh = np.stack([obj[cols["w"]].to_numpy(float), obj[cols["h"]].to_numpy(float)], 1)
            scales = obj[cols["scale"]].to_numpy(float) if "scale" in cols else np.ones(len(obj))
            return cls(sizes_wh, scales)
        arr = np.asarray(obj, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] not in (2, 3, 4, 5):
            raise ValueError(f"templates: expected (T, 2) w h, (T, 3) w h scale, (T, 4) boxes "
                             f"or (T, 5) boxes + scale, got {arr.shape}")
        if arr.shape[1] in (2, 3):
            return cls(arr[:, :2], arr[:, 2] if arr.shape[1] == 3 else np.ones(len(arr)))
        # the released files' MATLAB convention: widths x2 - x1 + 1 (tinylib/boxes.py)
        sizes_wh = np.stack([arr[:, 2] - arr[:, 0] + 1, arr[:, 3] - arr[:, 1] + 1], 1)
        scales = arr[:, 4] if arr.shape[1] == 5 else np.ones(len(arr))
        return cls(sizes_wh, scales)

    def to_dict(self) -> dict:
        """``{"sizes": (w, h) rows, "scales", "a", "b"}`` (the key stays ``sizes``: it is
        stored in checkpoints)."""
        return {"sizes": self.sizes_wh.tolist(), "scales": self.scales.tolist(),
                "a": list(self.a), "b": list(self.b)}


#: A and B templates of the released HR model (``tiny_face_detector.m``: ``tids = 5:12`` on
#: every level, ``19:25`` added on upsampled levels; 0-based here). Templates 1-4 (0.5x)
#: and 13-18 are trained but pruned at test time (Table 1, "A+B").
HR25_A = list(range(4, 12))
HR25_B = list(range(18, 25))


def hr_template_set(scaled: bool = True, root=None) -> Templates:
    """The paper's 25 templates (``RefBox_N25_scaled.mat`` when ``scaled``, else the raw
    clusters at scale 1) with the released model's A/B routing. Without the released files
    (the embedded default), tinylib's own clustering stands in (:func:`own_template_set`),
    with a warning."""
    if root is None and sources.missing_files(sources.HR_TEMPLATES):
        log.warning("released HR templates (RefBox_N25*.mat) not in the data root: using "
                    "tinylib's own k-medoids templates instead")
        return own_template_set(scale_rule=scaled)
    tpl = Templates.from_any(load_templates(scaled=scaled, root=root))
    if scaled and len(tpl) == 25:
        tpl.a, tpl.b = list(HR25_A), list(HR25_B)
    return tpl


def own_template_set(k: int = 25, *, scale_rule: bool = True, seed: int = 0) -> Templates:
    """tinylib's own templates: Jaccard k-medoids (Eq. 1) of the WIDER-format train face
    shapes — the real annotations when present, else the synthetic world — with the paper's
    resolution rule (faces < 40 px tall get templates built at 2x, > 140 px at 0.5x) when
    ``scale_rule``. A templates are the 1x ones, B the 2x ones."""
    src = sources.choose(sources.WIDER_ANNOTATIONS, what="face shapes to cluster")
    faces = load_faces("train", root=src.root)
    faces = faces[~faces["degenerate"].to_numpy(bool)]
    medoids_hw = kmedoids_shapes(faces[["h", "w"]].to_numpy(float), k, seed=seed).medoids
    rule = apply_resolution_rule(medoids_hw)  # a table with named h, w columns
    if not scale_rule:
        return Templates(np.stack([rule.w, rule.h], 1), np.ones(len(rule)))
    return Templates(np.stack([rule.w_built, rule.h_built], 1), rule.scale.to_numpy())
