"""Assignment 01: Jaccard k-medoids on box shapes (chapter 03, tinylib.analysis.clustering)."""

from cells import Spec, answer, md, readonly, tests

SPEC = Spec("01_kmedoids", "kmedoids", [
    md("""
    # Assignment 01 — Jaccard k-medoids on face shapes

    *Finding Tiny Faces* does not pick its 25 templates by hand: it clusters the **shapes**
    `(h, w)` of the WIDER FACE training faces with k-medoids under the distance of Eq. 1,

    $$d(s_1, s_2) = 1 - J(s_1, s_2), \\qquad
      J = \\frac{\\min(h_1, h_2)\\,\\min(w_1, w_2)}{h_1 w_1 + h_2 w_2 - \\min(h_1, h_2)\\,\\min(w_1, w_2)},$$

    the IoU of two boxes with these shapes sharing a corner. Chapter 03 of the workbook runs
    `tinylib.analysis.clustering.kmedoids_shapes` on all 159k faces; here you build the
    pieces yourself and the autograder checks them against tinylib's implementation.

    Write your code where it says `YOUR CODE HERE` (delete the `raise NotImplementedError()`).
    The cells with `assert`s are the tests: the visible ones are a first check, the grader
    runs more. Use `numpy` only (no loops over shapes needed). Points: 2 + 1 + 2 + 3 = 8.
    """, "intro"),
    readonly("setup", """
    import numpy as np
    """),
    md("""
    ## Task 1 — the Eq. 1 distance (2 points)

    `shape_distance(a_hw, b_hw)` takes two arrays of shapes, `(N, 2)` and `(M, 2)` of
    `(h, w)`, and returns the `(N, M)` matrix of distances `1 - J`.
    """, "task1"),
    answer("shape_distance", """
    def shape_distance(a_hw, b_hw):
        \"\"\"Pairwise Eq. 1 distance ``1 - J`` between ``(h, w)`` shapes, shape ``(N, M)``.\"\"\"
        ### BEGIN SOLUTION
        a = np.asarray(a_hw, dtype=np.float64).reshape(-1, 2)
        b = np.asarray(b_hw, dtype=np.float64).reshape(-1, 2)
        inter = np.minimum(a[:, None, 0], b[None, :, 0]) * np.minimum(a[:, None, 1], b[None, :, 1])
        union = (a[:, 0] * a[:, 1])[:, None] + (b[:, 0] * b[:, 1])[None, :] - inter
        return 1.0 - inter / union
        ### END SOLUTION
    """),
    tests("test_shape_distance", 2, """
    d = shape_distance([[10, 10], [10, 20]], [[10, 10], [20, 20], [20, 10]])
    assert d.shape == (2, 3)
    assert np.allclose(d[0], [0.0, 0.75, 0.5])             # same shape, 4x the area, half
    assert np.isclose(d[1, 2], 1 - 100 / 300)              # 10x20 vs 20x10 share a 10x10 corner
    ### BEGIN HIDDEN TESTS
    from tinylib.analysis import clustering
    rng = np.random.default_rng(1)
    for n, m in [(1, 1), (7, 5), (40, 25)]:
        a, b = rng.uniform(1, 300, (n, 2)), rng.uniform(1, 300, (m, 2))
        assert np.allclose(shape_distance(a, b), clustering.jaccard_distance(a, b))
        # scale invariance: the distance only sees the ratios of the sides
        assert np.allclose(shape_distance(3.5 * a, 3.5 * b), clustering.jaccard_distance(a, b))
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 2 — tiny shapes (1 point)

    The released template file is called `..._min10x10`: faces smaller than 10 px were left
    out of the clustering. `too_small(shapes_hw, min_hw=(10, 10))` returns a boolean mask,
    `True` for the shapes with `h < min_h` **or** `w < min_w`.

    With the real annotations (`TINYLIB_DATA`), count them among the valid WIDER FACE train
    faces — `tinylib.data.widerface.load_faces("train")`, then
    `tinylib.analysis.scales.wider_valid_faces` — once with `min_hw=(10, 10)` and once for the
    faces under 10 px *high* (`min_hw=(10, 0)`). The grader knows both numbers.
    """, "task2"),
    answer("too_small", """
    def too_small(shapes_hw, min_hw=(10, 10)):
        \"\"\"Boolean mask of the ``(h, w)`` shapes with ``h < min_h`` or ``w < min_w``.\"\"\"
        ### BEGIN SOLUTION
        s = np.asarray(shapes_hw, dtype=np.float64).reshape(-1, 2)
        return (s[:, 0] < min_hw[0]) | (s[:, 1] < min_hw[1])
        ### END SOLUTION
    """),
    tests("test_too_small", 1, """
    mask = too_small([[9, 30], [30, 9], [10, 10], [25, 12]])
    assert mask.dtype == bool and mask.tolist() == [True, True, False, False]
    assert too_small([[9, 30], [30, 9]], min_hw=(10, 0)).tolist() == [True, False]
    ### BEGIN HIDDEN TESTS
    rng = np.random.default_rng(2)
    s = rng.integers(1, 40, (500, 2))
    for min_hw in [(10, 10), (10, 0), (0, 7), (20, 15)]:
        expected = (s[:, 0] < min_hw[0]) | (s[:, 1] < min_hw[1])
        assert np.array_equal(too_small(s, min_hw), expected), min_hw
    # known answers on the real WIDER FACE train annotations, when they are present
    from tinylib.analysis import scales
    from tinylib.data import sources, widerface
    src = sources.choose(sources.WIDER_ANNOTATIONS, what="WIDER FACE annotations", fallback=None)
    if src.is_real:
        faces, _ = scales.wider_valid_faces(widerface.load_faces("train", root=src.root))
        shapes = faces[["h", "w"]].to_numpy()
        assert len(shapes) == 159393
        assert int(too_small(shapes, (10, 10)).sum()) == 43955
        assert int(too_small(shapes, (10, 0)).sum()) == 26348
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 3 — the medoid of a set (2 points)

    The medoid of a set of shapes is the member with the smallest (weighted) sum of
    distances to all members. `best_medoid(shapes_hw, weights=None)` returns it as a
    `(2,)` array `(h, w)`; `weights` (one per shape, default all 1) multiply the distances.
    On a tie take the first such member.
    """, "task3"),
    answer("best_medoid", """
    def best_medoid(shapes_hw, weights=None):
        \"\"\"The member of ``shapes_hw`` with the least weighted sum of Eq. 1 distances.\"\"\"
        ### BEGIN SOLUTION
        s = np.asarray(shapes_hw, dtype=np.float64).reshape(-1, 2)
        w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
        cost = shape_distance(s, s) @ w
        return s[int(np.argmin(cost))]
        ### END SOLUTION
    """),
    tests("test_best_medoid", 2, """
    shapes = np.array([[10, 10], [12, 11], [40, 40]])
    assert np.array_equal(best_medoid(shapes), [12, 11])
    assert np.array_equal(best_medoid(shapes, weights=[1, 1, 10]), [40, 40])
    ### BEGIN HIDDEN TESTS
    from tinylib.analysis import clustering
    rng = np.random.default_rng(3)
    for n in (1, 2, 9, 60, 200):
        s = rng.uniform(5, 150, (n, 2))
        w = rng.uniform(0.2, 5.0, n)
        for weights in (None, w):
            ww = np.ones(n) if weights is None else weights
            ref = s[np.argmin(clustering.jaccard_distance(s, s) @ ww)]
            assert np.allclose(best_medoid(s, weights), ref), (n, weights is None)
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 4 — k-medoids by Voronoi iteration (3 points)

    `kmedoids(shapes_hw, init_hw, max_iter=100)` starts from the `K` medoids `init_hw`
    (`(K, 2)`) and repeats until the medoids no longer change (at most `max_iter` times):

    1. assign every shape to its nearest medoid (the first one on ties);
    2. replace each medoid by the `best_medoid` of the shapes assigned to it (a medoid with
       no shapes stays where it is).

    It returns `(medoids, objective)`: the final `(K, 2)` medoids in the order of `init_hw`
    and the **mean** distance of the shapes to their nearest medoid. (tinylib's
    `kmedoids_shapes` adds k-medoids++ seeding, restarts and a PAM swap phase on top.)
    """, "task4"),
    answer("kmedoids", """
    def kmedoids(shapes_hw, init_hw, max_iter=100):
        \"\"\"Voronoi-iteration k-medoids from ``init_hw``; returns ``(medoids, objective)``.\"\"\"
        ### BEGIN SOLUTION
        s = np.asarray(shapes_hw, dtype=np.float64).reshape(-1, 2)
        med = np.asarray(init_hw, dtype=np.float64).reshape(-1, 2).copy()
        for _ in range(max_iter):
            labels = np.argmin(shape_distance(s, med), axis=1)
            new = med.copy()
            for k in range(len(med)):
                members = s[labels == k]
                if len(members):
                    new[k] = best_medoid(members)
            if np.array_equal(new, med):
                break
            med = new
        return med, float(shape_distance(s, med).min(axis=1).mean())
        ### END SOLUTION
    """),
    tests("test_kmedoids", 3, """
    shapes = np.array([[10, 10], [11, 10], [10, 12], [50, 40], [52, 41], [49, 45]])
    med, obj = kmedoids(shapes, init_hw=shapes[[0, 1]])
    assert med.shape == (2, 2)
    assert sorted(map(tuple, med)) == [(10.0, 10.0), (50.0, 40.0)]
    assert 0 < obj < 0.2
    ### BEGIN HIDDEN TESTS
    from tinylib.analysis import clustering
    rng = np.random.default_rng(4)
    centres = np.array([[10, 8], [40, 30], [120, 100]])
    for trial in range(3):
        s = np.concatenate([c * np.exp(rng.normal(0, 0.08, (rng.integers(10, 60), 2)))
                            for c in centres])
        init = np.array([s[s[:, 0] < 20][0], s[(s[:, 0] > 20) & (s[:, 0] < 70)][0], s[-1]])
        med, obj = kmedoids(s, init)
        ref = clustering.kmedoids_shapes(s, 3)
        # well separated groups: the same medoids as tinylib's k-medoids (in init order)
        assert np.allclose(med, ref.medoids[::-1]), trial
        assert np.isclose(obj, ref.objective), trial
    # from any start: a fixed point whose objective is the reference distance
    s = rng.uniform(5, 200, (150, 2))
    init = s[:4]
    med, obj = kmedoids(s, init)
    d = clustering.jaccard_distance(s, med)
    assert np.isclose(obj, d.min(1).mean())
    assert obj <= clustering.jaccard_distance(s, init).min(1).mean() + 1e-12
    labels = d.argmin(1)
    for k in range(len(med)):
        members = s[labels == k]
        if len(members):
            cost = clustering.jaccard_distance(members, members).sum(1)
            assert np.isclose(clustering.jaccard_distance(members, med[k:k + 1]).sum(), cost.min())
    ### END HIDDEN TESTS
    """),
    md("""
    ## Going further (not graded)

    * Run your `kmedoids` on the real train shapes with `too_small(...)` removed, from the
      25 medoids of `kmedoids_shapes`: does it move them? (Use `clustering.unique_shapes`
      and weights — 159k shapes are only ~11k distinct ones.)
    * Chapter 03 (`notebooks/03_templates.ipynb`) compares the medoids with the authors'.
    """, "further"),
])
