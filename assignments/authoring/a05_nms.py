"""Assignment 05: non-maximum suppression and box voting (chapter 07, torchvision.ops.nms,
tinylib.hr.detect.nms_vote)."""

from cells import Spec, answer, md, readonly, tests

SPEC = Spec("05_nms", "nms", [
    md("""
    # Assignment 05 — Non-maximum suppression and box voting

    A dense detector fires many times on one face: every template and every pyramid level
    whose window overlaps it scores high. *Finding Tiny Faces* keeps one box per face with
    greedy **non-maximum suppression** (NMS) at IoU 0.3, and the released code refines each
    kept box by **box voting**. tinylib calls `torchvision.ops.nms` and adds voting in
    `tinylib.hr.detect.nms_vote`. Here you write both in `numpy`.

    Boxes are `(x1, y1, x2, y2)` floats in tinylib's convention: width `x2 - x1` (no `+1`).
    Points: 2 + 3 + 3 = 8.
    """, "intro"),
    readonly("setup", """
    import numpy as np
    """),
    md("""
    ## Task 1 — IoU (2 points)

    `box_iou(a, b)`: pairwise IoU of `(N, 4)` and `(M, 4)` boxes, shape `(N, M)`; an empty
    overlap gives 0.
    """, "task1"),
    answer("box_iou", """
    def box_iou(a, b):
        \"\"\"Pairwise IoU of xyxy boxes (width ``x2 - x1``), shape ``(N, M)``.\"\"\"
        ### BEGIN SOLUTION
        a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        inter = np.clip(rb - lt, 0, None).prod(axis=2)
        return inter / (area_a[:, None] + area_b[None, :] - inter)
        ### END SOLUTION
    """),
    tests("test_box_iou", 2, """
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert iou.shape == (1, 3)
    assert np.allclose(iou[0], [1.0, 1 / 3, 0.0])
    ### BEGIN HIDDEN TESTS
    import torch
    import torchvision
    rng = np.random.default_rng(14)
    for n, m in [(1, 1), (5, 8), (40, 30)]:
        a = rng.uniform(0, 100, (n, 2)); a = np.c_[a, a + rng.uniform(1, 40, (n, 2))]
        b = rng.uniform(0, 100, (m, 2)); b = np.c_[b, b + rng.uniform(1, 40, (m, 2))]
        ref = torchvision.ops.box_iou(torch.tensor(a), torch.tensor(b)).numpy()
        assert np.allclose(box_iou(a, b), ref)
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 2 — greedy NMS (3 points)

    `nms(boxes, scores, iou_threshold)`: repeatedly keep the highest-scoring box left and
    discard every remaining box whose IoU with it is **greater than** `iou_threshold`.
    Return the indices of the kept boxes (into `boxes`) as an integer array, in decreasing
    order of score — exactly what `torchvision.ops.nms` returns.
    """, "task2"),
    answer("nms", """
    def nms(boxes, scores, iou_threshold):
        \"\"\"Greedy NMS; indices of the kept boxes by decreasing score.\"\"\"
        ### BEGIN SOLUTION
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        iou = box_iou(boxes, boxes)
        suppressed = np.zeros(len(boxes), dtype=bool)
        keep = []
        for i in order:
            if suppressed[i]:
                continue
            keep.append(i)
            suppressed |= iou[i] > iou_threshold
        return np.array(keep, dtype=np.int64)
        ### END SOLUTION
    """),
    tests("test_nms", 3, """
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]])
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    keep = nms(boxes, scores, 0.5)
    assert keep.tolist() == [3, 2]
    assert nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]
    assert len(nms(np.zeros((0, 4)), np.zeros(0), 0.3)) == 0
    ### BEGIN HIDDEN TESTS
    import torch
    import torchvision
    rng = np.random.default_rng(15)
    for trial in range(12):
        n = int(rng.integers(1, 120))
        centres = rng.uniform(0, 200, (n, 2)) if trial % 3 == 0 else \\
            rng.uniform(0, 200, (max(n // 8, 1), 2))[rng.integers(0, max(n // 8, 1), n)]
        c = centres + rng.normal(0, 4, (n, 2))
        half = rng.uniform(4, 20, (n, 2))
        b, s = np.c_[c - half, c + half], rng.permutation(n) / n + 0.01
        for thr in (0.3, 0.5, 0.7):
            ref = torchvision.ops.nms(torch.tensor(b), torch.tensor(s), thr).numpy()
            assert np.array_equal(nms(b, s, thr), ref), (trial, thr)
    # IoU exactly at the threshold: kept (only IoU > threshold suppresses)
    b, s = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], float), np.array([0.9, 0.8])
    ref = torchvision.ops.nms(torch.tensor(b), torch.tensor(s), 0.5).numpy()
    assert nms(b, s, 0.5).tolist() == ref.tolist() == [0, 1]
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 3 — box voting (3 points)

    `nms_vote(boxes, scores, nms_iou=0.3, vote_iou=0.5)`: run your `nms`, then replace each
    kept box by the **score-weighted mean** of all candidate boxes — kept or suppressed,
    itself included — whose IoU with it is at least `vote_iou`; its score stays. Return
    `(boxes (K, 4), scores (K,))` in the order of `nms` (scores are positive).
    """, "task3"),
    answer("nms_vote", """
    def nms_vote(boxes, scores, nms_iou=0.3, vote_iou=0.5):
        \"\"\"NMS, then box voting; returns ``(boxes (K, 4), scores (K,))``.\"\"\"
        ### BEGIN SOLUTION
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        keep = nms(boxes, scores, nms_iou)
        if len(keep) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        w = (box_iou(boxes[keep], boxes) >= vote_iou) * scores[None, :]
        return (w @ boxes) / w.sum(axis=1, keepdims=True), scores[keep]
        ### END SOLUTION
    """),
    tests("test_nms_vote", 3, """
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.6, 0.2, 0.9])
    vb, vs = nms_vote(boxes, scores, nms_iou=0.3, vote_iou=0.5)
    assert vs.tolist() == [0.9, 0.6]
    assert np.allclose(vb[0], [50, 50, 60, 60])
    assert np.allclose(vb[1], [0.5, 0, 10.5, 10])        # (0.6 * box0 + 0.2 * box1) / 0.8
    ### BEGIN HIDDEN TESTS
    from tinylib.hr.detect import nms_vote as reference
    rng = np.random.default_rng(16)
    for trial in range(10):
        n = int(rng.integers(1, 80))
        centres = rng.uniform(0, 150, (max(n // 6, 1), 2))[rng.integers(0, max(n // 6, 1), n)]
        c = centres + rng.normal(0, 3, (n, 2))
        half = rng.uniform(5, 15, (n, 2))
        b, s = np.c_[c - half, c + half], rng.permutation(n) / n + 0.01
        for nms_iou, vote_iou in [(0.3, 0.5), (0.4, 0.3)]:
            rb, rs = reference(b, s, nms_iou, vote_iou=vote_iou)
            gb, gs = nms_vote(b, s, nms_iou, vote_iou)
            assert np.allclose(gb, rb, atol=1e-3) and np.allclose(gs, rs, atol=1e-6), trial
    ### END HIDDEN TESTS
    """),
    md("""
    ## Going further (not graded)

    * NMS at 0.3 suppresses true faces in a crowd. Count how many of WIDER's *hard* faces
      have a neighbour with IoU above 0.3 (`tinylib.data.widerface.load_eval_gt`).
    * Chapter 07 (`notebooks/07_hr_detector.ipynb`) measures what voting adds on real photos.
    """, "further"),
])
