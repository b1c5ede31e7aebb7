"""TinyPerson-style AP: hand cases for ignore regions (IoD), size ranges and duplicates, and
a cross-check of the COCO machinery against pycocotools where both apply."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from tinylib.eval import tinyperson as T


def _gt(boxes, ignore=None):
    return T.TinyGT(boxes={"a.jpg": np.asarray(boxes, float)},
                    ignore={"a.jpg": np.asarray(ignore or [False] * len(boxes))})


def test_tp_fp_and_duplicate():
    gt = _gt([[0, 0, 10, 10], [50, 50, 10, 10]])
    dets = {"a.jpg": np.array([[0, 0, 10, 10, 0.9], [0, 0, 10, 10, 0.8], [50, 50, 10, 10, 0.7]])}
    res = T.evaluate(dets, gt, iou_thresholds=(0.5,), ranges={"all": (2, 1e5)})
    # PR: (0.5, 1), (0.5, 0.5), (1, 2/3) -> monotone precision 1 up to r=0.5, 2/3 to r=1
    expected = (51 * 1.0 + 50 * 2 / 3) / 101
    assert res.ap[("all", 0.5)] == pytest.approx(expected)


def test_detection_inside_ignore_region_is_ignored_by_iod():
    # a large ignore region (dense crowd); a small detection inside it: IoU tiny, IoD = 1
    gt = _gt([[0, 0, 10, 10], [100, 100, 80, 80]], ignore=[False, True])
    dets = {"a.jpg": np.array([[0, 0, 10, 10, 0.5], [120, 120, 10, 10, 0.9]])}
    with_iod = T.evaluate(dets, gt, iou_thresholds=(0.5,), ranges={"all": (2, 1e5)})
    without = T.evaluate(dets, gt, iou_thresholds=(0.5,), ranges={"all": (2, 1e5)},
                         use_iod_for_ignore=False)
    assert with_iod.ap[("all", 0.5)] == pytest.approx(1.0)
    assert without.ap[("all", 0.5)] == pytest.approx(0.5)  # FP first, then the TP


def test_size_ranges_ignore_out_of_range_objects_and_detections():
    gt = _gt([[0, 0, 5, 5], [50, 50, 15, 15]])  # sizes 5 (tiny1) and 15 (tiny3)
    dets = {"a.jpg": np.array([[0, 0, 5, 5, 0.6], [50, 50, 15, 15, 0.9], [200, 200, 30, 30, 0.95]])}
    res = T.evaluate(dets, gt, iou_thresholds=(0.5,))
    assert res.n_objects["tiny1"] == 1 and res.n_objects["tiny3"] == 1 and res.n_objects["tiny"] == 2
    # tiny1: the 15-px hit is matched to an out-of-range (ignored) object -> ignored; the 30-px
    # false positive is out of range -> ignored; only the 5-px TP counts
    assert res.ap[("tiny1", 0.5)] == pytest.approx(1.0)
    assert res.ap[("small", 0.5)] != res.ap[("small", 0.5)]  # NaN: no 20-32 px object
    assert res.ap[("all", 0.5)] < 1.0  # the 30-px FP counts in "all"
    assert list(res.table().columns) == ["AP@0.5"]


def test_matches_pycocotools_without_ignore():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    gt_boxes, dets, images, anns, res = {}, {}, [], [], []
    aid = 1
    for i in range(8):
        key = f"im{i}.jpg"
        n = int(rng.integers(1, 12))
        g = np.hstack([rng.uniform(0, 300, (n, 2)), rng.uniform(3, 40, (n, 2))]).round(1)
        gt_boxes[key] = g
        hit = g[rng.random(n) < 0.7] + rng.normal(0, 1.0, (1, 4))
        hit[:, 2:] = np.abs(hit[:, 2:]) + 1
        k = int(rng.integers(0, 5))
        fp = np.hstack([rng.uniform(0, 300, (k, 2)), rng.uniform(3, 40, (k, 2))])
        d = np.vstack([hit, fp])
        s = rng.random(len(d))
        dets[key] = np.hstack([d, s[:, None]])
        images.append({"id": i + 1, "file_name": key, "width": 400, "height": 400})
        for b in g:
            anns.append({"id": aid, "image_id": i + 1, "bbox": b.tolist(), "area": float(b[2] * b[3]),
                         "category_id": 1, "iscrowd": 0})
            aid += 1
        for b, sc in zip(d, s):
            res.append({"image_id": i + 1, "bbox": b.tolist(), "score": float(sc), "category_id": 1})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "p"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        cdt = coco.loadRes(res)
        ev = COCOeval(coco, cdt, "bbox")
        ev.params.iouThrs = np.array([0.25, 0.5, 0.75])
        ev.params.maxDets = [200]
        ev.params.areaRng = [[2 ** 2, 1e5 ** 2], [2 ** 2, 20 ** 2], [20 ** 2, 32 ** 2]]
        ev.params.areaRngLbl = ["all", "tiny", "small"]
        ev.evaluate()
        ev.accumulate()
    ours = T.evaluate(dets, T.TinyGT(boxes=gt_boxes), ranges={"all": (2, 1e5), "tiny": (2, 20),
                                                              "small": (20, 32)},
                      use_iod_for_ignore=False)  # pycocotools has no IoD rule
    for ti, t in enumerate((0.25, 0.5, 0.75)):
        for ai, name in enumerate(["all", "tiny", "small"]):
            prec = ev.eval["precision"][ti, :, 0, ai, 0]
            ref = float(np.mean(prec[prec > -1])) if (prec > -1).any() else float("nan")
            assert ours.ap[(name, t)] == pytest.approx(ref, abs=1e-9), (name, t)


def test_load_coco_gt_and_errors(tmp_path):
    import json

    p = tmp_path / "gt.json"
    p.write_text(json.dumps({"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": [
        {"id": 1, "image_id": 1, "bbox": [0, 0, 5, 5], "ignore": True},
        {"id": 2, "image_id": 1, "bbox": [9, 9, 5, 5], "uncertain": True},
        {"id": 3, "image_id": 1, "bbox": [20, 9, 5, 5]}]}))
    gt = T.load_coco_gt(p)
    assert gt.ignore["x.jpg"].tolist() == [True, True, False]
    assert T.load_coco_gt(p, ignore_uncertain=False).ignore["x.jpg"].tolist() == [True, False, False]
    p.write_text('{"images": [}')
    with pytest.raises(ValueError, match="line 1"):
        T.load_coco_gt(p)
    with pytest.raises(KeyError, match="not in the ground truth"):
        T.evaluate({"nope.jpg": np.zeros((0, 5))}, gt)
