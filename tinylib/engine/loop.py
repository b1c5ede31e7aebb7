"""The one training loop (:func:`train`): SGD with per-group learning-rate multipliers, AMP,
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
The initial weights are the caller's business: build the model under a fixed seed
(:func:`seeded`) and two fresh runs of one seed give the same loss curve.

Run folders are append-only (:mod:`tinylib.engine.runs`: :func:`~tinylib.engine.runs.check_run_dir`,
which :func:`train` applies before any work); a checkpoint that does not fit the model raises
:class:`IncompatibleCheckpointError` naming the settings in which the stored config differs.

The loop is written as small named steps, in the manner of torchvision's detection
references: :func:`setup` (process group, device, AMP, :func:`build_loader`,
:func:`build_optimizers`, the DDP wrapper; a :class:`TrainState`),
:func:`resume_from_checkpoint`, :func:`train_one_epoch` (one :func:`optimisation_step` per
batch: forward under autocast, :func:`check_finite`, backward with the scaler, gradient
clipping, the optimiser and schedule steps), :func:`evaluate_epoch` and :func:`save_epoch`
(:func:`checkpoint_state`).

Distributed: run the same script with ``torchrun --nproc-per-node N`` (multi-node: add
``--nnodes/--node-rank/--rdzv-endpoint``); :func:`init_distributed` reads torchrun's
environment variables, picks NCCL on CUDA and gloo on CPU, and the loop uses a
``DistributedSampler``; losses are averaged across processes for logging.
"""

from __future__ import annotations

import contextlib
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

from ..config import amp_dtype_for, runtime
from ..io import atomic_save
from .runs import check_run_dir, clean_stale_tmp, existing_run, set_aside_run

log = logging.getLogger(__name__)

__all__ = [
    "TrainConfig",
    "NonFiniteLossError",
    "IncompatibleCheckpointError",
    "config_diff",
    "seeded",
    "init_distributed",
    "is_main_process",
    "make_optimizer",
    "make_scheduler",
    "WarmupMultiStep",
    "WarmupCosine",
    "resolve_amp",
    "save_checkpoint",
    "load_checkpoint",
    "TrainState",
    "setup",
    "build_loader",
    "build_optimizers",
    "run_config",
    "resume_from_checkpoint",
    "optimisation_step",
    "check_finite",
    "train_one_epoch",
    "evaluate_epoch",
    "checkpoint_state",
    "save_epoch",
    "train",
]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN/inf; the message names the step and the last good checkpoint."""


class IncompatibleCheckpointError(ValueError):
    """A checkpoint to resume from does not fit the model; the message names the settings
    in which the checkpoint's stored config differs from the current one."""


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


def _flatten(d, prefix: str = "") -> dict:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(_flatten(v, key))
            else:
                out[key] = v
    return out


def _short(v, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


def config_diff(old: dict | None, new: dict | None, *, skip=("train.", "recipe.train.")) -> list[str]:
    """``["model.depth: 18 (checkpoint) -> 50 (now)", ...]``: the dotted keys in which two
    nested configs differ, keys starting with one of ``skip`` left out (training settings
    such as epochs may change on resume)."""
    a, b = _flatten(old or {}), _flatten(new or {})
    out = []
    for k in sorted(set(a) | set(b)):
        if any(k.startswith(s) for s in skip):
            continue
        va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
        if va != vb:
            out.append(f"{k}: {_short(va)} (checkpoint) -> {_short(vb)} (now)")
    return out


def _check_fits(path, model: nn.Module, saved: dict, old_config, new_config) -> None:
    """Raise :class:`IncompatibleCheckpointError` when the checkpoint's weights do not fit
    ``model`` (names and shapes), naming the settings that differ."""
    own = model.state_dict()
    missing = sorted(set(own) - set(saved))
    unexpected = sorted(set(saved) - set(own))
    shapes = sorted(k for k in set(own) & set(saved)
                    if tuple(own[k].shape) != tuple(saved[k].shape))
    diff = config_diff(old_config, new_config)
    if not (missing or unexpected or shapes):
        if diff:
            log.warning("resuming from %s whose stored config differs in: %s", path,
                        "; ".join(diff[:8]))
        return
    parts = [f"{len(v)} {what} (e.g. {v[:2]})" for v, what in
             ((missing, "tensors missing"), (unexpected, "unexpected tensors"),
              (shapes, "tensors of another shape")) if v]
    why = ("the recipe differs from the checkpoint's in: " + "; ".join(diff[:8])
           + (f" (and {len(diff) - 8} more)" if len(diff) > 8 else "")) if diff else (
        "the stored config is the same, so the model code must have changed")
    raise IncompatibleCheckpointError(
        f"{path}: the checkpoint does not fit this model ({', '.join(parts)}); {why}. Resume "
        "with the checkpoint's settings, or start a new run (--overwrite, or another --out).")


@contextlib.contextmanager
def seeded(seed: int):
    """Torch's CPU random generator seeded with ``seed`` inside the block (e.g. to build a
    model's initial weights), the caller's generator state restored after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


# ---------------------------------------------------------------------------------- train
@dataclass
class TrainState:
    """What one call of :func:`train` works with: set up by :func:`setup`, restored by
    :func:`resume_from_checkpoint`, advanced by :func:`train_one_epoch` (``step``: the steps
    done so far, ``rows``: the history so far, ``t0``: the clock of the ``seconds`` column)."""

    cfg: TrainConfig
    model: nn.Module
    ddp_model: nn.Module  # ``model``, or its DistributedDataParallel wrapper
    dataset: object
    sampler: object
    loader: object
    steps_per_epoch: int
    device: torch.device
    amp_dtype: object  # the autocast dtype, None = fp32
    scaler: object
    phases: tuple  # () for a one-phase model
    optimizers: dict  # phase (None for a one-phase model) -> optimiser
    schedulers: dict  # phase -> LambdaLR
    full_config: dict  # stored in checkpoints under "config"
    ckpt_path: Path | None = None
    rank: int = 0
    world: int = 1
    start_epoch: int = 0
    step: int = 0
    rows: list = field(default_factory=list)
    t0: float = 0.0

    @property
    def names(self) -> tuple:
        """The phases in step order; ``(None,)``: the single optimiser of a one-phase model."""
        return self.phases or (None,)

    @property
    def main(self) -> bool:
        return self.rank == 0


def build_loader(dataset, cfg: TrainConfig, collate_fn: Callable, *, rank: int, world: int,
                 device: torch.device):
    """``(sampler, loader, steps_per_epoch)``: a ``DistributedSampler`` under DDP, else the
    per-epoch seeded shuffle (:class:`_EpochSampler`) or the dataset order (``shuffle=False``);
    ``steps_per_epoch`` capped by ``cfg.max_steps_per_epoch``. An empty set raises."""
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
    return sampler, loader, steps_per_epoch


def build_optimizers(model: nn.Module, cfg: TrainConfig, steps_per_epoch: int):
    """``(phases, optimizers, schedulers)``: one optimiser and schedule per phase of a model
    with ``phases`` (module doc), else one under the key ``None``."""
    phases = tuple(getattr(model, "phases", ()) or ())
    names = phases or (None,)
    optimizers = {ph: make_optimizer(model, cfg, ph) for ph in names}
    schedulers = {ph: make_scheduler(optimizers[ph], cfg, steps_per_epoch) for ph in names}
    return phases, optimizers, schedulers


def run_config(cfg: TrainConfig, model: nn.Module, extra_config: dict | None) -> dict:
    """The config a checkpoint stores: ``train`` (``cfg``), ``extra_config``, and the model's
    own ``config`` under ``model`` unless ``extra_config`` has one."""
    full_config = {"train": asdict(cfg), **(extra_config or {})}
    if "model" not in full_config and hasattr(model, "config"):
        full_config["model"] = dict(model.config)
    return full_config


def setup(model: nn.Module, dataset, cfg: TrainConfig, *, collate_fn: Callable, device=None,
          extra_config: dict | None = None) -> TrainState:
    """Join the process group, move the model to its device, and build AMP, the loader, the
    optimisers and schedules and (under DDP) the wrapper: a fresh :class:`TrainState`."""
    rank, world, local = init_distributed()
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() and world > 1 else runtime().device
    device = torch.device(device)
    model = model.to(device)
    amp_dtype = resolve_amp(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16
                                  and device.type == "cuda")
    sampler, loader, steps_per_epoch = build_loader(dataset, cfg, collate_fn, rank=rank,
                                                    world=world, device=device)
    phases, optimizers, schedulers = build_optimizers(model, cfg, steps_per_epoch)
    ddp_model = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters or bool(phases))
    return TrainState(
        cfg=cfg, model=model, ddp_model=ddp_model, dataset=dataset, sampler=sampler,
        loader=loader, steps_per_epoch=steps_per_epoch, device=device, amp_dtype=amp_dtype,
        scaler=scaler, phases=phases, optimizers=optimizers, schedulers=schedulers,
        full_config=run_config(cfg, model, extra_config),
        ckpt_path=Path(cfg.out_dir) / "last.pt" if cfg.out_dir else None, rank=rank, world=world)


def resume_from_checkpoint(state: TrainState, path) -> None:
    """Load the checkpoint ``path`` into ``state``: weights, optimiser and schedule states (the
    schedule then follows the recipe's, :func:`_follow_recipe_schedule`), the scaler, the next
    epoch, the step count and the history so far. One that does not fit raises
    :class:`IncompatibleCheckpointError` naming the settings that differ."""
    ckpt = load_checkpoint(path)
    saved = tuple(ckpt.get("phases") or ())
    if saved != state.phases:
        raise IncompatibleCheckpointError(
            f"{path}: checkpoint of a model with phases {saved or 'none'}, this model has "
            f"{state.phases or 'none'}")
    _check_fits(path, state.model, ckpt["model"], ckpt.get("config"), state.full_config)
    state.model.load_state_dict(ckpt["model"])
    _load_optimizer_states(state, ckpt, path)
    if ckpt.get("scaler"):
        state.scaler.load_state_dict(ckpt["scaler"])
    state.start_epoch, state.step = int(ckpt["epoch"]) + 1, int(ckpt["step"])
    state.rows = list(ckpt.get("history", []))
    log.info("resumed from %s at epoch %d (step %d)", path, state.start_epoch, state.step)


def _load_optimizer_states(state: TrainState, ckpt: dict, path) -> None:
    try:
        for ph in state.names:
            state.optimizers[ph].load_state_dict(ckpt["optimizer"][ph] if state.phases
                                                 else ckpt["optimizer"])
            state.schedulers[ph].load_state_dict(ckpt["scheduler"][ph] if state.phases
                                                 else ckpt["scheduler"])
            _follow_recipe_schedule(state.schedulers[ph], state.cfg, state.steps_per_epoch)
    except (ValueError, KeyError, RuntimeError) as exc:
        diff = config_diff(ckpt.get("config"), state.full_config, skip=())
        raise IncompatibleCheckpointError(
            f"{path}: the optimiser state does not fit this model ({exc}); the settings "
            f"differ in: {'; '.join(diff[:8]) or 'nothing stored'}. Resume with the "
            "checkpoint's settings, or start a new run (--overwrite, or another --out).") from exc


def _phase_losses(state: TrainState, phase, images, targets, row: dict):
    """Clear every gradient and run one phase forward under autocast: ``(losses, total,
    values)``, ``values`` the total and each loss as floats (averaged over processes)."""
    state.model.zero_grad(set_to_none=True)
    amp = state.amp_dtype
    with torch.autocast(state.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        losses = (state.ddp_model(images, targets, phase=phase) if state.phases
                  else state.ddp_model(images, targets))
    clash = sorted(set(losses) & set(row))
    if clash:
        raise ValueError(f"phase {phase!r} returns losses {clash} that another phase "
                         "(or the history) already has; name them apart")
    total = sum(v.float() for v in losses.values())
    values = torch.stack([total.detach()] + [v.detach().float() for v in losses.values()])
    d = _dist()
    if d is not None:
        d.all_reduce(values)
        values /= state.world
    return losses, total, values.tolist()


def check_finite(state: TrainState, phase, losses: dict, values: list, row: dict) -> None:
    """Raise :class:`NonFiniteLossError` naming the step, the losses and whether a checkpoint
    is kept when one of ``values`` is NaN/inf."""
    if all(math.isfinite(v) for v in values):
        return
    bad = {k: v for k, v in zip([f"loss_{phase}" if phase else "loss", *losses], values)}
    ckpt_path = state.ckpt_path
    where = (f"the last good checkpoint {ckpt_path} is kept" if ckpt_path
             and ckpt_path.is_file() else "no checkpoint was written yet")
    raise NonFiniteLossError(
        f"non-finite loss at epoch {row['epoch']}, step {row['step']}: {bad}; training "
        f"stopped ({where}). Lower the learning rate, turn AMP off, or check the "
        "data of this batch.")


def _backward_and_step(state: TrainState, phase, total) -> None:
    """Back-propagate ``total`` (scaled under fp16), clip the phase's gradients when
    ``grad_clip`` asks, step its optimiser and its schedule."""
    opt = state.optimizers[phase]
    state.scaler.scale(total).backward()
    if state.cfg.grad_clip:
        state.scaler.unscale_(opt)
        nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                 state.cfg.grad_clip)
    state.scaler.step(opt)
    state.schedulers[phase].step()


def optimisation_step(state: TrainState, images, targets, epoch: int) -> dict:
    """One step on one batch (module doc: every phase in order, each with its own optimiser),
    then the scaler's update. Appends the step's history row to ``state.rows`` and returns it:
    ``epoch, step, loss, [loss_<phase>], <each loss>, lr`` (the lr before the step),
    ``seconds``."""
    row = {"epoch": epoch + 1, "step": state.step + 1, "loss": 0.0}
    lr_now = max(g["lr"] for o in state.optimizers.values() for g in o.param_groups)
    for ph in state.names:
        losses, total, values = _phase_losses(state, ph, images, targets, row)
        check_finite(state, ph, losses, values, row)
        _backward_and_step(state, ph, total)
        row["loss"] += values[0]
        if state.phases:
            row[f"loss_{ph}"] = values[0]
        row.update({k: v for k, v in zip(losses, values[1:])})
    state.scaler.update()
    state.step += 1
    row["lr"] = lr_now
    row["seconds"] = time.perf_counter() - state.t0
    state.rows.append(row)
    return row


def train_one_epoch(state: TrainState, epoch: int, *, progress: bool = True,
                    on_step: Callable[[dict], None] | None = None) -> None:
    """Epoch ``epoch`` (0-based): seed it from ``(seed, epoch, rank)``, tell the sampler and
    the dataset (``set_epoch``), then :func:`optimisation_step` over at most
    ``steps_per_epoch`` batches, with a tqdm bar and ``on_step(row)`` on the main process."""
    from tqdm.auto import tqdm

    _seed_epoch(state.cfg.seed, epoch, state.rank)
    for obj in (state.sampler, state.dataset):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
    state.ddp_model.train()
    bar = tqdm(total=state.steps_per_epoch, desc=f"epoch {epoch + 1}/{state.cfg.epochs}",
               disable=not (progress and state.main), leave=False)
    try:
        for i, (images, targets) in enumerate(state.loader):
            if i >= state.steps_per_epoch:
                break
            images = _to_device(images, state.device)
            targets = _to_device(targets, state.device)
            row = optimisation_step(state, images, targets, epoch)
            if on_step is not None and state.main:
                on_step(dict(row))
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            bar.update(1)
    finally:
        bar.close()


def evaluate_epoch(state: TrainState, eval_fn: Callable | None, epoch: int) -> None:
    """``eval_fn(model, epoch + 1) -> dict`` on the main process (model in eval mode); its
    metrics go onto the epoch's last history row."""
    if eval_fn is None or not state.main:
        return
    state.model.eval()
    metrics = eval_fn(state.model, epoch + 1) or {}
    state.rows[-1].update({k: float(v) for k, v in metrics.items()})


def checkpoint_state(state: TrainState, epoch: int) -> dict:
    """What ``last.pt`` holds after ``epoch`` (module doc): ``model``, ``optimizer`` and
    ``scheduler`` (one state, or one per phase), ``phases``, ``scaler``, ``epoch``, ``step``,
    ``config`` and ``history``."""
    opt_state = {ph: o.state_dict() for ph, o in state.optimizers.items()}
    sched_state = {ph: sc.state_dict() for ph, sc in state.schedulers.items()}
    phases = state.phases
    return {
        "model": state.model.state_dict(),
        "optimizer": opt_state if phases else opt_state[None],
        "scheduler": sched_state if phases else sched_state[None], "phases": list(phases),
        "scaler": state.scaler.state_dict() if state.scaler.is_enabled() else {},
        "epoch": epoch, "step": state.step, "config": state.full_config, "history": state.rows,
    }


def save_epoch(state: TrainState, epoch: int) -> Path | None:
    """Write ``last.pt`` (atomically, main process only) after every ``save_every``-th epoch
    and the last one; returns its path when written."""
    cfg = state.cfg
    if state.ckpt_path is None or not state.main:
        return None
    if (epoch + 1) % cfg.save_every != 0 and epoch + 1 != cfg.epochs:
        return None
    return save_checkpoint(state.ckpt_path, checkpoint_state(state, epoch))


def _barrier() -> None:
    d = _dist()
    if d is not None:
        d.barrier()


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
    overwrite: bool = False,
):
    """Train ``model`` on ``dataset``; returns the history as a ``pandas.DataFrame``
    (one row per step: ``epoch, step, loss, <each loss>, lr, seconds``; the metrics of
    ``eval_fn(model, epoch) -> dict`` on the last row of each epoch).

    ``resume``: a checkpoint path, or ``True`` for ``<out_dir>/last.pt`` (which must exist).
    Without it an ``out_dir`` that already holds a run is refused (:class:`RunExistsError`)
    unless ``overwrite``: the earlier run's files are then moved to
    ``<out_dir>/replaced-<time>/`` once the new run is set up, just before its first step
    (:func:`check_run_dir`, :func:`set_aside_run`).
    ``extra_config`` (e.g. the model's config) is stored in checkpoints under ``config``;
    on resume it is compared with the checkpoint's to explain a checkpoint that does not fit
    (:class:`IncompatibleCheckpointError`).
    ``on_step(row)`` is called on the main process after every step with its history row
    (e.g. a live loss plot, :class:`tinylib.viz.LiveLosses`).

    The steps, in order: :func:`check_run_dir`, :func:`setup`, :func:`resume_from_checkpoint`,
    then per epoch :func:`train_one_epoch`, :func:`evaluate_epoch` and :func:`save_epoch`.
    """
    import pandas as pd

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    resume = check_run_dir(out_dir, resume=resume, overwrite=overwrite)  # before any work
    set_aside = resume is None and overwrite and bool(existing_run(out_dir))
    state = setup(model, dataset, cfg, collate_fn=collate_fn, device=device,
                  extra_config=extra_config)
    if state.main:
        clean_stale_tmp(out_dir)
    if resume:
        resume_from_checkpoint(state, resume)
    state.t0 = time.perf_counter()
    if set_aside and state.main:  # the new run is set up: only now move the old one aside
        set_aside_run(out_dir)
    _barrier()
    for epoch in range(state.start_epoch, cfg.epochs):
        train_one_epoch(state, epoch, progress=progress, on_step=on_step)
        evaluate_epoch(state, eval_fn, epoch)
        save_epoch(state, epoch)
        _barrier()
    state.model.eval()
    return pd.DataFrame(state.rows)
