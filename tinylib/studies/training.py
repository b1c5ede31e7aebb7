"""Training and scoring the window classifiers of the studies.

Training goes through the one training loop of tinylib, :func:`tinylib.engine.train`
(AdamW, a per-step cosine learning-rate schedule, AMP from :func:`tinylib.config.runtime`,
non-finite-loss check, tqdm, history): :func:`train_classifier` hands it the classifier
wrapped in a binary cross-entropy objective and a dataset whose item ``i`` is batch ``i``
(:class:`BalancedBatches`, or any iterable of batches), read in order. :func:`predict` and
:func:`window_ap` score the trained model.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import config, engine
from ..eval.pr import voc_ap
from .windows import WindowSet

__all__ = ["BalancedBatches", "balanced_batches", "train_classifier", "predict", "window_ap"]


def _balanced_indices(windows: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    pos = np.flatnonzero(windows.labels.numpy() > 0.5)
    neg = np.flatnonzero(windows.labels.numpy() <= 0.5)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"need positives and negatives, got {len(pos)} and {len(neg)}")
    return pos, neg


def _draw_batch(rng: np.random.Generator, pos, neg, batch_size: int, flip: bool):
    """Window indices of one balanced batch and which of them to flip (``None``: no flips)."""
    half = batch_size // 2
    idx = np.concatenate([rng.choice(pos, half), rng.choice(neg, batch_size - half)])
    flips = rng.random(len(idx)) < 0.5 if flip else None
    return idx, flips


def _make_batch(windows: WindowSet, idx, flips) -> tuple[torch.Tensor, torch.Tensor]:
    x = windows.images[idx]
    if flips is not None:
        x = torch.where(torch.from_numpy(flips)[:, None, None, None], x.flip(-1), x)
    return x, windows.labels[idx]


def balanced_batches(windows: WindowSet, batch_size: int, rng, flip: bool = True
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches, half positives half negatives, random horizontal flips (the same
    batches, in the same order, as :class:`BalancedBatches` with the same ``rng``)."""
    rng = np.random.default_rng(rng)
    pos, neg = _balanced_indices(windows)
    while True:
        yield _make_batch(windows, *_draw_batch(rng, pos, neg, batch_size, flip))


class BalancedBatches(torch.utils.data.Dataset):
    """``n_batches`` balanced batches as a dataset: item ``i`` is the ``i``-th batch of
    :func:`balanced_batches` with the same ``rng`` (the window indices and flips are drawn
    up front, the pixels gathered on access)."""

    def __init__(self, windows: WindowSet, batch_size: int, n_batches: int, rng,
                 flip: bool = True):
        rng = np.random.default_rng(rng)
        pos, neg = _balanced_indices(windows)
        self.windows = windows
        self.draws = [_draw_batch(rng, pos, neg, batch_size, flip) for _ in range(n_batches)]

    def __len__(self) -> int:
        return len(self.draws)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _make_batch(self.windows, *self.draws[i])


class _BatchStream(torch.utils.data.Dataset):
    """``steps`` batches taken in order from any iterable of batches (restarted when it
    runs out). Item ``i`` must be asked for after item ``i - 1``: the engine does so with
    ``shuffle=False`` and no worker processes."""

    def __init__(self, batches: Iterable, steps: int):
        self.batches, self.steps = batches, int(steps)
        self._it, self._next = iter(batches), 0

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int):
        if i != self._next:
            raise IndexError(f"batch {i} asked for out of order (next is {self._next})")
        self._next += 1
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self.batches)
            return next(self._it)


def _one_batch(items: list):
    """``collate_fn`` of a dataset of ready batches (loaded one at a time)."""
    return items[0]


class _BinaryObjective(nn.Module):
    """The engine's model contract for a classifier ``net(x) -> logits (N,)``:
    ``objective(x, y)`` returns ``{"bce": loss}``; the batch accuracy of each step is kept
    in ``accuracy`` (a history column the engine does not know about)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.accuracy: list[float] = []
        self.scores: list[tuple[np.ndarray, np.ndarray]] = []  # (logits, labels) of each step

    def param_groups(self, lr_mult=None, weight_decay: float = 0.0) -> list[dict]:
        """The network's own groups when it has them (e.g. a frozen, slower trunk), else one
        group of every trainable parameter (what the engine does without this method)."""
        if hasattr(self.net, "param_groups"):
            return self.net.param_groups(lr_mult=lr_mult, weight_decay=weight_decay)
        return [{"params": [p for p in self.net.parameters() if p.requires_grad], "lr_mult": 1.0,
                 "weight_decay": weight_decay, "name": "all"}]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.net(x)
        y = y.float()
        self.accuracy.append(((logits.detach() > 0).float() == y).float().mean().item())
        self.scores.append((logits.detach().float().cpu().numpy(), y.cpu().numpy()))
        return {"bce": F.binary_cross_entropy_with_logits(logits.float(), y)}


@contextmanager
def _global_rng_kept(device):
    """Leave Python's, NumPy's and torch's global generators as they were: the engine seeds
    them at each epoch, and the studies draw from their own generators only."""
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    dev = torch.device(device)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002


def train_classifier(model: nn.Module, batches: Iterable, steps: int, lr: float = 1e-3,
                     device: str | None = None, amp: bool | None = None,
                     progress: bool = False, weight_decay: float = 1e-4,
                     desc: str = "train", on_step=None, running_ap: int = 0) -> pd.DataFrame:
    """Train a binary classifier (``model(x) -> logits (N,)``) with AdamW + BCE and a
    cosine learning-rate schedule for ``steps`` batches, through :func:`tinylib.engine.train`.

    ``batches``: a dataset of batches (item ``i`` = batch ``i``, e.g. :class:`BalancedBatches`)
    with at least ``steps`` items, or any iterable of ``(x, y)`` batches (read in order,
    restarted if shorter). ``device``/``amp`` default to :func:`tinylib.config.runtime`
    (CUDA with bf16/fp16 autocast when present, CPU fp32 otherwise; ``amp=True`` forces
    bf16 where the device has no default). The global random generators are left as they
    were. Returns the history: one row per step with ``step`` (from 0), ``loss``,
    ``accuracy`` (of the batch) and ``lr`` (the learning rate the step used); with
    ``running_ap=K`` also ``running_ap``: the window AP of the training scores of the last
    ``K`` steps (free: the logits the steps computed anyway, in training mode). A model
    with ``param_groups(lr_mult=, weight_decay=)`` gets its own optimiser groups (e.g. a
    frozen or slower trunk). ``on_step(row)`` is called after every step (the engine's)."""
    if steps <= 0:
        return pd.DataFrame(columns=["step", "loss", "accuracy", "lr"])
    device = device or config.runtime().device
    if amp is None:
        amp_mode = "auto"
    elif amp:
        amp_mode = "auto" if config.amp_dtype_for(device) is not None else "bf16"
    else:
        amp_mode = "off"
    indexable = hasattr(batches, "__getitem__") and hasattr(batches, "__len__")
    data = batches if indexable and len(batches) >= steps else _BatchStream(batches, steps)
    cfg = engine.TrainConfig(epochs=1, optimizer="adamw", lr=lr, weight_decay=weight_decay,
                             batch_size=1, max_steps_per_epoch=steps, lr_schedule="cosine",
                             amp=amp_mode, shuffle=False, num_workers=0)
    objective = _BinaryObjective(model)
    with _global_rng_kept(device):
        try:
            hist = engine.train(objective, data, collate_fn=_one_batch, config=cfg,
                                device=device, progress=progress, on_step=on_step)
        except engine.NonFiniteLossError as exc:
            raise engine.NonFiniteLossError(f"{desc}: {exc}") from exc
    out = pd.DataFrame({"step": hist["step"].to_numpy() - 1, "loss": hist["loss"].to_numpy(),
                        "accuracy": objective.accuracy, "lr": hist["lr"].to_numpy()},
                       columns=["step", "loss", "accuracy", "lr"])
    if running_ap:
        aps = []
        for i in range(len(objective.scores)):
            chunk = objective.scores[max(0, i + 1 - running_ap): i + 1]
            sc = np.concatenate([c[0] for c in chunk])
            lb = np.concatenate([c[1] for c in chunk])
            aps.append(window_ap(sc, lb) if lb.sum() > 0 else float("nan"))
        out["running_ap"] = aps
    return out


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256,
            device: str | None = None) -> np.ndarray:
    """Scores (sigmoid of the logits) of ``images`` in eval mode."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        out.append(torch.sigmoid(model(images[i:i + batch_size].to(device)).float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def window_ap(scores, labels) -> float:
    """Average precision of window scores against binary labels (VOC AP: precision made
    monotone, area where recall changes). Ties are broken by order (stable sort)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel() > 0.5
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.size} vs {labels.size}")
    if labels.sum() == 0:
        raise ValueError("window_ap needs at least one positive")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order])
    fp = np.cumsum(~labels[order])
    return voc_ap(tp / labels.sum(), tp / np.maximum(tp + fp, 1))
