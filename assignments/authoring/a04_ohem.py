"""Assignment 04: online hard-example mining (chapter 07, tinylib.hr.targets)."""

from cells import Spec, answer, md, readonly, tests

SPEC = Spec("04_ohem", "ohem", [
    md("""
    # Assignment 04 — Online hard-example mining (OHEM)

    The HR detector of *Finding Tiny Faces* scores every template at every location of a
    stride-8 heatmap: a 500 x 500 training crop gives tens of thousands of labels per image,
    `1` (positive), `0` (negative) or `-1` (ignored), and almost all are easy negatives.
    Training follows the paper's recipe (supplementary): per image, locations whose
    classification loss is below `0.03` are dropped as *easy*, then at most 128 positives and
    128 negatives are sampled at random among the rest; the classification loss is the mean
    over the sampled locations.

    tinylib does this on the GPU in `tinylib.hr.targets` (`classification_loss`,
    `ohem_sample`), used by `HRDetector.loss`. Here you write it in `numpy`.
    Points: 2 + 4 + 2 = 8.
    """, "intro"),
    readonly("setup", """
    import numpy as np

    POSITIVE, NEGATIVE, IGNORE = 1, 0, -1
    """),
    md("""
    ## Task 1 — the per-location logistic loss (2 points)

    `logistic_loss(logits, labels)`: for each element, the binary cross-entropy of
    `sigmoid(logit)` against the target `1` (positive) or `0` (negative), and `0` where the
    label is `IGNORE`. Arrays of any (equal) shape. It must stay finite for logits of
    magnitude 1,000 (`np.logaddexp(0, x) = log(1 + e^x)` helps).
    """, "task1"),
    answer("logistic_loss", """
    def logistic_loss(logits, labels):
        \"\"\"Per-element logistic loss; 0 for ignored labels.\"\"\"
        ### BEGIN SOLUTION
        x = np.asarray(logits, dtype=np.float64)
        y = np.asarray(labels)
        loss = np.where(y == POSITIVE, np.logaddexp(0.0, -x), np.logaddexp(0.0, x))
        return np.where(y == IGNORE, 0.0, loss)
        ### END SOLUTION
    """),
    tests("test_logistic_loss", 2, """
    loss = logistic_loss(np.array([0.0, 0.0, 3.0, 5.0]), np.array([1, 0, -1, 1]))
    assert loss.shape == (4,)
    assert np.allclose(loss[:3], [np.log(2), np.log(2), 0.0])
    assert 0 < loss[3] < 0.01
    assert np.isfinite(logistic_loss(np.array([1000.0, -1000.0]), np.array([0, 1]))).all()
    ### BEGIN HIDDEN TESTS
    import torch
    from tinylib.hr import targets as T
    rng = np.random.default_rng(11)
    for shape in [(7,), (2, 3, 5, 4), (1, 25, 16, 16)]:
        x = rng.normal(0, 6, shape)
        y = rng.integers(-1, 2, shape)
        ref = T.classification_loss(torch.tensor(x), torch.tensor(y)).numpy()
        assert np.allclose(logistic_loss(x, y), ref, atol=1e-10), shape
    x = np.array([-1000.0, 1000.0, -50.0, 50.0])
    y = np.array([0, 1, 1, 0])
    ref = T.classification_loss(torch.tensor(x), torch.tensor(y)).numpy()
    assert np.allclose(logistic_loss(x, y), ref)
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 2 — hard mining and balanced sampling (4 points)

    `ohem_mask(loss, labels, threshold=0.03, num_pos=128, num_neg=128, rng=None)`:
    `loss` and `labels` have shape `(B, ...)` — `B` images. Return a boolean mask of the same
    shape, `True` for the selected locations. Per image:

    1. *hard* locations are those with `loss >= threshold` (`threshold <= 0` switches mining
       off: every location is hard);
    2. among the hard positives keep all if there are at most `num_pos`, else `num_pos` of
       them chosen **uniformly at random** (`rng`, a `numpy.random.Generator`; make one if
       `None`); the same for the negatives with `num_neg`; a negative limit (`-1`) keeps all;
    3. ignored locations are never selected.
    """, "task2"),
    answer("ohem_mask", """
    def ohem_mask(loss, labels, threshold=0.03, num_pos=128, num_neg=128, rng=None):
        \"\"\"OHEM + balanced sampling per image; a boolean mask shaped like ``labels``.\"\"\"
        ### BEGIN SOLUTION
        rng = np.random.default_rng() if rng is None else rng
        labels = np.asarray(labels)
        n_img = labels.shape[0]
        flat_loss = np.asarray(loss, dtype=np.float64).reshape(n_img, -1)
        flat_lab = labels.reshape(n_img, -1)
        hard = flat_loss >= threshold if threshold > 0 else np.ones(flat_lab.shape, dtype=bool)
        mask = np.zeros(flat_lab.shape, dtype=bool)
        for b in range(n_img):
            for value, limit in ((POSITIVE, num_pos), (NEGATIVE, num_neg)):
                cand = np.flatnonzero(hard[b] & (flat_lab[b] == value))
                if 0 <= limit < len(cand):
                    cand = rng.choice(cand, size=limit, replace=False)
                mask[b, cand] = True
        return mask.reshape(labels.shape)
        ### END SOLUTION
    """),
    tests("test_ohem_mask", 4, """
    loss = np.array([[0.5, 0.01, 0.2, 0.9, 0.04, 0.3]])
    labels = np.array([[1, 1, 0, -1, 0, 0]])
    m = ohem_mask(loss, labels, num_pos=5, num_neg=5)
    assert m.dtype == bool and m.shape == labels.shape
    assert m.tolist() == [[True, False, True, False, True, True]]
    m = ohem_mask(loss, labels, num_pos=5, num_neg=1, rng=np.random.default_rng(0))
    assert m[0, [0, 2, 4, 5]].sum() == 2 and m[0, 0]
    ### BEGIN HIDDEN TESTS
    import torch
    from tinylib.hr import targets as T

    def ref(loss, labels, **kw):
        return T.ohem_sample(torch.tensor(loss), torch.tensor(labels), **kw).numpy()

    rng = np.random.default_rng(12)
    for trial in range(10):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 6)), 9, 11)
        loss = rng.exponential(0.1, shape)
        labels = rng.choice([-1, 0, 1], shape, p=[0.2, 0.6, 0.2])
        # limits that do not bind, mining off, keep-all: the selection is the reference's
        for kw in [dict(threshold=0.03, num_pos=10**6, num_neg=10**6),
                   dict(threshold=0.0, num_pos=10**6, num_neg=10**6),
                   dict(threshold=0.1, num_pos=-1, num_neg=-1)]:
            assert np.array_equal(ohem_mask(loss, labels, rng=rng, **kw), ref(loss, labels, **kw))
        # binding limits: the same counts per image and class, only hard locations
        kw = dict(threshold=0.05, num_pos=7, num_neg=13)
        got, want = ohem_mask(loss, labels, rng=rng, **kw), ref(loss, labels, **kw)
        assert not (got & ((labels == -1) | (loss < 0.05))).any()
        for value in (0, 1):
            n_got = (got & (labels == value)).reshape(shape[0], -1).sum(1)
            n_want = (want & (labels == value)).reshape(shape[0], -1).sum(1)
            assert np.array_equal(n_got, n_want), (trial, value)
    # a loss exactly at the threshold is hard
    loss, labels = np.array([[0.03, 0.03, 0.0299]]), np.array([[1, 0, 0]])
    assert ohem_mask(loss, labels).tolist() == ref(loss, labels).tolist() == [[True, True, False]]
    # uniformly at random: every candidate gets picked over many draws
    loss, labels = np.ones((1, 40)), np.zeros((1, 40), int)
    picks = sum(ohem_mask(loss, labels, num_neg=4, rng=np.random.default_rng(s)) for s in range(200))
    assert picks.min() > 0 and picks.sum() == 800
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 3 — the sampled loss (2 points)

    `ohem_loss(logits, labels, mask)`: the classification loss of the detector, the mean of
    `logistic_loss` over the selected locations (`0` when none is selected).
    """, "task3"),
    answer("ohem_loss", """
    def ohem_loss(logits, labels, mask):
        \"\"\"Mean logistic loss over the selected locations (0 if none).\"\"\"
        ### BEGIN SOLUTION
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return 0.0
        return float(logistic_loss(logits, labels)[mask].mean())
        ### END SOLUTION
    """),
    tests("test_ohem_loss", 2, """
    logits = np.array([[0.0, 2.0, -2.0]])
    labels = np.array([[1, 0, 0]])
    assert np.isclose(ohem_loss(logits, labels, np.array([[True, False, False]])), np.log(2))
    assert ohem_loss(logits, labels, np.zeros((1, 3), bool)) == 0.0
    ### BEGIN HIDDEN TESTS
    import torch
    from tinylib.hr import targets as T
    rng = np.random.default_rng(13)
    for trial in range(5):
        shape = (2, 4, 8, 8)
        x, y = rng.normal(0, 3, shape), rng.choice([-1, 0, 1], shape)
        el = T.classification_loss(torch.tensor(x), torch.tensor(y))
        mask = T.ohem_sample(el, torch.tensor(y), generator=torch.Generator().manual_seed(trial),
                             num_pos=5, num_neg=20)
        want = float((el * mask).sum() / mask.sum().clamp(min=1))   # HRDetector.loss
        assert np.isclose(ohem_loss(x, y, mask.numpy()), want), trial
    ### END HIDDEN TESTS
    """),
    md("""
    ## Going further (not graded)

    * With `balance_classes=True`, tinylib's `HRDetector.loss` averages positives and
      negatives separately. On a crop with 3 positives and 128 negatives, how much more does
      each positive weigh than with the paper's mean?
    * Chapter 07 (`notebooks/07_hr_detector.ipynb`) trains the detector with this loss.
    """, "further"),
])
