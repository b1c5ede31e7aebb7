"""Assignment 03: the WIDER FACE matching rule and AP by hand (chapter 06,
tinylib.eval.widerface and tinylib.eval.pr)."""

from cells import Spec, answer, md, readonly, tests

SPEC = Spec("03_wider_ap", "wider_ap", [
    md("""
    # Assignment 03 — The WIDER FACE matching rule and AP by hand

    Every number of the WIDER FACE leaderboard comes out of the MATLAB `eval_tools`. Chapter 06
    re-implements them (`tinylib.eval.widerface.evaluate`) and shows where a careless port goes
    wrong. Here you rebuild the core for **one image**:

    * boxes are `x y w h` (WIDER's format), and the toolbox measures IoU with the MATLAB
      `+1` convention: a box spans `x .. x + w` and its width is `(x2 - x1 + 1)`;
    * each detection is matched to the face with the **largest IoU** (the first one on ties),
      if that IoU is `>= 0.5` — whatever that face's state: a second detection on a recalled
      face is simply a false positive;
    * a detection matched to a face the setting does not keep (an *ignored* face, e.g. too
      small for *easy*) is neither a true nor a false positive;
    * the curve has 1,000 thresholds `t = 1 - k / 1000` (`k = 1 .. 1000`); at each one,
      *proposals* are the non-ignored detections with score `>= t`, *recalled* the kept faces
      hit by a detection with score `>= t`; precision = recalled / proposals (NaN when there
      is no proposal), recall = recalled / kept faces;
    * AP is the VOC area under the interpolated curve.

    Points: 2 + 2 + 2 + 3 = 9. Use `numpy`.
    """, "intro"),
    readonly("setup", """
    import numpy as np

    THRESHOLDS = 1.0 - np.arange(1, 1001) / 1000.0   # the toolbox's thresholds, strictest first
    """),
    md("""
    ## Task 1 — IoU with the `+1` convention (2 points)

    `iou_plus_one(a_xyxy, b_xyxy)`: pairwise IoU of `(N, 4)` and `(M, 4)` boxes
    `(x1, y1, x2, y2)`, with widths `x2 - x1 + 1` and heights `y2 - y1 + 1` (the overlap too);
    an empty overlap gives 0. Returns `(N, M)`.
    """, "task1"),
    answer("iou_plus_one", """
    def iou_plus_one(a_xyxy, b_xyxy):
        \"\"\"Pairwise IoU with the MATLAB ``+1`` widths, shape ``(N, M)``.\"\"\"
        ### BEGIN SOLUTION
        a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
        b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
        area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
        area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
        iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
        ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        return inter / (area_a[:, None] + area_b[None, :] - inter)
        ### END SOLUTION
    """),
    tests("test_iou_plus_one", 2, """
    iou = iou_plus_one([[0, 0, 9, 9]], [[0, 0, 9, 9], [5, 0, 14, 9], [100, 100, 110, 110]])
    assert iou.shape == (1, 3)
    assert np.allclose(iou[0], [1.0, 50 / 150, 0.0])
    ### BEGIN HIDDEN TESTS
    from tinylib.boxes import box_iou
    rng = np.random.default_rng(7)
    for n, m in [(1, 1), (6, 9), (30, 20)]:
        a = rng.uniform(0, 60, (n, 2)); a = np.c_[a, a + rng.uniform(0, 25, (n, 2))]
        b = rng.uniform(0, 60, (m, 2)); b = np.c_[b, b + rng.uniform(0, 25, (m, 2))]
        assert np.allclose(iou_plus_one(a, b), box_iou(a, b, plus_one=True))
    # tiny boxes: the +1 matters most
    a = np.array([[0, 0, 2, 2], [0, 0, 5, 5]], float)
    assert np.allclose(iou_plus_one(a, a + 1), box_iou(a, a + 1, plus_one=True))
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 2 — the matching rule (2 points)

    `match(pred_xywh, gt_xywh, iou_thresh=0.5)`: for each detection (`(N, 4)` or `(N, 5)`, a
    score column is ignored) the index of the face (`(M, 4)`, `x y w h`) with the largest
    `+1` IoU — the first one on ties — if that IoU is `>= iou_thresh`, else `-1`. Boxes are
    `(x, y, x + w, y + h)`. Returns an integer array of length `N` (all `-1` without faces).
    """, "task2"),
    answer("match", """
    def match(pred_xywh, gt_xywh, iou_thresh=0.5):
        \"\"\"Index of the face each detection hits (largest IoU, first on ties) or -1.\"\"\"
        ### BEGIN SOLUTION
        p = np.asarray(pred_xywh, dtype=np.float64)
        p = p.reshape(-1, p.shape[-1])[:, :4] if p.size else np.zeros((0, 4))
        g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
        if len(p) == 0 or len(g) == 0:
            return np.full(len(p), -1, dtype=np.int64)
        iou = iou_plus_one(np.c_[p[:, :2], p[:, :2] + p[:, 2:]], np.c_[g[:, :2], g[:, :2] + g[:, 2:]])
        best = iou.argmax(axis=1)
        ok = iou[np.arange(len(p)), best] >= iou_thresh
        return np.where(ok, best, -1).astype(np.int64)
        ### END SOLUTION
    """),
    tests("test_match", 2, """
    gt = np.array([[0, 0, 9, 9], [100, 100, 9, 9]])
    pred = np.array([[0, 0, 9, 9, 0.9], [50, 50, 10, 10, 0.8], [101, 101, 9, 9, 0.7]])
    assert match(pred, gt).tolist() == [0, -1, 1]
    assert match(pred, np.zeros((0, 4))).tolist() == [-1, -1, -1]
    ### BEGIN HIDDEN TESTS
    from tinylib.eval import widerface as W
    rng = np.random.default_rng(8)
    for trial in range(20):
        m = int(rng.integers(1, 12))
        g = np.c_[rng.uniform(0, 80, (m, 2)), rng.uniform(3, 30, (m, 2))]
        g = np.r_[g, g[:2]]                      # duplicated faces: the first index wins
        p = np.c_[g[rng.integers(0, len(g), 15)] + rng.normal(0, 2, (15, 4)), rng.random(15)]
        for thr in (0.3, 0.5, 0.7):
            assert np.array_equal(match(p, g, thr), W.match_image(p, g, iou_thresh=thr)), trial
    # IoU exactly 0.5 (a 10x10 detection inside a 20x10 face, +1 widths) is a hit
    p, g = np.array([[0, 0, 9, 9, 1.0]]), np.array([[0, 0, 19, 9]])
    assert match(p, g).tolist() == W.match_image(p, g).tolist() == [0]
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 3 — VOC average precision (2 points)

    `voc_ap(recall, precision)` — the `VOCap` function the toolbox calls:
    prepend recall 0 / precision 0 and append recall 1 / precision 0, make precision
    monotone from the right (each value becomes the max of itself and everything after
    it), then sum `(r[i] - r[i-1]) * p[i]` over the points where recall changes. NaN
    precisions (thresholds without proposals) are skipped the way MATLAB's `max` skips
    them (`np.fmax` does that). On the toy curve recall `[0.5, 1]`, precision `[1, 0.5]`
    it is 0.75.

    With the real data the authors' own published curves give 0.930 / 0.916 / 0.830
    (chapter 06) — the grader checks your function on them.
    """, "task3"),
    answer("voc_ap", """
    def voc_ap(recall, precision):
        \"\"\"PASCAL VOC (2010+) area under the interpolated precision/recall curve.\"\"\"
        ### BEGIN SOLUTION
        rec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64).ravel(), [1.0]])
        pre = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64).ravel(), [0.0]])
        pre = np.fmax.accumulate(pre[::-1])[::-1]
        idx = np.flatnonzero(rec[1:] != rec[:-1]) + 1
        return float(np.nansum((rec[idx] - rec[idx - 1]) * pre[idx]))
        ### END SOLUTION
    """),
    tests("test_voc_ap", 2, """
    assert np.isclose(voc_ap([0.5, 1.0], [1.0, 0.5]), 0.75)
    assert np.isclose(voc_ap([0.0, 0.5], [np.nan, 1.0]), 0.5)   # NaN skipped
    ### BEGIN HIDDEN TESTS
    from tinylib.eval import pr
    rng = np.random.default_rng(9)
    for trial in range(20):
        n = int(rng.integers(1, 200))
        rec = np.sort(rng.choice(np.linspace(0, 1, 41), n))
        pre = rng.random(n)
        pre[rng.random(n) < 0.1] = np.nan
        assert np.isclose(voc_ap(rec, pre), pr.voc_ap(rec, pre)), trial
    # the authors' published curves (HR-ResNet101), when the real data are present
    from tinylib.data import sources
    from tinylib.eval import widerface as W
    src = sources.choose(sources.PR_CURVES, what="published PR curves", fallback=None)
    if src.is_real:
        for setting, ap in zip(W.SETTINGS, (0.930, 0.916, 0.830)):
            precision, recall = W.load_published_curve("hr_res101", setting, root=src.root)
            assert abs(voc_ap(recall, precision) - ap) < 5e-4, setting
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 4 — AP of one image (3 points)

    `image_ap(pred, gt_xywh, keep)` puts it together for one image, with the rules at the
    top (no score normalisation: the scores are already in `[0, 1]`): `pred` is `(N, 5)`
    `x y w h score`, `gt_xywh` `(M, 4)`, `keep` the indices of the faces the setting keeps
    (the others are ignored). Use `THRESHOLDS`, your `match` and your `voc_ap`, and return
    the AP. The toy image of chapter 06 (below) has AP `0.5 * 1 + 0.5 * 2/3`.
    """, "task4"),
    answer("image_ap", """
    def image_ap(pred, gt_xywh, keep):
        \"\"\"WIDER FACE AP of one image (official rules, scores already in [0, 1]).\"\"\"
        ### BEGIN SOLUTION
        pred = np.asarray(pred, dtype=np.float64).reshape(-1, 5)
        gt = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
        kept = np.zeros(len(gt), dtype=bool)
        kept[np.asarray(keep, dtype=np.int64)] = True
        hit = match(pred, gt)
        scores = pred[:, 4]
        hit_kept = np.zeros(len(pred), dtype=bool)
        hit_kept[hit >= 0] = kept[hit[hit >= 0]]
        ignored = (hit >= 0) & ~hit_kept
        proposals = np.array([(scores[~ignored] >= t).sum() for t in THRESHOLDS])
        best = np.full(len(gt), -np.inf)
        np.maximum.at(best, hit[hit_kept], scores[hit_kept])
        recalled = np.array([(best[kept] >= t).sum() for t in THRESHOLDS])
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = recalled / proposals
        recall = recalled / max(int(kept.sum()), 1)
        return voc_ap(recall, precision)
        ### END SOLUTION
    """),
    tests("test_image_ap", 3, """
    A, B, C, FAR = [0, 0, 9, 9], [100, 100, 9, 9], [200, 200, 9, 9], [50, 50, 10, 10]
    toy = np.array([A + [0.9], FAR + [0.8], B + [0.7], C + [0.5], A + [0.3]])
    assert np.isclose(image_ap(toy, [A, B, C], keep=[0, 2]), 0.5 * 1 + 0.5 * 2 / 3)
    ### BEGIN HIDDEN TESTS
    from tinylib.eval import widerface as W
    rng = np.random.default_rng(10)
    for trial in range(15):
        m = int(rng.integers(1, 15))
        g = np.c_[rng.uniform(0, 300, (m, 2)), rng.uniform(4, 40, (m, 2))]
        keep = np.flatnonzero(rng.random(m) < 0.7)
        n_hit, n_fp = int(rng.integers(0, 2 * m)), int(rng.integers(1, 8))
        hits = g[rng.integers(0, m, n_hit)] + rng.normal(0, 1.5, (n_hit, 4))
        fps = np.c_[rng.uniform(0, 300, (n_fp, 2)), rng.uniform(4, 40, (n_fp, 2))]
        p = np.r_[hits, fps]
        p = np.c_[p, rng.random(len(p))]
        gt = W.SimpleEvalGT(boxes={"e/x": g}, keep={s: {"e/x": keep} for s in W.SETTINGS})
        ref = W.evaluate({"e/x": p}, gt, normalize=False, settings=("hard",)).ap["hard"]
        assert np.isclose(image_ap(p, g, keep), ref), trial
    ### END HIDDEN TESTS
    """),
    md("""
    ## Going further (not graded)

    * With several images the toolbox normalises the scores over the *whole* set first
      (`W.normalize_scores`). Why does that change AP, and why does it not matter above?
    * Chapter 06 (`notebooks/06_evaluation.ipynb`) measures what the `+1` and the line order
      of a prediction file do to AP.
    """, "further"),
])
