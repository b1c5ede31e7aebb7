"""The bottom-heavy comparison's tables: runs -> per-backbone summaries, deltas against the seed
spread, AP by face size, tiny-image pre-training and the TinyPerson-protocol run.

The runs behind them (``tools/train_frcnn_wider.py``: Faster R-CNN-FPN over ResNet-50 and
BH-ResNet50, from scratch with seeds 0 and 1, from tiny-image pre-training with seed 0, and on
the tiny-person world) are too large to ship (a ResNet-50 detector is ~50 MB in fp16); what
ships is their measured numbers, collected by ``tools/collect_frcnn_results.py`` into
``tinylib/weights/bh_*.csv`` (:data:`RESULT_FILES`), which chapter 08 reads with
:func:`load_results` through :mod:`tinylib.measured`, so that each table's provenance (command,
commit, images) comes along into the scorecard notes. Every number there is on the **WIDER val
subset** or on the tiny-person world, never the benchmarks' full test sets. A run is scored on
all the subset's photos and on each half of its tuning/test split apart (column ``half``:
``all``, ``tuning``, ``test``); the chapter reports the test half (:func:`headline_half`). Tables
without that column are *legacy*: measured before the split existed, on all 374 photos (the
tuning half included), which their provenance says.

:func:`speed_table` times detectors side by side in one run: the same input, the same threads,
warm-up, repetitions interleaved so that a machine's drift hits every model alike.

Seed spread: with two seeds the spread of a backbone is ``max - min`` over its seeds; a delta
between two backbones counts as *outside the seed spread* only when the difference of their
means exceeds the larger of the two spreads (:func:`backbone_delta`). That is a rule of thumb
for two seeds, not a significance test, and the chapter says so.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import measured
from ..config import REPO_DIR
from ..engine.runs import read_metrics, scoring_label

__all__ = ["RESULT_FILES", "RESULT_TABLES", "METRICS", "outside_spread", "collect_runs", "collect_by_size",
           "headline_half", "headline_rows", "scored_on", "spread_words", "seed_words",
           "collect_pretrain", "collect_tinyperson", "load_results", "seed_summary", "backbone_delta",
           "pretrain_gain", "speed_table", "seed_order"]

WEIGHTS_DIR = REPO_DIR / "tinylib" / "weights"
#: the shipped tables (written by tools/collect_frcnn_results.py)
RESULT_FILES = {"runs": "bh_wider_runs.csv", "by_size": "bh_wider_ap_by_size.csv",
                "pretrain": "bh_pretrain.csv", "tinyperson": "bh_tinyperson.csv"}
#: the same as :mod:`tinylib.measured` table names
RESULT_TABLES = {key: name.removesuffix(".csv") for key, name in RESULT_FILES.items()}
#: the WIDER metrics of a run (official settings + faces of at most 20 px)
METRICS = ("easy", "medium", "hard", "le20")
TINY_METRICS = ("tiny", "tiny1", "tiny2", "tiny3", "small")


def outside_spread(delta: float, spread: float, seeds: int) -> bool:
    """The module's rule: a difference counts only with more than one seed and when it exceeds
    the seed spread (the larger ``max - min`` over seeds of the two sides)."""
    return bool(seeds > 1 and abs(delta) > spread)


def spread_words(spread: float, outside: bool | None, seeds: int) -> str:
    """How a number stands against its seed spread, in words for a note: ``"outside the seed
    spread (0.018)"``, ``"inside ..."``, ``"seed spread 0.018"`` (``outside`` None: a mean, not a
    difference) or, with one seed, ``"one seed: no seed spread"``."""
    if seeds < 2:
        return "one seed: no seed spread"
    if outside is None:
        return f"seed spread {spread:.3f}"
    return f"{'outside' if outside else 'inside'} the seed spread ({spread:.3f})"


def seed_words(seeds) -> str:
    """``"seed 0"`` or ``"mean of seeds 0, 1"``."""
    seeds = sorted(int(v) for v in seeds)
    return f"seed {seeds[0]}" if len(seeds) == 1 else "mean of seeds " + ", ".join(map(str, seeds))


def _parse_run(name: str) -> dict:
    """``resnet50_s0`` / ``bh_resnet50_pre_s0`` -> backbone, init, seed."""
    stem, _, seed = name.rpartition("_s")
    if not seed.isdigit():
        raise ValueError(f"run folder {name!r}: expected '<backbone>[_pre]_s<seed>'")
    init = "scratch"
    if stem.endswith("_pre"):
        stem, init = stem[:-4], "pretrained"
    return {"backbone": stem, "init": init, "seed": int(seed)}


def _steps(run: Path) -> int | None:
    hist = run / "history.csv"
    if not hist.is_file():
        return None
    h = pd.read_csv(hist, usecols=["step"])
    return int(h["step"].max()) if len(h) else 0


def collect_runs(out_dir) -> pd.DataFrame:
    """One row per scoring of a WIDER run: ``<out>/<run>/metrics.json`` (its own evaluation:
    ``half`` ``"all"``, and ``"tuning"`` / ``"test"`` from its ``halves``) and
    ``metrics_n<N>.json`` (its detections re-scored on an evenly spread N images, to pair with a
    run evaluated on those N: ``half`` ``"n<N>"``): ``run, backbone, init, seed, half, images,
    easy, medium, hard, le20, faces_le20, steps``."""
    rows = []
    for m in sorted(Path(out_dir).glob("*/metrics*.json")):
        d = read_metrics(m)
        base = {"run": m.parent.name, **_parse_run(m.parent.name)}
        tail = {"faces_le20": int(d["faces"]["le20"]), "steps": _steps(m.parent)}
        half = scoring_label(m)
        rows.append({**base, "half": half, "images": int(d["images"]), **{k: float(d[k]) for k in METRICS},
                     **tail})
        for h, v in d.get("halves", {}).items():
            rows.append({**base, "half": h, "images": int(v["images"]), **{k: float(v[k]) for k in METRICS},
                         **tail, "faces_le20": None})
    return pd.DataFrame(rows)


def collect_by_size(out_dir) -> pd.DataFrame:
    """AP per face-size bin of every scored run: ``run, backbone, init, seed, half, bin,
    min_size, max_size, faces, ap`` (``half`` ``"all"`` where the run's file has none)."""
    frames = []
    for f in sorted(Path(out_dir).glob("*/ap_by_size.csv")):
        df = pd.read_csv(f)
        half = df.pop("half") if "half" in df.columns else "all"
        df.insert(0, "half", half)
        for k, v in reversed(_parse_run(f.parent.name).items()):
            df.insert(0, k, v)
        df.insert(0, "run", f.parent.name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def headline_half(frame: pd.DataFrame) -> str:
    """The half a table's headline numbers come from: ``"test"`` when the table has test-half
    rows, else ``"all"`` (a legacy table, scored before the split existed)."""
    if "half" in frame.columns and (frame["half"] == "test").any():
        return "test"
    return "all"


def headline_rows(frame: pd.DataFrame, half: str | None = None) -> pd.DataFrame:
    """The rows of ``half`` (default :func:`headline_half`) of a runs or by-size table; for the
    runs of ``"all"`` (or a legacy table) only the scorings on the most images (not the
    ``metrics_n<N>`` re-scorings)."""
    half = half or headline_half(frame)
    r = frame if "half" not in frame.columns else frame[frame["half"] == half]
    if r.empty:
        have = sorted(set(frame["half"])) if "half" in frame.columns else ["all"]
        raise ValueError(f"no rows of half {half!r} (have {have})")
    if half == "all" and "images" in r.columns:
        r = r[r["images"] == r["images"].max()]
    return r


def scored_on(frame: pd.DataFrame, half: str | None = None) -> str:
    """What the headline rows were scored on, in words, e.g. ``"the test half of the WIDER val
    subset (187 photos)"``."""
    half = half or headline_half(frame)
    n = int(headline_rows(frame, half)["images"].max())
    if half == "all":
        return (f"the whole WIDER val subset ({n} photos), measured before the tuning/test split "
                "(tuning half included)")
    return f"the {half} half of the WIDER val subset ({n} photos)"


def collect_pretrain(out_dir) -> pd.DataFrame:
    """``backbone, source, top1, n_train, n_test, steps`` of each ``pretrain_<backbone>`` run."""
    rows = []
    for f in sorted(Path(out_dir).glob("pretrain_*/result.json")):
        d = json.loads(f.read_text())
        rows.append({k: d[k] for k in ("backbone", "source", "top1", "n_train", "n_test", "steps")})
    return pd.DataFrame(rows, columns=["backbone", "source", "top1", "n_train", "n_test", "steps"])


def collect_tinyperson(out_dir) -> pd.DataFrame:
    """The last evaluation of each ``<backbone>_tinyperson`` run: ``backbone, tiny, tiny1,
    tiny2, tiny3, small, steps`` (mAP at IoU 0.5, TinyPerson's ranges)."""
    rows = []
    for f in sorted(Path(out_dir).glob("*_tinyperson/history.csv")):
        h = pd.read_csv(f)
        cols = [f"ap_{m}" for m in TINY_METRICS]
        done = h.dropna(subset=[c for c in cols if c in h.columns], how="all")
        if not len(done) or not set(cols) <= set(h.columns):
            continue
        last = done.iloc[-1]
        rows.append({"backbone": f.parent.name[: -len("_tinyperson")],
                     **{m: float(last[f"ap_{m}"]) for m in TINY_METRICS}, "steps": int(h["step"].max())})
    return pd.DataFrame(rows, columns=["backbone", *TINY_METRICS, "steps"])


def load_results(directory=None) -> dict[str, measured.Table]:
    """The shipped tables (:data:`RESULT_TABLES`) as :class:`tinylib.measured.Table` (``.frame``
    the DataFrame, ``.provenance`` how it was made) from ``directory`` (default: the folder
    named by ``TINYLIB_BH_RESULTS`` -- e.g. the tables of a GPU run of the full recipes, written
    by ``tools/collect_frcnn_results.py OUT --to DIR`` with their provenance -- else the
    measured tables' folder, ``tinylib/weights``). A missing table or provenance raises
    ``FileNotFoundError`` naming the file and the script that writes it."""
    if directory is None:
        directory = os.environ.get("TINYLIB_BH_RESULTS") or None
    out = {}
    for key, name in RESULT_TABLES.items():
        try:
            out[key] = measured.read_table(name, directory)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{exc} (tools/train_frcnn_wider.py and "
                                    "tools/collect_frcnn_results.py write it)") from None
    return out


def seed_summary(runs: pd.DataFrame, metrics=METRICS, half: str | None = None) -> pd.DataFrame:
    """Per ``(backbone, init)``, over the scorings of ``half`` (:func:`headline_rows`; default
    the test half, or all the photos of a legacy table): the number of seeds, ``images`` and,
    per metric, ``<m>_mean`` and ``<m>_spread`` (max - min over seeds; 0 for one seed)."""
    if runs.empty:
        raise ValueError("no runs to summarise")
    r = headline_rows(runs, half)
    g = r.groupby(["backbone", "init"], sort=False)
    out = g.size().rename("seeds").to_frame()
    for m in metrics:
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_spread"] = g[m].max() - g[m].min()
    out["images"] = int(r["images"].max())
    return out.reset_index()


def backbone_delta(summary: pd.DataFrame, a: str = "bh_resnet50", b: str = "resnet50",
                   init: str = "scratch", metrics=METRICS) -> pd.DataFrame:
    """``a - b`` (mean over seeds) per metric, beside the larger seed spread of the two and
    whether the delta lies outside it (module doc). Rows: metrics."""
    s = summary[summary["init"] == init].set_index("backbone")
    for name in (a, b):
        if name not in s.index:
            raise KeyError(f"no {init} runs of {name!r} (have {sorted(s.index)})")
    rows = []
    for m in metrics:
        d = float(s.at[a, f"{m}_mean"] - s.at[b, f"{m}_mean"])
        spread = float(max(s.at[a, f"{m}_spread"], s.at[b, f"{m}_spread"]))
        seeds = int(min(s.at[a, "seeds"], s.at[b, "seeds"]))
        rows.append({"metric": m, a: float(s.at[a, f"{m}_mean"]), b: float(s.at[b, f"{m}_mean"]),
                     "delta": d, "seed_spread": spread,
                     "outside_spread": outside_spread(d, spread, seeds)})
    return pd.DataFrame(rows).set_index("metric")


def pretrain_gain(runs: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """Per backbone: AP from tiny-image pre-training minus AP from scratch (means over the
    seeds, same budget, same val images), per metric, beside the larger seed spread of the two
    and whether the gain lies outside it (a side with one seed has no spread of its own, so
    with one seed on one side the other side's spread decides; ``seeds`` is each side's count
    ``pretrained/scratch``). Rows: backbones with both kinds of run."""
    s = seed_summary(runs, metrics).set_index(["backbone", "init"])
    rows = []
    for bb in dict.fromkeys(b for b, _ in s.index):
        if (bb, "pretrained") in s.index and (bb, "scratch") in s.index:
            p, z = s.loc[(bb, "pretrained")], s.loc[(bb, "scratch")]
            row = {"backbone": bb, "seeds": f"{int(p['seeds'])}/{int(z['seeds'])}"}
            several = int(max(p["seeds"], z["seeds"]))
            for m in metrics:
                d = float(p[f"{m}_mean"] - z[f"{m}_mean"])
                spread = float(max(p[f"{m}_spread"], z[f"{m}_spread"]))
                row.update({m: d, f"{m}_spread": spread, f"{m}_outside": outside_spread(d, spread, several)})
            rows.append(row)
    return pd.DataFrame(rows)


def seed_order(runs: pd.DataFrame, a: str = "bh_resnet50", b: str = "resnet50", metric: str = "hard",
               init: str = "scratch") -> str:
    """How the seeds of ``a`` and ``b`` (``init`` runs, :func:`headline_rows`) lie on ``metric``:
    ``"all above"`` (every seed of ``a`` beats every seed of ``b``), ``"all below"`` or
    ``"overlap"``."""
    r = headline_rows(runs)
    r = r[r["init"] == init]
    va, vb = r.loc[r["backbone"] == a, metric], r.loc[r["backbone"] == b, metric]
    if va.empty or vb.empty:
        raise KeyError(f"no {init} runs of {a!r} and {b!r}")
    if va.min() > vb.max():
        return "all above"
    if va.max() < vb.min():
        return "all below"
    return "overlap"


def speed_table(models: dict, image_hw=(480, 640), *, reps: int = 3, warmup: int = 1,
                threads: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Images per second of each model in ``models`` (name -> a detector, which takes a list of
    images, or a backbone, which takes a batch tensor -- told apart by the detector's
    ``transform``), measured in one run on one machine: the same random ``image_hw`` image for
    all, ``threads`` torch threads
    (default: the current setting; restored afterwards), ``warmup`` untimed passes of each,
    then ``reps`` rounds in which every model runs once (interleaved, so a drift of the
    machine's speed hits all models alike). Eval mode during the timing, each model's mode
    restored. Columns: ``images_per_s`` (1 / median seconds), ``best_images_per_s`` (1 / the
    fastest rep's seconds: the least disturbed by other work on a shared machine),
    ``relative`` (best images/s over the first model's), ``seconds_max`` (the slowest rep),
    ``reps``, ``threads``, ``input_wh`` (``"640x480"``)."""
    import torch  # heavy; only where something is timed

    if not models:
        raise ValueError("speed_table needs at least one model")
    if int(reps) < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    before = torch.get_num_threads()
    n_threads = int(threads or before)
    torch.set_num_threads(n_threads)
    modes = {k: m.training for k, m in models.items()}
    times = {k: [] for k in models}
    try:
        x = torch.rand(3, int(image_hw[0]), int(image_hw[1]), generator=torch.Generator().manual_seed(seed))

        def inputs(m):
            xi = x.to(next(m.parameters()).device)
            return [xi] if hasattr(m, "transform") else xi[None]

        with torch.inference_mode():
            for m in models.values():
                m.eval()
                for _ in range(int(warmup)):
                    m(inputs(m))
            for _ in range(int(reps)):
                for k, m in models.items():
                    xi = inputs(m)
                    device = (xi[0] if isinstance(xi, list) else xi).device
                    t0 = time.perf_counter()
                    m(xi)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    times[k].append(time.perf_counter() - t0)
    finally:
        for k, m in models.items():
            m.train(modes[k])
        torch.set_num_threads(before)
    rows = [{"model": k, "images_per_s": 1.0 / float(np.median(t)), "best_images_per_s": 1.0 / float(min(t)),
             "seconds_max": float(max(t)), "reps": int(reps), "threads": n_threads,
             "input_wh": f"{int(image_hw[1])}x{int(image_hw[0])}"} for k, t in times.items()]
    out = pd.DataFrame(rows).set_index("model")
    out.insert(2, "relative", out["best_images_per_s"] / out["best_images_per_s"].iloc[0])
    return out
