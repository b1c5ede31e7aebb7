"""Score Faster R-CNN-FPN weights on the real WIDER val images of the data root (issue #11).

    TINYLIB_DATA=../shared/data .venv/bin/python tools/eval_frcnn_wider.py RUN_DIR [RUN_DIR ...] \
        [--threads N] [--n N]

For each ``RUN_DIR`` (a ``python -m tinylib.frcnn.train ... --export RUN_DIR/weights.pt`` run)
it runs the detector on every val image present (the 374-image subset) at the image's own
size, scores the detections with the official protocol (easy / medium / hard, and ``le20``:
the hard faces of at most 20 px, :func:`tinylib.eval.widerface.with_size_setting`), and
writes ``RUN_DIR/metrics.json``, ``RUN_DIR/ap_by_size.csv`` (per size bin, on all the photos
and on each half of the split: column ``half``) and the detections
(``RUN_DIR/predictions.npz``, keys ``event|stem``: re-scoring on a subset needs no re-run;
``--n N`` scores an evenly spread N of the images; for a run already scored on all of
them it re-scores the saved detections on those N into ``metrics_n<N>.json``, so the two
pair up). ``--tta SETTING`` (a name of :data:`tinylib.engine.tta.TTA_SETTINGS`, e.g.
``0.5x/1x/2x+flip``) runs the test-time pyramid/flip instead and writes
``RUN_DIR/tta_<setting>.json`` (with ``--n``: on those N images), timed, with its pixel cost.
``metrics.json`` also holds ``halves``: the same scores on the tuning and the test half of
the WIDER val subset apart (:mod:`tinylib.data.splits`). A run that already has
``metrics.json`` is skipped (delete it to re-score). ``tools/collect_frcnn_results.py`` turns
the run folders into the tables the chapter reads. The folder's files and their format:
:mod:`tinylib.engine.runs`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from tinylib.config import data_root
from tinylib.data import splits
from tinylib.data.widerface import WiderFaceDataset, image_key, load_eval_gt
from tinylib.engine import runs
from tinylib.engine.tta import TTA_SETTINGS, tta_cost
from tinylib.eval import widerface as W
from tinylib.frcnn.detect import evaluate_wider, load_detector
from tinylib.io import atomic_write_text


def score(run: Path, n: int | None = None) -> dict:
    model = load_detector(run / "weights.pt", device="cpu")
    t0 = time.perf_counter()
    res, preds = evaluate_wider(model, data_root(), max_images=n, progress=True,
                                detector_kw={"device": "cpu", "score_threshold": 0.01, "batch_size": 1})
    seconds = time.perf_counter() - t0
    runs.write_predictions(run, preds)
    atomic_write_text(run / "ap_by_size.csv", by_size_halves(preds).to_csv(index=False))
    out = {"run": run.name, "label": res.label, "images": res.n_images,
           **{k: float(v) for k, v in res.ap.items()},
           "faces": {k: int(v) for k, v in res.n_faces.items()},
           "detections": int(res.n_detections), "eval_seconds": round(seconds, 1),
           "threads": torch.get_num_threads()}
    out["halves"] = score_halves(preds)
    runs.write_metrics(run, out)
    return out


def score_halves(preds: dict) -> dict:
    """easy / medium / hard / le20 AP of ``preds`` on the tuning and the test half of the WIDER
    val subset apart (:mod:`tinylib.data.splits`): choices on tuning, headlines on test."""
    gt = W.with_size_setting(load_eval_gt(data_root()))
    settings = (*W.SETTINGS, W.SIZE_SETTING[0])
    out = {}
    for half, keys in splits.halves(list(preds)).items():
        res = W.evaluate({k: preds[k] for k in keys}, gt, settings=settings, subset=keys)
        out[half] = {"images": len(keys), **{k: float(v) for k, v in res.ap.items()}}
    return out


def by_size_halves(preds: dict):
    """AP per face-size bin (:func:`tinylib.eval.widerface.ap_by_size`) on all the scored
    photos (``half`` ``"all"``) and on each half of the split apart (``"tuning"``, ``"test"``)."""
    import pandas as pd

    gt = load_eval_gt(data_root())
    parts = {"all": list(preds), **splits.halves(list(preds))}
    return pd.concat([W.ap_by_size(preds, gt, subset=keys).assign(half=half)
                      for half, keys in parts.items() if keys], ignore_index=True)


def score_tta(run: Path, setting: str, n: int | None = None) -> dict:
    scales, flip = TTA_SETTINGS[setting]
    model = load_detector(run / "weights.pt", device="cpu")
    t0 = time.perf_counter()
    res, preds = evaluate_wider(model, data_root(), max_images=n, progress=True, tta=(scales, flip),
                                detector_kw={"device": "cpu", "score_threshold": 0.01, "batch_size": 1})
    out = {"run": run.name, "tta": setting, "label": res.label, "images": res.n_images,
           **{k: float(v) for k, v in res.ap.items()}, "faces": {k: int(v) for k, v in res.n_faces.items()},
           "pixel_cost": tta_cost(scales, flip), "eval_seconds": round(time.perf_counter() - t0, 1),
           "threads": torch.get_num_threads()}
    out["halves"] = score_halves(preds)  # the sample's tuning and test photos apart
    runs.write_tta_metrics(run, setting, out)
    return out


def rescore(run: Path, n: int) -> dict:
    """``metrics_n<N>.json``: the saved detections of ``run`` scored on the evenly spread ``N``
    val images that ``--n N`` evaluates (so a run scored on all images pairs with one scored
    on N)."""
    ds = WiderFaceDataset(data_root(), "val")
    keys = [image_key(ds.images[i]) for i in W.spread(list(range(len(ds))), n)]
    preds = runs.read_predictions(run)
    gt = W.with_size_setting(load_eval_gt(data_root()))
    res = W.evaluate({k: preds[k] for k in keys}, gt, settings=(*W.SETTINGS, "le20"), subset=keys)
    out = {"run": run.name, "label": res.label, "images": res.n_images,
           **{k: float(v) for k, v in res.ap.items()}, "faces": {k: int(v) for k, v in res.n_faces.items()}}
    runs.write_metrics(run, out, n=n)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--n", type=int, default=None, help="evenly spread sample of N images")
    p.add_argument("--tta", choices=sorted(TTA_SETTINGS), default=None, help="test-time pyramid / flip setting")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    for run in args.runs:
        if args.tta:
            if runs.tta_result_path(run, args.tta).is_file():
                print(f"{run}: {args.tta} already scored", flush=True)
            else:
                out = score_tta(run, args.tta, args.n)
                print(json.dumps({k: out[k] for k in ("run", "tta", "images", "hard", "le20", "eval_seconds")}), flush=True)
            continue
        if args.n and (run / runs.PREDICTIONS_FILE).is_file() and runs.metrics_path(run).is_file():
            if not runs.metrics_path(run, args.n).is_file():  # the same N images, re-scored
                out = rescore(run, args.n)
                print(json.dumps({k: out[k] for k in ("run", "images", "easy", "medium", "hard", "le20")}), flush=True)
            continue
        if runs.metrics_path(run).is_file():
            print(f"{run}: already scored", flush=True)
            continue
        if not (run / "weights.pt").is_file():
            print(f"{run}: no weights.pt yet, skipped", flush=True)
            continue
        out = score(run, args.n)
        print(json.dumps({k: out[k] for k in ("run", "easy", "medium", "hard", "le20")}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
