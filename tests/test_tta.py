"""Test-time pyramid and flip (tinylib.engine.tta): boxes come back in the original image's
pixels from every scale and from the mirror image, and duplicates merge by NMS."""

from __future__ import annotations

import numpy as np
import pytest

from tinylib.engine.tta import TTA_SETTINGS, tta_cost, tta_detect


def _bright_box_detector(image):
    """Finds the one bright rectangle of the image exactly (xyxy, continuous pixels)."""
    ys, xs = np.nonzero(image[..., 0] > 127)
    if not len(xs):
        return np.zeros((0, 4)), np.zeros(0)
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], float), np.array([0.9])


def test_boxes_map_back_from_every_scale_and_the_mirror():
    img = np.zeros((80, 100, 3), np.uint8)
    img[20:40, 10:30] = 255  # a 20 x 20 box at x 10..30: off-centre, so a bad un-mirror shows
    for name, (scales, flip) in TTA_SETTINGS.items():
        b, s = tta_detect(_bright_box_detector, img, scales, flip, iou=0.5)
        assert len(b) == 1, name  # the copies of one box merge
        assert np.allclose(b[0], [10, 20, 30, 40], atol=1.0), (name, b)
    calls = []
    tta_detect(lambda im: calls.append(im.shape) or (np.zeros((0, 4)), np.zeros(0)), img, (0.5, 2.0), True)
    assert calls == [(40, 50, 3)] * 2 + [(160, 200, 3)] * 2


def test_cost():
    assert tta_cost((1.0,), False) == 1.0
    assert tta_cost((0.5, 1.0, 2.0), True) == pytest.approx(2 * 5.25)
