"""RetinaFace-MobileNet0.25: released weights load strictly, priors, box coding, forward shapes.

(Detection quality on a real WIDER image is checked through the peer interface in
``tests/test_peers.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinylib.models import retinaface as rf
from tinylib.models.mobilenet import IMAGENET_WEIGHTS, MobileNetV1, mobilenet_v1_025


def test_released_weights_load_strict_with_weights_only(real_data):
    path = real_data / rf.RETINAFACE_WEIGHTS
    if not path.is_file():
        pytest.skip(f"{rf.RETINAFACE_WEIGHTS} not under the data root")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    assert len(state) == 300
    net = rf.RetinaFace()
    net.load_state_dict(state, strict=True)  # raises on any missing/unexpected key or shape
    assert set(net.state_dict()) == set(state)
    # the library loader (via the data root) gives the same tensors, in eval mode
    loaded = rf.retinaface_mnet025()
    assert not loaded.training
    assert torch.equal(loaded.ClassHead[2].conv1x1.weight, state["ClassHead.2.conv1x1.weight"])


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mobilenet0.25_Final.pth.*data bundle"):
        rf.retinaface_mnet025()


def test_body_without_classifier_and_imagenet_loading_unchanged(real_data):
    body = MobileNetV1(num_classes=None)
    assert body.fc is None and not any(k.startswith("fc.") for k in body.state_dict())
    with pytest.raises(RuntimeError, match="without a classifier"):
        body.classify(torch.zeros(1, 3, 32, 32))
    if (real_data / IMAGENET_WEIGHTS).is_file():  # the ImageNet checkpoint still loads (strict)
        net = mobilenet_v1_025(pretrained=True)
        assert net.fc.out_features == 1000


def test_prior_count_and_layout():
    p = rf.prior_boxes(640, 640)
    assert p.shape == ((80 * 80 + 40 * 40 + 20 * 20) * 2, 4)
    # first cell of the stride-8 level: centre (4, 4), sizes 16 then 32; then the next column
    assert p[:3].tolist() == [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16]]
    # the last prior: stride-32 level, bottom-right cell, size 512
    assert p[-1].tolist() == [624, 624, 512, 512]
    # odd sizes: ceil(H / stride) x ceil(W / stride) cells, as the network's feature maps
    assert len(rf.prior_boxes(75, 100)) == 2 * (10 * 13 + 5 * 7 + 3 * 4)


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    priors = rf.prior_boxes(96, 128)
    xy = torch.rand(len(priors), 2, generator=g) * 100
    wh = 2 + torch.rand(len(priors), 2, generator=g) * 60
    boxes = torch.cat([xy, xy + wh], dim=1)
    loc = rf.encode_boxes(boxes, priors)
    torch.testing.assert_close(rf.decode_boxes(loc, priors), boxes, rtol=1e-5, atol=1e-3)
    # zero deltas decode to the priors themselves
    zero = rf.decode_boxes(torch.zeros_like(priors), priors)
    torch.testing.assert_close(zero[:, :2] + zero[:, 2:], 2 * priors[:, :2])  # same centre
    torch.testing.assert_close(zero[:, 2:] - zero[:, :2], priors[:, 2:])  # same size
    # landmarks: zero deltas sit on the prior centre
    lm = rf.decode_landmarks(torch.zeros(len(priors), 10), priors)
    assert lm.shape == (len(priors), 5, 2)
    torch.testing.assert_close(lm[:, 3], priors[:, :2])


@pytest.mark.parametrize("hw", [(64, 64), (75, 101)])
def test_forward_matches_prior_count(hw):
    torch.manual_seed(0)
    net = rf.RetinaFace().eval()
    with torch.no_grad():
        loc, logits, lms = net(torch.randn(2, 3, *hw))
    n = len(rf.prior_boxes(*hw))
    assert loc.shape == (2, n, 4) and logits.shape == (2, n, 2) and lms.shape == (2, n, 10)


def test_detect_faces_output_convention():
    torch.manual_seed(0)
    net = rf.RetinaFace().eval()
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    boxes, scores = rf.detect_faces(net, img, conf_threshold=0.0, keep_top_k=7)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.shape == (len(scores), 4) and 1 <= len(scores) <= 7
    assert np.all(np.diff(scores) <= 0) and np.all(boxes[:, 2:] > boxes[:, :2])
