"""The run-folder format: what a training run and its scorings leave in ``<out>/``, the
append-only rule for such a folder, and the readers and writers of its files.

Layout of a run folder (every file written atomically through :mod:`tinylib.io`)::

    <out>/
      last.pt                the engine's checkpoint (:func:`tinylib.engine.train`): model,
                             optimiser(s), scheduler(s), scaler, epoch, step, config, history
      history.csv            one row per step (:func:`write_history`), written by the recipe
                             trainers at the end of a run
      history_summary.csv    the GAN trainer's per-``every``-steps means
      weights.pt             exported inference weights (``--export``)
      weights_history.csv    the per-epoch summary beside exported weights
                             (:func:`tinylib.engine.recipe.history_path`)
      backbone.pt            a pre-trained backbone (``tinylib.frcnn.pretrain``)
      result.json            the pre-training's top-1 (``tinylib.frcnn.pretrain``)
      replaced-<time>/       an earlier run's files, moved aside by ``--overwrite``
      metrics.json           a scoring of ``weights.pt`` (:func:`write_metrics`; e.g.
                             ``tools/eval_frcnn_wider.py``): ``run``, ``label``, ``images``, one
                             AP per setting (``easy``, ``medium``, ``hard``, ``le20``), ``faces``
                             per setting, ``detections``, ``eval_seconds``, ``threads`` and
                             ``halves`` (the same APs on each half of the WIDER val split)
      metrics_n<N>.json      the saved detections re-scored on an evenly spread N images
                             (:func:`metrics_path` with ``n``; :func:`scoring_label` ``"n<N>"``)
      predictions.npz        the detections behind ``metrics.json`` (:func:`write_predictions`):
                             one ``(K, 5)`` array ``x, y, w, h, score`` per image, stored under
                             the image key ``event/stem`` with ``/`` written ``|`` (``npz`` names
                             are paths inside a zip file)
      ap_by_size.csv         AP per face-size bin and half, beside ``metrics.json``
      tta_<setting>.json     a scoring with a test-time pyramid/flip setting
                             (:func:`tta_result_path`, :func:`write_tta_metrics`): the keys of
                             ``metrics.json`` but ``halves``, with ``tta`` and ``pixel_cost``

The files of :data:`RUN_FILES` mark a folder as holding a run. Runs are append-only
(:func:`check_run_dir`): training into such a folder is refused with :class:`RunExistsError`
unless ``resume`` (continue from ``last.pt``) or ``overwrite`` (the earlier run's files are
moved aside into ``<out>/replaced-<time>/`` just before the first step, never deleted,
:func:`set_aside_run`) is given; ``resume=True`` without ``<out>/last.pt`` raises
:class:`FileNotFoundError`. Temporary files left by a killed write (``.last.pt.*.tmp``) are
removed when a run starts or resumes (:func:`clean_stale_tmp`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..io import atomic_save, atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["RunExistsError", "RUN_FILES", "existing_run", "check_run_dir", "clean_stale_tmp",
           "set_aside_run", "METRICS_FILE", "PREDICTIONS_FILE", "HISTORY_FILE", "write_history",
           "metrics_path", "scoring_label", "tta_result_path", "write_metrics", "write_tta_metrics",
           "read_metrics", "write_predictions", "read_predictions"]


class RunExistsError(FileExistsError):
    """The output folder already holds a training run and neither resume nor overwrite was
    asked for; the message names the folder and both options."""


#: files that mark a folder as holding a run (the engine's checkpoint, and what the recipe
#: trainers write beside it: history, exported/backbone weights, results)
RUN_FILES = ("last.pt", "history.csv", "history_summary.csv", "weights.pt", "backbone.pt",
             "result.json")
#: a scoring of a run's weights (module doc)
METRICS_FILE = "metrics.json"
#: the detections behind :data:`METRICS_FILE`
PREDICTIONS_FILE = "predictions.npz"
#: the per-step training history
HISTORY_FILE = "history.csv"


# --------------------------------------------------------------------- the append-only rule
def existing_run(out_dir) -> list[Path]:
    """The files of an earlier run in ``out_dir`` (those of :data:`RUN_FILES` present)."""
    if out_dir is None:
        return []
    out = Path(out_dir)
    return [out / n for n in RUN_FILES if (out / n).is_file()]


def check_run_dir(out_dir, *, resume=None, overwrite: bool = False) -> Path | None:
    """The append-only rule for a run folder, checked before anything is trained or written.
    Returns the checkpoint to resume from (``None``: a new run).

    * ``resume=True``: ``out_dir/last.pt`` must exist (:class:`FileNotFoundError` otherwise,
      e.g. a mistyped folder); ``resume=<path>``: that file must exist;
    * no ``resume``: a folder holding a run (:func:`existing_run`) raises
      :class:`RunExistsError` unless ``overwrite`` (the caller then moves it aside with
      :func:`set_aside_run`);
    * ``resume`` and ``overwrite`` together raise :class:`ValueError`."""
    out = Path(out_dir) if out_dir is not None else None
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: --resume continues the "
                         f"run in {out}, --overwrite starts a new one there")
    if resume is True:
        if out is None:
            raise ValueError("resume=True needs an out_dir (its last.pt is the checkpoint)")
        ckpt = out / "last.pt"
        if not ckpt.is_file():
            if not out.is_dir():
                where = f"the folder {out} does not exist"
            else:
                found = [p.name for p in existing_run(out)]
                where = (f"{out} holds {found} but no last.pt" if found
                         else f"{out} holds no training run")
            raise FileNotFoundError(f"--resume: no checkpoint {ckpt} ({where}). Check --out, "
                                    "or leave --resume out to start a new run there.")
        return ckpt
    if resume:
        ckpt = Path(resume)
        if not ckpt.is_file():
            raise FileNotFoundError(f"resume: checkpoint not found: {ckpt}")
        return ckpt
    found = existing_run(out)
    if found and not overwrite:
        raise RunExistsError(
            f"{out} already holds a training run ({', '.join(p.name for p in found)}); "
            "nothing was changed. Pass --resume to continue it from its last.pt, or --overwrite "
            f"to start a new run there (the old run's files are moved to {out}/replaced-<time>/), "
            "or choose another --out.")
    return None


def clean_stale_tmp(out_dir) -> list[Path]:
    """Remove the temporary files a killed atomic write of a run file left behind
    (:func:`tinylib.io.atomic_path` names them ``.<name>.<random>.tmp``); returns them."""
    if out_dir is None or not Path(out_dir).is_dir():
        return []
    removed = []
    for name in RUN_FILES:
        for tmp in Path(out_dir).glob(f".{name}.*.tmp"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    if removed:
        log.info("removed %d stale temporary file(s) of an interrupted write in %s: %s",
                 len(removed), out_dir, [p.name for p in removed])
    return removed


def set_aside_run(out_dir) -> Path | None:
    """Move the files of the run in ``out_dir`` (:func:`existing_run`) into a new folder
    ``out_dir/replaced-<YYYYmmdd-HHMMSS>/`` (nothing is deleted); returns it, or ``None``
    when there was no run."""
    found = existing_run(out_dir)
    if not found:
        return None
    out = Path(out_dir)
    base = out / time.strftime("replaced-%Y%m%d-%H%M%S")
    target, k = base, 1
    while target.exists():
        k += 1
        target = base.with_name(f"{base.name}-{k}")
    target.mkdir(parents=True)
    for f in found:
        os.replace(f, target / f.name)
    log.warning("--overwrite: the earlier run in %s (%s) was moved to %s", out,
                [f.name for f in found], target)
    return target


# ------------------------------------------------------------------------- the run's files
def write_history(out_dir, hist) -> Path:
    """``<out_dir>/history.csv``: an :func:`tinylib.engine.train` history, one row per step."""
    return atomic_write_text(Path(out_dir) / HISTORY_FILE, hist.to_csv(index=False))


def metrics_path(run, n: int | None = None) -> Path:
    """``RUN/metrics.json``, or ``RUN/metrics_n<N>.json`` for a re-scoring on ``n`` images."""
    return Path(run) / (METRICS_FILE if n is None else f"metrics_n{int(n)}.json")


def scoring_label(path) -> str:
    """What a metrics file of :func:`metrics_path` scored: ``"all"`` for ``metrics.json`` (the
    run's own evaluation), ``"n<N>"`` for ``metrics_n<N>.json``."""
    path = Path(path)
    return "all" if path.name == METRICS_FILE else path.stem.removeprefix("metrics_")


def tta_result_path(run, setting: str) -> Path:
    """Where a test-time setting's scoring of ``run`` goes: ``RUN/tta_<setting>.json``, with
    ``/`` and ``+`` spelled ``-`` and ``_``."""
    return Path(run) / f"tta_{setting.replace('/', '-').replace('+', '_')}.json"


def write_metrics(run, metrics: dict, n: int | None = None) -> Path:
    """Write ``metrics`` (a JSON-able dict, module doc) to :func:`metrics_path` ``(run, n)``."""
    return _write_json(metrics_path(run, n), metrics)


def write_tta_metrics(run, setting: str, metrics: dict) -> Path:
    """Write a test-time setting's scoring to :func:`tta_result_path` ``(run, setting)``."""
    return _write_json(tta_result_path(run, setting), metrics)


def _write_json(path: Path, d: dict) -> Path:
    return atomic_write_text(path, json.dumps(d, indent=1))


def read_metrics(path) -> dict:
    """A scoring (``metrics*.json``, ``tta_*.json``; a run folder: its ``metrics.json``) as a
    dict; errors name the file."""
    path = Path(path)
    if path.is_dir():
        path = metrics_path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def _npz_name(key: str) -> str:
    return key.replace("/", "|")


def _image_key(name: str) -> str:
    return name.replace("|", "/")


def write_predictions(run, predictions: dict) -> Path:
    """``RUN/predictions.npz`` (compressed): ``predictions`` ``image key -> (K, 5) array``,
    keys stored with ``/`` written ``|`` (module doc)."""
    arrays = {_npz_name(k): v for k, v in predictions.items()}
    return atomic_save(Path(run) / PREDICTIONS_FILE, lambda p: np.savez_compressed(p, **arrays),
                       suffix=".tmp.npz")


def read_predictions(path) -> dict[str, np.ndarray]:
    """The detections of :func:`write_predictions` (a run folder or the ``.npz`` itself) as
    ``image key -> (K, 5) array``, in the file's order."""
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS_FILE
    with np.load(path, allow_pickle=False) as z:
        return {_image_key(k): z[k] for k in z.files}
