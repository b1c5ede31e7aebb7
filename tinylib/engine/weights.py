"""The one inference-checkpoint format of tinylib's detectors (``weights.pt``).

A weights file is a ``torch.save`` dict (read back with ``weights_only=True``)::

    {"format": "tinylib-weights/1",   # FORMAT
     "family": "hr" | "frcnn" | "gan", # which registered builder rebuilds the model
     "config": {...},                 # the model's config: the family's builder takes it
     "model":  {name: tensor},        # the state dict; floating tensors float16 when half=True
     "meta":   {...}}                 # the caller's meta (recipe, steps, ...) + "precision"

:func:`save` writes one atomically (:func:`tinylib.io.atomic_save`); :func:`load` rebuilds the
model (eval mode, floating tensors back in float32) through the builder its family registered.
The engine sits below the detectors and imports none of them: each detector module registers its
family when it is imported (:func:`register_family`: ``tinylib.hr.detect``, ``tinylib.frcnn.detect``,
``tinylib.gan.detector``).

Older files load unchanged (:func:`read` recognises them by their keys; nothing is rewritten):

* ``{"format": "tinylib.hr/1", "config", "model", "meta"}`` -- family ``hr``
  (``hr_mnet025_wider.pt``, ``hr_res18_synth.pt``);
* ``{"format": "tinylib.frcnn/1", "config", "model", "meta"}`` -- family ``frcnn``;
* ``{"config", "state_dict", "meta"}`` (no format) -- family ``gan`` (``gan_wider.pt``);
* a :mod:`tinylib.engine` training checkpoint (``last.pt``: ``model``, ``config`` with the
  model's config under ``config["model"]``, ``optimizer``, ...) -- the family given by
  ``family=``, else the one registered family whose ``recognise(config)`` accepts it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..io import atomic_save

__all__ = [
    "FORMAT",
    "LEGACY_FORMATS",
    "Family",
    "Weights",
    "WeightsError",
    "register_family",
    "families",
    "expected",
    "read",
    "save",
    "load",
    "state_for_saving",
]

#: the format string of every weights file written by :func:`save`
FORMAT = "tinylib-weights/1"
#: the format strings of the layouts before :data:`FORMAT` and the family each one held
LEGACY_FORMATS = {"tinylib.hr/1": "hr", "tinylib.frcnn/1": "frcnn"}
#: the family of the format-less ``{"config", "state_dict", "meta"}`` layout (the GAN's)
LEGACY_STATE_DICT_FAMILY = "gan"
#: where each of tinylib's families registers itself (for error messages only: nothing is imported)
HOMES = {"hr": "tinylib.hr.detect", "frcnn": "tinylib.frcnn.detect", "gan": "tinylib.gan.detector"}


class WeightsError(ValueError):
    """A file that is not (readable) tinylib weights, or not of the family asked for; the
    message names the file and what was expected."""


@dataclass(frozen=True)
class Family:
    """A registered model family: ``build(config) -> nn.Module`` rebuilds an untrained model
    from the ``config`` stored in the file (no pretrained weights: they are in the state
    dict; a bad config raises ``ValueError``); ``config_of(model) -> dict`` is what
    :func:`save` stores; ``recognise(config) -> bool`` tells a training checkpoint's model
    config of this family from the others'; ``label`` names it in messages ("HR"); ``saver``
    is the public writer of its files (named in messages)."""

    name: str
    build: Callable[[dict], nn.Module]
    config_of: Callable[[nn.Module], dict]
    recognise: Callable[[dict], bool] | None = None
    label: str = ""
    saver: str = ""


@dataclass
class Weights:
    """What a weights file holds, whatever its layout: ``family``, the model ``config``, the
    ``state`` dict as stored (fp16 or fp32), ``meta``, and ``layout`` (:data:`FORMAT`, a
    legacy format string, ``"state_dict"`` or ``"training checkpoint"``)."""

    path: Path
    family: str
    config: dict
    state: dict
    meta: dict = field(default_factory=dict)
    layout: str = FORMAT


_FAMILIES: dict[str, Family] = {}


def register_family(name: str, build: Callable[[dict], nn.Module], *,
                    config_of: Callable[[nn.Module], dict] | None = None,
                    recognise: Callable[[dict], bool] | None = None,
                    label: str | None = None, saver: str = "") -> Family:
    """Register (or re-register, e.g. after a module reload) the builder of family ``name``.
    ``config_of`` defaults to ``dict(model.config)``. A second registration of ``name`` by a
    different function raises ``ValueError``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"family name must be an identifier, got {name!r}")
    old = _FAMILIES.get(name)
    if old is not None and _qualname(old.build) != _qualname(build):
        raise ValueError(f"weights family {name!r} is already registered by {_qualname(old.build)}; "
                         f"refusing {_qualname(build)}")
    fam = Family(name=name, build=build, config_of=config_of or (lambda model: dict(model.config)),
                 recognise=recognise, label=label or name, saver=saver)
    _FAMILIES[name] = fam
    return fam


def families() -> dict[str, Family]:
    """The registered families by name (a copy)."""
    return dict(_FAMILIES)


def _qualname(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _label(family: str) -> str:
    fam = _FAMILIES.get(family)
    return fam.label if fam else family


def _tinylib(family: str | None, noun: str) -> str:
    """``"tinylib HR checkpoint"`` for family ``hr``, ``"tinylib checkpoint"`` for none."""
    return f"tinylib {_label(family)} {noun}" if family else f"tinylib {noun}"


def expected(family: str | None = None) -> str:
    """What a weights file must be (of ``family``, or of any family), for error messages."""
    fam = _FAMILIES.get(family) if family else None
    by = f" ({fam.saver} or tinylib.engine.weights.save)" if fam and fam.saver else \
        " (tinylib.engine.weights.save or a detector's save_weights)"
    return (f"a PyTorch checkpoint written by torch.save (a zip file) holding "
            f"{_tinylib(family, 'weights')}{by}: format {FORMAT!r}, one of the older layouts "
            f"({', '.join(map(repr, LEGACY_FORMATS))}, a GAN 'state_dict' file), or a "
            "tinylib.engine training checkpoint (last.pt)")


def _need(family: str) -> Family:
    fam = _FAMILIES.get(family)
    if fam is None:
        home = f"; import {HOMES[family]} first (it registers it)" if family in HOMES else ""
        known = ", ".join(sorted(_FAMILIES)) or "none"
        raise WeightsError(f"unknown weights family {family!r} (registered: {known}){home}")
    return fam


# ------------------------------------------------------------------------------ write
def state_for_saving(model: nn.Module, *, half: bool = True) -> dict:
    """The model's state dict on the CPU, detached; floating tensors in float16 if ``half``."""
    return {k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
            for k, v in model.state_dict().items()}


def save(model: nn.Module, path: str | os.PathLike, *, family: str, half: bool = True,
         meta: dict | None = None) -> Path:
    """Write ``model``'s weights file (module docstring) atomically; returns ``path``.

    ``family`` must be registered (so the file can be loaded back); ``half`` stores floating
    tensors as float16 (half the size; :func:`load` casts them back to float32); ``meta`` is
    stored as given, with ``meta["precision"]`` (``"float16"``/``"float32"``) added unless set."""
    fam = _need(family)
    meta = dict(meta or {})
    meta.setdefault("precision", "float16" if half else "float32")
    obj = {"format": FORMAT, "family": fam.name, "config": fam.config_of(model),
           "model": state_for_saving(model, half=half), "meta": meta}
    path = Path(path)
    atomic_save(path, lambda tmp: torch.save(obj, tmp))
    return path


# ------------------------------------------------------------------------------- read
def _read_checkpoint(path: Path, family: str | None) -> object:
    """``torch.load`` (weights only) with an error that names the file and what was expected
    instead of pickle's or miniz's internals."""
    if path.is_dir():
        raise WeightsError(f"{path} is a folder; expected {expected(family)}")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head.startswith(b"PK\x03\x04") and not head.startswith(b"\x80"):
        if not head:
            found = "an empty file"
        elif head.isascii():
            lines = head.decode().splitlines()
            found = f"a text file starting {(lines[0] if lines else '')[:40]!r}"
        else:
            found = f"a binary file starting {head[:8]!r}"
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({found}); expected {expected(family)}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, foreign pickle: torch raises many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path}: cannot read the checkpoint ({type(exc).__name__}: {first}); the file is "
            f"truncated or corrupt, or not {expected(family)}. Copy or re-export it"
        ) from None


def _identify(path: Path, obj: dict, family: str | None) -> tuple[str | None, str]:
    """``(family or None, layout)`` of a loaded checkpoint dict, by its keys."""
    fmt = obj.get("format")
    if fmt == FORMAT:
        fam = obj.get("family")
        if not isinstance(fam, str):
            raise WeightsError(f"{path}: a {FORMAT!r} file without a family (found {fam!r})")
        return fam, FORMAT
    if fmt in LEGACY_FORMATS:
        return LEGACY_FORMATS[fmt], fmt
    if fmt is not None:
        raise WeightsError(f"{path}: unknown weights format {fmt!r}; this tinylib reads {FORMAT!r} "
                           f"and {', '.join(map(repr, LEGACY_FORMATS))} (a newer tinylib wrote it?)")
    if "state_dict" in obj and "config" in obj:
        return LEGACY_STATE_DICT_FAMILY, "state_dict"
    if "model" in obj and "config" in obj:  # a tinylib.engine training checkpoint
        return None, "training checkpoint"
    found = sorted(map(str, obj))[:12]
    raise WeightsError(f"{path}: not a {_tinylib(family, 'checkpoint')} (needs 'format', 'config' "
                       f"and 'model', found keys {found}); expected {expected(family)}")


def read(path: str | os.PathLike, *, family: str | None = None) -> Weights:
    """The contents of a weights file or training checkpoint (:class:`Weights`), its family
    found from the file (``family=`` checks it, and names the family of a training checkpoint).
    Raises ``FileNotFoundError`` for a missing file and :class:`WeightsError` (a
    ``ValueError``) naming the file for anything that is not such a checkpoint of ``family``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{_label(family) + ' ' if family else ''}weights not found: {path}")
    obj = _read_checkpoint(path, family)
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: not a {_tinylib(family, 'checkpoint')} (a "
                           f"{type(obj).__name__}, not a dict); expected {expected(family)}")
    found, layout = _identify(path, obj, family)
    state_key = "state_dict" if layout == "state_dict" else "model"
    cfg, state = obj.get("config"), obj.get(state_key)
    if not isinstance(cfg, dict):
        raise WeightsError(f"{path}: checkpoint config is a {type(cfg).__name__}, expected a dict")
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: checkpoint {state_key!r} is a {type(state).__name__}, "
                           "expected a state dict")
    if layout == "training checkpoint":
        cfg = cfg.get("model", cfg)  # the engine stores the model's config under "model"
        if not isinstance(cfg, dict):
            raise WeightsError(f"{path}: training checkpoint's config['model'] is a "
                               f"{type(cfg).__name__}, expected a dict")
        found = _recognise(path, cfg, family)
    if family is not None and found != family:
        raise WeightsError(f"{path} holds {_label(found)} weights (family {found!r}), not "
                           f"{_label(family)} (family {family!r}); load it with "
                           f"tinylib.engine.weights.load(path) or its family's loader")
    meta = obj.get("meta", {})
    return Weights(path=path, family=found, config=dict(cfg), state=state,
                   meta=dict(meta) if isinstance(meta, dict) else {"meta": meta}, layout=layout)


def _recognise(path: Path, cfg: dict, family: str | None) -> str:
    """The family of a training checkpoint's model config: ``family`` unless another registered
    family (and not it) recognises the config; without ``family`` the one that recognises it."""
    fits = [f.name for f in _FAMILIES.values() if f.recognise is not None and f.recognise(cfg)]
    if family is not None:
        fam = _FAMILIES.get(family)
        mine = fam is None or fam.recognise is None or fam.recognise(cfg)
        return family if mine or len(fits) != 1 else fits[0]
    if len(fits) == 1:
        return fits[0]
    keys = sorted(map(str, cfg))[:12]
    why = (f"it fits several families ({', '.join(fits)})" if fits else
           f"no registered family ({', '.join(sorted(_FAMILIES)) or 'none'}) recognises its model "
           f"config (keys {keys})")
    raise WeightsError(f"{path}: a training checkpoint whose family cannot be told: {why}; "
                       "pass family= (or use the family's loader)")


# ------------------------------------------------------------------------------- load
def _float_state(state: dict) -> dict:
    """Floating tensors back in float32, DDP's ``module.`` prefix removed."""
    return {k[len("module."):] if k.startswith("module.") else k:
            (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def load(path: str | os.PathLike, *, device=None, family: str | None = None) -> nn.Module:
    """The model in a weights file or training checkpoint, rebuilt by its family's builder,
    floating tensors in float32, on ``device`` (default CPU), in eval mode. ``family=``
    refuses a file of another family. Errors as :func:`read`, plus :class:`WeightsError` for a
    family that no module registered and for a config or state dict that does not build."""
    w = read(path, family=family)
    fam = _need(w.family)
    try:
        model = fam.build(dict(w.config))
    except ValueError as exc:
        raise WeightsError(f"{w.path}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise WeightsError(f"{w.path}: its config does not build a {fam.label} model "
                           f"({type(exc).__name__}: {exc})") from exc
    try:
        model.load_state_dict(_float_state(w.state))
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        raise WeightsError(f"{w.path}: the weights do not fit the model its config describes "
                           f"({lines[0] if lines else exc}...); the file was edited or mixes two "
                           "models") from None
    return model.to(device or "cpu").eval()
