"""Benchmark: tinylib's vectorised WIDER FACE evaluation vs a straightforward loop port.

The loop port below follows the MATLAB toolbox step by step, the way the widely copied
Python port does: per image, detections sorted by score, a Python loop over detections
for the matching, then a Python loop over the 1,000 thresholds. Both must give the same AP.

    TINYLIB_DATA=/work/shared/data python benchmarks/wider_eval.py            # 400 images
    TINYLIB_DATA=/work/shared/data python benchmarks/wider_eval.py --images 0 # all 3,226

Detections are made up from the ground truth (jittered faces + random false positives,
about 35 per image, so 100k+ on the full val set). The full-set timing of the vectorised
code is also taken from a folder in the submission layout (parsing included).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from tinylib.boxes import box_convert
from tinylib.eval import widerface as W
from tinylib.eval.pitfalls import jittered_predictions
from tinylib.eval.pr import voc_ap


def _overlap(a, b):
    x1 = np.maximum(a[:, 0], b[0])
    y1 = np.maximum(a[:, 1], b[1])
    x2 = np.minimum(a[:, 2], b[2])
    y2 = np.minimum(a[:, 3], b[3])
    w, h = x2 - x1 + 1, y2 - y1 + 1
    inter = w * h
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    o = inter / (area_a + area_b - inter)
    o[(w <= 0) | (h <= 0)] = 0
    return o


def loop_evaluate(preds, gt, keys, thresh_num=1000) -> dict[str, float]:
    """The straightforward port: per-detection matching loop, per-threshold loop."""
    allp = np.concatenate([preds[k][:, 4] for k in keys if k in preds]).astype(np.float32)
    hi = max(np.float32(np.finfo(np.float32).tiny), allp.max())
    lo = allp.min()
    norm = {}
    for k in keys:
        p = preds[k][np.argsort(-preds[k][:, 4], kind="stable")].copy()
        p[:, 4] = ((p[:, 4].astype(np.float32) - lo) / (hi - lo)).astype(np.float64)
        p[:, :4] = box_convert(p[:, :4], "xywh", "xyxy")
        norm[k] = p
    ap = {}
    for s in W.SETTINGS:
        curve = np.zeros((thresh_num, 2))
        count = 0
        for k in keys:
            g = np.asarray(gt.boxes[k], dtype=np.float64).copy()
            keep = gt.keep[s][k]
            count += len(keep)
            p = norm[k]
            if not len(p) or not len(g):
                continue
            g = box_convert(g, "xywh", "xyxy")
            kept = np.zeros(len(g))
            kept[keep] = 1
            recall_list = np.zeros(len(g))
            proposal = np.ones(len(p))
            pred_recall = np.zeros(len(p))
            for h in range(len(p)):
                o = _overlap(g, p[h, :4])
                idx = int(np.argmax(o))
                if o[idx] >= 0.5:
                    if kept[idx] == 0:
                        recall_list[idx] = -1
                        proposal[h] = -1
                    elif recall_list[idx] == 0:
                        recall_list[idx] = 1
                pred_recall[h] = np.count_nonzero(recall_list == 1)
            for t in range(1, thresh_num + 1):
                above = np.flatnonzero(p[:, 4] >= 1 - t / thresh_num)
                if above.size:
                    r = above[-1]
                    curve[t - 1, 0] += np.count_nonzero(proposal[: r + 1] == 1)
                    curve[t - 1, 1] += pred_recall[r]
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = curve[:, 1] / curve[:, 0]
        ap[s] = voc_ap(curve[:, 1] / count, prec)
    return ap


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400,
                    help="images for the loop-vs-vectorised comparison (0 = all; slow)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    try:
        gt = W.load_gt()
        source = "official WIDER val ground truth"
    except (FileNotFoundError, ImportError) as exc:
        raise SystemExit(f"needs the WIDER val ground truth under TINYLIB_DATA: {exc}") from None
    preds = jittered_predictions(gt, seed=args.seed)
    n_det = sum(len(v) for v in preds.values())
    print(f"{source}: {len(gt.images)} images, {n_det} made-up detections")

    keys = gt.images if args.images <= 0 else gt.images[: args.images]
    t0 = time.perf_counter()
    fast = W.evaluate(preds, gt, subset=keys)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = loop_evaluate(preds, gt, keys)
    t_slow = time.perf_counter() - t0
    for s in W.SETTINGS:
        assert abs(fast.ap[s] - slow[s]) < 1e-12, (s, fast.ap[s], slow[s])
    sub_det = sum(len(preds[k]) for k in keys)
    print(f"subset {len(keys)} images / {sub_det} detections: AP equal "
          + " ".join(f"{s} {fast.ap[s]:.4f}" for s in W.SETTINGS))
    print(f"  loop port   {t_slow:8.2f} s")
    print(f"  vectorised  {t_fast:8.3f} s")
    print(f"  ratio       {t_slow / t_fast:8.1f} x")

    t0 = time.perf_counter()
    full = W.evaluate(preds, gt)
    t_mem = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        W.write_predictions(preds, tmp)
        t0 = time.perf_counter()
        full_dir = W.evaluate(tmp, gt)
        t_dir = time.perf_counter() - t0
    assert full.ap == full_dir.ap
    print(f"full val ({len(gt.images)} images, {n_det} detections): "
          f"in memory {t_mem:.2f} s, from a submission folder {t_dir:.2f} s; AP {full}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
