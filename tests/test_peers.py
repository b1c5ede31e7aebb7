"""Peers: one interface, clear reports for missing packages, small-image smoke tests."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tinylib import peers


def _face_image():
    """A small real face: skimage's astronaut, cropped to her face and shrunk to 160 px."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    img = skimage_data.astronaut()[0:240, 120:330]
    return np.asarray(Image.fromarray(img).resize((140, 160)))


def test_available_reports_every_peer():
    status = peers.available()
    assert set(status) == set(peers.PEERS)
    assert all(v is None or isinstance(v, str) for v in status.values())


def test_missing_package_is_reported_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    reason = peers.available()["dlib_hog"]
    assert reason is not None and "install" in reason
    with pytest.raises(peers.PeerUnavailable, match="dlib_hog"):
        peers.get("dlib_hog")
    with pytest.raises(KeyError, match="unknown peer"):
        peers.get("yolo")


@pytest.mark.parametrize("name", peers.PEERS)
def test_detect_on_one_small_face(name):
    if peers.available()[name] is not None:
        pytest.skip(peers.available()[name])
    img = _face_image()
    det = peers.get(name, **({"adjust_threshold": -0.5} if name == "dlib_hog" else {}))
    boxes, scores = det.detect(img)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.shape == (len(scores), 4) and len(scores) >= 1
    assert np.all(np.diff(scores) <= 0)  # highest first
    b = boxes[0]  # the best box covers the face centre (~ (70, 90) in the crop)
    assert b[0] < 70 < b[2] and b[1] < 95 < b[3]


def test_upsample_pyramid_and_cache(tmp_path):
    if peers.available()["haar"] is not None:
        pytest.skip(peers.available()["haar"])
    img = _face_image()
    det = peers.get("haar", upsample=(1, 0.5))
    boxes, scores = det.detect(img)
    assert len(boxes) >= 1
    out = peers.detect_many(det, {"x/face": img}, cache=tmp_path)
    files = sorted(tmp_path.rglob("*.npz"))
    assert len(files) == 1
    files[0].write_bytes(b"")  # a second call must read the cache, not re-detect
    with pytest.raises(Exception):  # noqa: B017 — the emptied cache file is what gets read
        peers.detect_many(det, {"x/face": img}, cache=tmp_path)
    np.savez(files[0], dets=out["x/face"])
    # same key, different pixels: never served stale detections from the cache
    blank = peers.detect_many(det, {"x/face": np.zeros((64, 64, 3), np.uint8)}, cache=tmp_path)
    assert blank["x/face"].shape == (0, 5) and len(list(tmp_path.rglob("*.npz"))) == 2
    assert out["x/face"].shape[1] == 5
    with pytest.raises(ValueError, match="RGB uint8"):
        det.detect(np.zeros((10, 10), np.uint8))
