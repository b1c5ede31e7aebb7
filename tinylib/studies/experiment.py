"""The studies themselves: train and test each condition over several seeds on windows cut
from the same scenes (:func:`run_studies`, one condition and seed: :func:`run_study`), and
return the comparison as a table (one row per condition) with the :class:`StudyResult`
objects. Recording the numbers (the scorecard) is left to the caller; see
:mod:`tinylib.studies.compare`."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from .. import config
from .model import build_model, window_rf_extent
from .scenes import Scene
from .specs import StudySpec, budget
from .training import BalancedBatches, predict, train_classifier, window_ap
from .windows import WindowSet, sample_windows, torch_threads

log = logging.getLogger(__name__)

__all__ = ["StudyResult", "run_study", "run_studies"]


@dataclass
class StudyResult:
    name: str
    spec: StudySpec
    ap: list[float] = field(default_factory=list)
    train_ap: list[float] = field(default_factory=list)
    seconds: float = 0.0
    histories: list[pd.DataFrame] = field(default_factory=list)
    model: nn.Module | None = None

    @property
    def ap_mean(self) -> float:
        return float(np.mean(self.ap))

    @property
    def ap_std(self) -> float:
        """Sample standard deviation over seeds (``ddof=1``; 0 for a single seed)."""
        return float(np.std(self.ap, ddof=1)) if len(self.ap) > 1 else 0.0


def run_study(spec: StudySpec, train: WindowSet, test: WindowSet, seed: int = 0,
              device: str | None = None, progress: bool = False, name: str = "study",
              train_eval: int | None = 512):
    """Train one model for ``spec`` on ``train`` windows (seeded) and return
    ``(test AP, train AP, history, model)``. The train AP (an over-fitting check) is measured
    on ``train_eval`` training windows drawn with ``seed`` (``None``: all of them)."""
    device = device or config.runtime().device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec)
    batches = BalancedBatches(train, spec.batch_size, spec.steps, rng=np.random.default_rng([seed, 1]))
    hist = train_classifier(model, batches, spec.steps, lr=spec.lr, device=device,
                            progress=progress, desc=name)
    ap = window_ap(predict(model, test.images, device=device), test.labels.numpy())
    idx = np.arange(len(train))
    if train_eval is not None and train_eval < len(train):
        idx = np.sort(np.random.default_rng([seed, 2]).choice(len(train), train_eval, replace=False))
        if train.labels[idx].sum() == 0:  # (never with the standard ratios) keep AP defined
            idx = np.arange(len(train))
    train_ap = window_ap(predict(model, train.images[idx], device=device), train.labels.numpy()[idx])
    return ap, train_ap, hist, model


def run_studies(specs: dict[str, StudySpec], train_scenes: Sequence[Scene],
                test_scenes: Sequence[Scene], seeds: Sequence[int] = (0,), data_seed: int = 0,
                device: str | None = None, progress: bool = False,
                threads: int | str | None = "budget") -> tuple[pd.DataFrame, dict]:
    """Train and test every condition of ``specs`` for each seed.

    Test windows are drawn once from ``test_scenes`` (a fixed test set, as a benchmark is
    fixed); training windows are drawn anew for each seed from ``train_scenes``, so the seed
    spread covers the draw of the training windows as well as the initialisation and batch
    order. Conditions with the same :meth:`StudySpec.plan_key` get the *same* windows (same
    faces, positions and scales), each cut at its own resolution: conditions that differ
    only in the model (context mask, layers) or in the template resolution are compared on
    identical windows. Generators are seeded ``(data_seed, plan)`` for the test set and
    ``(data_seed, plan, seed)`` for training, ``plan`` a checksum of the plan key, so a
    condition gets the same windows whatever other conditions run beside it. Returns
    ``(table, results)``: one row per condition with ``ap_mean, ap_std`` (sample std over
    seeds), ``ap_per_seed, train_ap_mean``, receptive field, ``n_train``/``n_test`` (windows
    per seed), ``seconds``, and the :class:`StudyResult` objects.

    ``threads``: CPU threads while it runs, restored afterwards (default ``budget()["threads"]``:
    1 in quick mode — the tiny convolutions gain nothing from more, and on a busy 2-core
    machine a second thread makes each step many times slower)."""
    if threads == "budget":
        threads = budget()["threads"]
    with torch_threads(threads):
        return _run_studies(specs, train_scenes, test_scenes, seeds, data_seed, device, progress)


def _run_studies(specs, train_scenes, test_scenes, seeds, data_seed, device, progress):
    plans = {spec.plan_key(): zlib.crc32(repr(spec.plan_key()).encode()) for spec in specs.values()}
    tests: dict[tuple, WindowSet] = {}
    for spec in specs.values():
        if spec.data_key() not in tests:
            rng = np.random.default_rng([data_seed, plans[spec.plan_key()]])
            tests[spec.data_key()] = sample_windows(test_scenes, spec, spec.n_test_pos, rng,
                                                    spec.test_neg_per_pos)
    results = {name: StudyResult(name, spec) for name, spec in specs.items()}
    sizes: dict[str, tuple[int, int]] = {}
    for seed in seeds:  # one seed's training windows at a time (full-mode windows are large)
        cache: dict[tuple, WindowSet] = {}
        for name, spec in specs.items():
            key = spec.data_key()
            if key not in cache:
                rng = np.random.default_rng([data_seed, plans[spec.plan_key()], seed])
                cache[key] = sample_windows(train_scenes, spec, spec.n_train_pos, rng)
            train, test = cache[key], tests[key]
            sizes[name] = (len(train), len(test))
            res = results[name]
            start = time.perf_counter()
            ap, train_ap, hist, model = run_study(spec, train, test, seed=seed, device=device,
                                                  progress=progress, name=name)
            res.seconds += time.perf_counter() - start
            res.ap.append(ap)
            res.train_ap.append(train_ap)
            res.histories.append(hist)
            res.model = model
        del cache
    rows = []
    for name, spec in specs.items():
        res = results[name]
        erf = window_rf_extent(res.model, spec.crop_hw)
        log.info("%s: AP %.3f +- %.3f (%d seeds, %.1fs)", name, res.ap_mean, res.ap_std, len(seeds), res.seconds)
        rows.append({
            "condition": name, "face_hw": "x".join(map(str, spec.face_hw)),
            "template_hw": "x".join(map(str, spec.template_hw)),
            "window_hw": "x".join(map(str, spec.crop_hw)), "context": spec.context,
            "layers": "+".join(spec.layers), "effective_rf_hw": f"{erf[0]}x{erf[1]}",
            "ap_mean": res.ap_mean, "ap_std": res.ap_std,
            "ap_per_seed": [round(a, 4) for a in res.ap], "train_ap_mean": float(np.mean(res.train_ap)),
            "n_train": sizes[name][0], "n_test": sizes[name][1], "seconds": round(res.seconds, 1),
        })
    return pd.DataFrame(rows), results
