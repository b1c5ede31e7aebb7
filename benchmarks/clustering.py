"""Benchmark: weighted k-medoids of WIDER FACE train face shapes (K = 25) vs a plain k-medoids.

    TINYLIB_DATA=../shared/data python benchmarks/clustering.py [--subsample 4000] [--restarts 4]

``tinylib.analysis.clustering.kmedoids_shapes`` runs on the ~11k distinct ``(h, w)`` shapes of
all ~159k faces, weighted by their counts, without any N x N matrix. The plain baseline is
FasterPAM from the ``kmedoids`` package on a full dissimilarity matrix, which for 159k faces
would need 159k^2 x 8 bytes = ~200 GB; it is therefore run on a random subsample and its time
extrapolated with the N^2 cost of building the matrix and of each swap pass (a lower bound).
Both medoid sets are scored on all faces. Goal: ours under 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinylib.analysis import clustering, scales
from tinylib.data import widerface


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--subsample", type=int, default=4000,
                    help="faces given to the plain k-medoids (its matrix is subsample^2 x 8 bytes)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import kmedoids  # optional (the dev extra): the plain k-medoids baseline

    faces, n_bad = scales.wider_valid_faces(widerface.load_faces("train"))
    shapes = faces[["h", "w"]].to_numpy(float)
    uniq, counts = clustering.unique_shapes(shapes)
    n = len(shapes)
    print(f"WIDER train: {n:,} faces ({n_bad} degenerate excluded), {len(uniq):,} distinct shapes")

    t0 = time.perf_counter()
    ours = clustering.kmedoids_shapes(shapes, args.k, n_restarts=args.restarts, seed=args.seed)
    t_ours = time.perf_counter() - t0
    print(f"ours   (weighted unique shapes, {args.restarts} restarts + swaps): {t_ours:6.2f} s, "
          f"objective {ours.objective:.4f} on all faces")

    rng = np.random.default_rng(args.seed)
    m = min(args.subsample, n)
    sub = shapes[rng.choice(n, size=m, replace=False)]
    t0 = time.perf_counter()
    diss = clustering.jaccard_distance(sub, sub)
    t_matrix = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = kmedoids.fasterpam(diss, args.k, init="build", random_state=args.seed, n_cpu=2)
    t_pam = time.perf_counter() - t0
    med = sub[np.asarray(res.medoids)]
    plain_obj = float(counts @ clustering.jaccard_distance(uniq, med).min(1)) / counts.sum()
    t_plain = t_matrix + t_pam
    scale = (n / m) ** 2
    print(f"plain  (kmedoids.fasterpam, {m:,}-face subsample): matrix {t_matrix:.2f} s + "
          f"FasterPAM {t_pam:.2f} s = {t_plain:.2f} s, objective {plain_obj:.4f} on all faces")
    print(f"plain on all {n:,} faces: matrix {n * n * 8 / 1e9:,.0f} GB; time extrapolated "
          f"x(N/n)^2 = {t_plain * scale:,.0f} s (lower bound)")
    print(f"ratio  plain(all faces, extrapolated) / ours = {t_plain * scale / t_ours:,.0f}x; "
          f"plain(subsample) / ours = {t_plain / t_ours:.2f}x")
    print(f"goal   ours < 10 s: {'met' if t_ours < 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
