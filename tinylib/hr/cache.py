"""The HR detector's pre-NMS candidates per image, cached on disk (``cache_dir("hr_raw")``)
by weights, pyramid settings and image file identity -- so ablations and the GAN's proposal
stage re-select candidates instead of re-running the network. Also re-exported by
:mod:`tinylib.compare.wider_subset`."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..config import cache_dir
from ..data.images import read_image
from ..io import atomic_save
from .detect import Detector, RawDetections

__all__ = ["hr_raw", "weights_id"]


def _fingerprint(path) -> str:
    st = Path(path).stat()
    return hashlib.sha1(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def _detector_tag(det: Detector, weights_id: str) -> str:
    cfg = {"weights": weights_id, "max_side": det.max_side, "upsample": det.upsample,
           "half_octaves": det.half_octaves, "candidate_threshold": det.candidate_threshold,
           "top_k": det.top_k, "routing": det.routing}
    return hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]


def hr_raw(det: Detector, images: Mapping[str, os.PathLike], *, weights_id: str,
           cache: bool | str | os.PathLike = True, progress: bool = False) -> dict[str, RawDetections]:
    """Pre-NMS candidates of the HR detector ``det`` for each image, cached per image under
    ``cache_dir("hr_raw")`` (or the folder ``cache``) keyed by ``weights_id`` (e.g. the
    weights file's SHA-256), the pyramid settings and the image file's identity."""
    base = (Path(cache) if cache not in (True, False) else cache_dir("hr_raw")) / _detector_tag(
        det, weights_id)
    out = {}
    for key, path in tqdm(list(images.items()), desc="HR detector", disable=not progress):
        f = base / (key.replace("/", "__") + f"-{_fingerprint(path)}.npz")
        if cache is not False and f.is_file():
            with np.load(f, allow_pickle=False) as z:
                out[key] = RawDetections(z["boxes"], z["scores"], z["template"], z["level"],
                                         z["scales"].tolist(), z["a"].tolist(), z["b"].tolist())
            continue
        raw = det.raw(read_image(path))
        out[key] = raw
        if cache is not False:
            atomic_save(f, lambda t, r=raw: np.savez(
                t, boxes=r.boxes, scores=r.scores, template=r.template, level=r.level,
                scales=np.asarray(r.scales, float), a=np.asarray(r.a, int),
                b=np.asarray(r.b, int)), suffix=".npz")
    return out


def weights_id(path) -> str:
    """A weights file's identity for the detection caches: the first 16 hex digits of its
    SHA-256 (fp16 exports of one architecture all have the same size, so size is not one)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
