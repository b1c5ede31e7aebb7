"""A generic detection training loop: SGD with per-group learning-rate multipliers, AMP,
atomic checkpoints with exact resume, DDP through ``torchrun``, tqdm, a pandas history.

Contract with the model (the HR detector, and any later detector):

* ``model(images, targets)`` in training mode returns a dict of scalar losses (summed for
  the backward pass; each is logged);
* optionally ``model.param_groups(lr_mult=..., weight_decay=...)`` returns optimizer groups,
  each with an ``lr_mult`` (the base learning rate is multiplied by it);
* the dataset returns samples the ``collate_fn`` turns into ``(images, targets)``; tensors
  in ``targets`` (a list of dicts, or one dict) are moved to the device here.

Several optimisers (a GAN's generator and discriminator): a model with a ``phases`` attribute
(e.g. ``("d", "g")``) and ``phase_param_groups(phase, lr_mult=..., weight_decay=...)`` gets
one optimiser and one learning-rate schedule per phase, all from the same ``TrainConfig``.
Every step runs the phases in order on the same batch: all gradients are cleared, then
``model(images, targets, phase=name)`` returns that phase's losses, they are back-propagated
and only that phase's optimiser steps -- so a phase's loss never moves another phase's
parameters, whatever it back-propagates through (the paper's alternating update, k = 1).
Loss names must differ between phases; the history gets ``loss_<phase>`` (each phase's sum)
beside each loss, and ``loss`` is the sum over phases. Checkpoints hold one optimiser and
scheduler state per phase. Under DDP such models run with ``find_unused_parameters=True``
(a phase leaves the other phase's parameters out of its graph).

Exact resume: every epoch starts by seeding torch / NumPy / Python from ``(seed, epoch,
rank)`` and calling ``set_epoch(epoch)`` on the dataset and sampler, so epoch ``e`` is the
same whether the run was interrupted before it or not. A checkpoint (``last.pt``) holds the
model, optimizer, scheduler, scaler, epoch, global step, config and the history so far, and
is written atomically on the main process only. A non-finite loss stops training with
:class:`NonFiniteLossError` (the checkpoint of the last finished epoch is kept untouched).

Distributed: run the same script with ``torchrun --nproc-per-node N`` (multi-node: add
``--nnodes/--node-rank/--rdzv-endpoint``); :func:`init_distributed` reads torchrun's
environment variables, picks NCCL on CUDA and gloo on CPU, and the loop uses a
``DistributedSampler``; losses are averaged across processes for logging.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

__all__ = [
    "TrainConfig",
    "NonFiniteLossError",
    "init_distributed",
    "is_main_process",
    "make_optimizer",
    "make_scheduler",
    "resolve_amp",
    "save_checkpoint",
    "load_checkpoint",
    "train",
]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN/inf; the message names the step and the last good checkpoint."""


@dataclass
class TrainConfig:
    """Optimisation settings (the paper's: lr 1e-4, momentum 0.9, weight decay 5e-4,
    batch 20, 50 epochs)."""

    epochs: int = 50
    optimizer: str = "sgd"  # sgd (the paper) | adamw (faster from scratch on CPU)
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 20
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    warmup_steps: int = 0
    lr_milestones: list[int] = field(default_factory=list)  # epochs at which lr *= lr_gamma
    lr_gamma: float = 0.1
    lr_schedule: str = "multistep"  # multistep (warm-up, then lr_gamma at lr_milestones) | cosine
    shuffle: bool = True  # False: the samples in dataset order (e.g. a dataset of ready batches)
    lr_mult: dict[str, float] = field(default_factory=dict)  # overrides the model's defaults
    grad_clip: float | None = None
    amp: str = "auto"  # auto (bf16/fp16 on GPU, off on CPU) | off | bf16 | fp16
    seed: int = 0
    out_dir: str | None = None  # where last.pt goes; None = no checkpoints
    save_every: int = 1  # epochs
    find_unused_parameters: bool = False

    @classmethod
    def from_dict(cls, d: dict | None) -> TrainConfig:
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known: {sorted(known)}")
        return cls(**d)


# ---------------------------------------------------------------------------- distributed
def init_distributed(backend: str | None = None) -> tuple[int, int, int]:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``/``MASTER_PORT``). Returns ``(rank, world_size, local_rank)``;
    ``(0, 1, 0)`` outside torchrun."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, init_method="env://")
    log.info("process %d/%d joined (%s)", rank, world, backend)
    return rank, world, local


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def is_main_process() -> bool:
    d = _dist()
    return d is None or d.get_rank() == 0


# ------------------------------------------------------------------------- optimisation
def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def make_optimizer(model: nn.Module, cfg: TrainConfig, phase: str | None = None
                   ) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay; or AdamW) over ``model.param_groups`` when it has them
    (over ``model.phase_param_groups(phase, ...)`` for one ``phase`` of a multi-phase model)."""
    m = _unwrap(model)
    if phase is not None:
        groups = m.phase_param_groups(phase, lr_mult=cfg.lr_mult, weight_decay=cfg.weight_decay)
        if not any(len(list(g["params"])) for g in groups):
            raise ValueError(f"phase {phase!r} of {type(m).__name__} has no parameters")
    elif hasattr(m, "param_groups"):
        groups = m.param_groups(lr_mult=cfg.lr_mult, weight_decay=cfg.weight_decay)
    else:
        groups = [{"params": [p for p in m.parameters() if p.requires_grad], "lr_mult": 1.0,
                   "weight_decay": cfg.weight_decay, "name": "all"}]
    for g in groups:
        g["lr"] = cfg.lr * float(g.get("lr_mult", 1.0))
    kind = cfg.optimizer.lower()
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")


class WarmupMultiStep:
    """Learning-rate factor per step: linear warm-up, then ``gamma`` at each milestone."""

    def __init__(self, warmup_steps: int, milestones_steps: list[int], gamma: float):
        self.warmup_steps = int(warmup_steps)
        self.milestones_steps = sorted(int(m) for m in milestones_steps)
        self.gamma = float(gamma)

    def __call__(self, step: int) -> float:
        f = self.gamma ** sum(step >= m for m in self.milestones_steps)
        if self.warmup_steps and step < self.warmup_steps:
            f *= (step + 1) / self.warmup_steps
        return f


class WarmupCosine:
    """Learning-rate factor per step: linear warm-up, then a cosine from 1 down to 0 at
    ``total_steps`` (and 0 after it)."""

    def __init__(self, warmup_steps: int, total_steps: int):
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step: int) -> float:
        f = 0.5 * (1 + math.cos(math.pi * min(step, self.total_steps) / max(self.total_steps, 1)))
        if self.warmup_steps and step < self.warmup_steps:
            f *= (step + 1) / self.warmup_steps
        return f


def _schedule_fn(cfg: TrainConfig, steps_per_epoch: int):
    kind = cfg.lr_schedule.lower()
    if kind == "multistep":
        return WarmupMultiStep(cfg.warmup_steps, [e * steps_per_epoch for e in cfg.lr_milestones],
                               cfg.lr_gamma)
    if kind == "cosine":
        return WarmupCosine(cfg.warmup_steps, cfg.epochs * steps_per_epoch)
    raise ValueError(f"lr_schedule must be 'multistep' or 'cosine', got {cfg.lr_schedule!r}")


def _follow_recipe_schedule(scheduler, cfg: TrainConfig, steps_per_epoch: int) -> None:
    """After loading a checkpoint's scheduler state (which carries the schedule it was made
    with), make the schedule the one of the recipe being resumed -- so a run can be resumed
    with, e.g., fewer epochs and earlier milestones -- and say so when they differ."""
    for fn in scheduler.lr_lambdas:
        if not isinstance(fn, (WarmupMultiStep, WarmupCosine)):
            continue
        before = dict(vars(fn))
        recipe = _schedule_fn(cfg, steps_per_epoch)
        if type(recipe) is not type(fn):  # the checkpoint's state was loaded into this object
            continue
        fn.__dict__.update(vars(recipe))
        if before != vars(fn):
            log.warning("resuming with the recipe's learning-rate schedule %s instead of the "
                        "checkpoint's %s", vars(fn), before)
    step = scheduler.last_epoch
    for group, base, fn in zip(scheduler.optimizer.param_groups, scheduler.base_lrs,
                               scheduler.lr_lambdas):
        group["lr"] = base * fn(step)


def make_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Per-step ``LambdaLR``: :class:`WarmupMultiStep` or :class:`WarmupCosine` (over all
    ``cfg.epochs * steps_per_epoch`` steps), as ``cfg.lr_schedule`` says."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule_fn(cfg, steps_per_epoch))


def resolve_amp(amp: str, device: torch.device):
    """The autocast dtype for ``amp`` on ``device`` (``None`` = fp32)."""
    from .config import amp_dtype_for

    amp = (amp or "off").lower()
    if amp == "auto":
        return amp_dtype_for(str(device))
    if amp in ("off", "none", "fp32", "false"):
        return None
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16
    if amp in ("fp16", "float16", "half"):
        if device.type == "cpu":
            raise ValueError("amp='fp16' is not supported on CPU; use 'bf16' or 'off'")
        return torch.float16
    raise ValueError(f"amp must be auto/off/bf16/fp16, got {amp!r}")


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, state: dict) -> Path:
    """``torch.save`` to a temporary file in the same directory, then ``os.replace``."""
    from .io import atomic_save

    return atomic_save(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - name the file
        raise ValueError(f"{path}: cannot read checkpoint ({exc})") from exc


# ------------------------------------------------------------------------------- helpers
def _to_device(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and obj and isinstance(obj[0], (dict, torch.Tensor)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    s = (int(seed) * 1_000_003 + int(epoch) * 1009 + int(rank)) % (2**31 - 1)
    random.seed(s)
    np.random.seed(s)  # noqa: NPY002 - legacy global state, for user code that uses it
    torch.manual_seed(s)


class _EpochSampler(torch.utils.data.Sampler):
    """Shuffling sampler whose order depends only on ``(seed, epoch)``."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


# ---------------------------------------------------------------------------------- train
def train(
    model: nn.Module,
    dataset,
    *,
    collate_fn: Callable,
    config: TrainConfig | dict | None = None,
    device=None,
    resume=None,
    eval_fn: Callable | None = None,
    progress: bool = True,
    extra_config: dict | None = None,
    on_step: Callable[[dict], None] | None = None,
):
    """Train ``model`` on ``dataset``; returns the history as a ``pandas.DataFrame``
    (one row per step: ``epoch, step, loss, <each loss>, lr, seconds``; the metrics of
    ``eval_fn(model, epoch) -> dict`` on the last row of each epoch).

    ``resume``: a checkpoint path (or ``True`` for ``<out_dir>/last.pt`` if it exists).
    ``extra_config`` (e.g. the model's config) is stored in checkpoints under ``config``.
    ``on_step(row)`` is called on the main process after every step with its history row
    (e.g. a live loss plot, :class:`tinylib.viz.LiveLosses`).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from .config import runtime

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    rank, world, local = init_distributed()
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() and world > 1 else runtime().device
    device = torch.device(device)
    model = model.to(device)
    amp_dtype = resolve_amp(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16
                                  and device.type == "cuda")

    if world > 1:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank,
                                                      shuffle=cfg.shuffle, seed=cfg.seed)
    elif cfg.shuffle:
        sampler = _EpochSampler(len(dataset), cfg.seed)
    else:
        sampler = torch.utils.data.SequentialSampler(dataset)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
        collate_fn=collate_fn, drop_last=False, pin_memory=device.type == "cuda")
    steps_per_epoch = len(loader)
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, int(cfg.max_steps_per_epoch))
    if steps_per_epoch == 0:
        raise ValueError("the training set is empty")

    phases = tuple(getattr(model, "phases", ()) or ())
    names = phases or (None,)  # None: the single optimiser of a one-phase model
    optimizers = {ph: make_optimizer(model, cfg, ph) for ph in names}
    schedulers = {ph: make_scheduler(optimizers[ph], cfg, steps_per_epoch) for ph in names}
    ddp_model = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters or bool(phases))

    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    ckpt_path = out_dir / "last.pt" if out_dir else None
    start_epoch, step, rows = 0, 0, []
    if resume is True:
        resume = ckpt_path if ckpt_path is not None and ckpt_path.is_file() else None
    if resume:
        state = load_checkpoint(resume)
        saved = tuple(state.get("phases") or ())
        if saved != phases:
            raise ValueError(f"{resume}: checkpoint of a model with phases {saved or 'none'}, "
                             f"this model has {phases or 'none'}")
        model.load_state_dict(state["model"])
        for ph in names:
            optimizers[ph].load_state_dict(state["optimizer"][ph] if phases else state["optimizer"])
            schedulers[ph].load_state_dict(state["scheduler"][ph] if phases else state["scheduler"])
            _follow_recipe_schedule(schedulers[ph], cfg, steps_per_epoch)
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        rows = list(state.get("history", []))
        log.info("resumed from %s at epoch %d (step %d)", resume, start_epoch, step)

    full_config = {"train": asdict(cfg), **(extra_config or {})}
    if "model" not in full_config and hasattr(model, "config"):
        full_config["model"] = dict(model.config)
    t0 = time.perf_counter()
    main = rank == 0
    for epoch in range(start_epoch, cfg.epochs):
        _seed_epoch(cfg.seed, epoch, rank)
        for obj in (sampler, dataset):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)
        ddp_model.train()
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (progress and main), leave=False)
        for i, (images, targets) in enumerate(loader):
            if i >= steps_per_epoch:
                break
            images = _to_device(images, device)
            targets = _to_device(targets, device)
            row = {"epoch": epoch + 1, "step": step + 1, "loss": 0.0}
            lr_now = max(g["lr"] for o in optimizers.values() for g in o.param_groups)
            for ph in names:
                model.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                                    enabled=amp_dtype is not None):
                    losses = (ddp_model(images, targets, phase=ph) if phases
                              else ddp_model(images, targets))
                clash = sorted(set(losses) & set(row))
                if clash:
                    raise ValueError(f"phase {ph!r} returns losses {clash} that another phase "
                                     "(or the history) already has; name them apart")
                total = sum(v.float() for v in losses.values())
                values = torch.stack([total.detach()]
                                     + [v.detach().float() for v in losses.values()])
                d = _dist()
                if d is not None:
                    d.all_reduce(values)
                    values /= world
                values = values.tolist()
                if not all(math.isfinite(v) for v in values):
                    bad = {k: v for k, v in zip([f"loss_{ph}" if ph else "loss", *losses], values)}
                    where = (f"the last good checkpoint {ckpt_path} is kept" if ckpt_path
                             and ckpt_path.is_file() else "no checkpoint was written yet")
                    bar.close()
                    raise NonFiniteLossError(
                        f"non-finite loss at epoch {epoch + 1}, step {step + 1}: {bad}; training "
                        f"stopped ({where}). Lower the learning rate, turn AMP off, or check the "
                        "data of this batch.")
                opt = optimizers[ph]
                scaler.scale(total).backward()
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                             cfg.grad_clip)
                scaler.step(opt)
                schedulers[ph].step()
                row["loss"] += values[0]
                if phases:
                    row[f"loss_{ph}"] = values[0]
                row.update({k: v for k, v in zip(losses, values[1:])})
            scaler.update()
            step += 1
            row["lr"] = lr_now
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            if on_step is not None and main:
                on_step(dict(row))
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            bar.update(1)
        bar.close()
        if eval_fn is not None and main:
            model.eval()
            metrics = eval_fn(model, epoch + 1) or {}
            rows[-1].update({k: float(v) for k, v in metrics.items()})
        if ckpt_path is not None and main and ((epoch + 1) % cfg.save_every == 0
                                               or epoch + 1 == cfg.epochs):
            opt_state = {ph: o.state_dict() for ph, o in optimizers.items()}
            sched_state = {ph: sc.state_dict() for ph, sc in schedulers.items()}
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(),
                "optimizer": opt_state if phases else opt_state[None],
                "scheduler": sched_state if phases else sched_state[None], "phases": list(phases),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "epoch": epoch, "step": step, "config": full_config, "history": rows,
            })
        if _dist() is not None:
            _dist().barrier()
    model.eval()
    return pd.DataFrame(rows)
