"""K-medoids of box shapes: exact optimum on small sets, weights = duplicates, matching."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from tinylib.analysis import clustering as C
from tinylib.boxes import shape_jaccard


def _brute_force(shapes, k):
    uniq, w = C.unique_shapes(shapes)
    d = C.jaccard_distance(uniq, uniq)
    best = min(itertools.combinations(range(len(uniq)), k),
               key=lambda m: float(w @ d[:, list(m)].min(1)))
    return float(w @ d[:, list(best)].min(1)) / w.sum(), uniq[list(best)]


def test_distance_is_eq1():
    a = np.array([[10.0, 20.0]])
    b = np.array([[20.0, 10.0]])
    # corners aligned: intersection 10x10 = 100, union 200 + 200 - 100 = 300
    assert C.jaccard_distance(a, b)[0, 0] == pytest.approx(1 - 100 / 300)
    assert C._dist(a, b)[0, 0] == pytest.approx(1 - shape_jaccard(a, b)[0, 0])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["pam", "alternate"])
def test_finds_known_optimum_on_small_sets(seed, method):
    rng = np.random.default_rng(seed)
    centres = np.array([[8, 6], [30, 24], [120, 90]], dtype=float)
    shapes = np.concatenate([np.round(c * rng.uniform(0.85, 1.15, size=(12, 2))) for c in centres])
    opt, opt_medoids = _brute_force(shapes, 3)
    res = C.kmedoids_shapes(shapes, 3, method=method, n_restarts=3, seed=seed)
    assert res.objective == pytest.approx(opt, abs=1e-12)
    assert len(res.medoids) == 3


def test_pam_reaches_brute_force_optimum_k4_random():
    rng = np.random.default_rng(5)
    shapes = np.round(np.exp(rng.uniform(np.log(4), np.log(200), size=(40, 2))))
    opt, _ = _brute_force(shapes, 4)
    res = C.kmedoids_shapes(shapes, 4, n_restarts=4, max_passes=10)
    assert res.objective == pytest.approx(opt, abs=1e-9)


def test_one_medoid_is_the_exact_1_medoid_without_nan_warnings():
    """k = 1 has no second-nearest medoid: the swap gains must stay finite (they were
    inf - inf = NaN, so no swap ever happened from a bad start)."""
    rng = np.random.default_rng(3)
    shapes = np.round(np.exp(rng.uniform(np.log(4), np.log(200), size=(30, 2))))
    opt, opt_medoid = _brute_force(shapes, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = C.kmedoids_shapes(shapes, 1, n_restarts=1, seed=0)
    assert res.objective == pytest.approx(opt, abs=1e-12)
    assert np.array_equal(res.medoids, opt_medoid)


def test_weights_equal_duplicates():
    shapes = np.array([[10, 10], [10, 10], [10, 10], [40, 30], [12, 9], [41, 33]], float)
    uniq, counts = C.unique_shapes(shapes)
    a = C.kmedoids_shapes(shapes, 2, n_restarts=2)
    b = C.kmedoids_shapes(uniq, 2, weights=counts, n_restarts=2)
    assert a.objective == pytest.approx(b.objective)
    np.testing.assert_array_equal(a.medoids, b.medoids)


def test_medoids_are_input_shapes_and_assign():
    shapes = np.array([[5, 4], [6, 5], [50, 40], [55, 44]], float)
    res = C.kmedoids_shapes(shapes, 2, n_restarts=1)
    assert {tuple(m) for m in res.medoids} <= {tuple(s) for s in shapes}
    lab = res.assign(shapes)
    assert lab[0] == lab[1] and lab[2] == lab[3] and lab[0] != lab[2]


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        C.kmedoids_shapes(np.zeros((3, 3)), 2)
    with pytest.raises(ValueError, match="degenerate"):
        C.kmedoids_shapes(np.array([[1, 0], [2, 2]]), 1)
    with pytest.raises(ValueError, match="distinct shapes 2"):
        C.kmedoids_shapes(np.array([[1, 1], [2, 2]]), 3)


def test_match_templates_recovers_permutation():
    rng = np.random.default_rng(0)
    paper = np.exp(rng.uniform(1, 5, size=(10, 2)))
    perm = rng.permutation(10)
    df = C.match_templates(paper[perm], paper)
    assert df["distance"].max() == pytest.approx(0, abs=1e-12)
    np.testing.assert_array_equal(perm[df["ours_idx"].to_numpy()], df["paper_idx"].to_numpy())


def test_resolution_rule_and_count_within():
    np.testing.assert_array_equal(C.resolution_for_height([10, 39.9, 40, 140, 141]),
                                  [2, 2, 1, 1, 0.5])
    t = C.apply_resolution_rule([[20, 16], [300, 240]])
    assert list(t["h_built"]) == [40, 150]
    shapes = np.array([[10, 10], [10, 10], [11, 10], [100, 100]], float)
    np.testing.assert_array_equal(C.count_within(shapes, [[10, 10]], 0.5), [3])


def test_hr_template_types_on_released_set(real_data):
    from tinylib.data.templates import load_templates

    types = C.hr_template_types(load_templates(scaled=True))
    idx = {t: [i + 1 for i in range(25) if types[i] == t] for t in ("A", "B")}
    assert idx["A"] == list(range(5, 13)) and idx["B"] == list(range(19, 26))
