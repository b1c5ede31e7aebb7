"""Run-time configuration: where data lives, the tier, device and precision, seeding.

Nothing here has side effects at import time. Every function reads the environment when
it is called, so a notebook (or a test using ``monkeypatch.setenv``) can change a
variable and see the effect at once.

Environment variables
---------------------
``TINYLIB_DATA``    data root holding the real annotation files (``widerface/``, ``fddb/``...).
                    Default: ``<repo>/data`` next to the package (a source checkout).
``TINYLIB_CACHE``   cache directory for derived files (synthetic worlds, verified-checksum
                    stamps, detections). Default: ``$XDG_CACHE_HOME/tinylib`` or
                    ``~/.cache/tinylib``.
``TINYLIB_TIER``    how much work a chapter does, same code path in each (:func:`tier`):
                    ``quick`` (CI: seconds per chapter), ``cpu`` (a 2-core laptop: minutes per
                    chapter; the default without CUDA), ``full`` (the paper's scale; the
                    default with CUDA).
``TINYLIB_QUICK``   ``1`` = the ``quick`` tier (the older name, kept as an alias; ``0`` means
                    "not quick": the default tier). ``TINYLIB_TIER`` wins when both are set.
``TINYLIB_DEVICE``  force a device (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
"""

from __future__ import annotations

import logging
import os
import platform
import random
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class DataRootError(FileNotFoundError):
    """The data root (or a file under it) cannot be found; the message lists where we looked."""


def _env_flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"environment variable {name}={raw!r}: expected one of 1/0/true/false/yes/no")


TIERS = ("quick", "cpu", "full")
TIER_COSTS = {
    "quick": "seconds per chapter: tiny samples, a few steps (CI)",
    "cpu": "minutes per chapter on a 2-core laptop: small samples, short live runs",
    "full": "the paper's scale: every image, full training (a GPU machine; hours on a CPU)",
}


def _cuda_available() -> bool:
    try:
        import torch  # heavy: imported only when the default tier is asked for
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def tier() -> str:
    """The tier this process runs at: ``"quick"``, ``"cpu"`` or ``"full"``.

    ``TINYLIB_TIER`` when set; else ``quick`` when ``TINYLIB_QUICK`` is true; else ``full`` on
    a machine with CUDA and ``cpu`` without. Read at every call."""
    raw = os.environ.get("TINYLIB_TIER")
    if raw is not None and raw.strip():
        value = raw.strip().lower()
        if value not in TIERS:
            raise ValueError(
                f"environment variable TINYLIB_TIER={raw!r}: expected one of {', '.join(TIERS)}"
            )
        return value
    if _env_flag("TINYLIB_QUICK", default=False):
        return "quick"
    return "full" if _cuda_available() else "cpu"


def quick_mode() -> bool:
    """True in the ``quick`` tier (``TINYLIB_TIER=quick`` or ``TINYLIB_QUICK=1``)."""
    return tier() == "quick"


def pick(quick, cpu, full):
    """The value for this process's tier — the one way chapters and recipes size their work.

    ``pick(8, 60, None)``: 8 images in CI, 60 on a laptop, all of them at full scale. All
    three are required, so no chapter can forget the laptop."""
    return {"quick": quick, "cpu": cpu, "full": full}[tier()]


def data_root_candidates() -> list[Path]:
    """Where the data root is looked for, in order."""
    env = os.environ.get("TINYLIB_DATA")
    if env:
        return [Path(env).expanduser()]
    return [REPO_DIR / "data"]


def data_root(must_exist: bool = True) -> Path:
    """The directory holding real dataset files.

    ``TINYLIB_DATA`` wins; otherwise the repository's ``data/`` directory. With
    ``must_exist`` a missing directory raises :class:`DataRootError` naming every place
    looked at and how to fix it.
    """
    candidates = data_root_candidates()
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    if not must_exist:
        return candidates[0]
    looked = ", ".join(str(c) for c in candidates)
    source = "TINYLIB_DATA" if os.environ.get("TINYLIB_DATA") else "the default (no TINYLIB_DATA set)"
    raise DataRootError(
        f"data root not found: looked at {looked} (from {source}). Set TINYLIB_DATA to the "
        "directory holding widerface/, fddb/, imagenet/ ... (see data/README.md), or unset it "
        "to use the repository's data/ directory."
    )


def dataset_dir(
    name: str | None = None, root: str | os.PathLike | None = None, *, must_exist: bool = True
) -> Path:
    """Where a dataset's folder is: ``<root>/<name>``, where ``root`` is the explicit root
    when given, else :func:`data_root` (``must_exist`` is passed to it: a missing data root
    raises :class:`DataRootError`). ``name`` is the folder under the data root
    (``"widerface"``, ``"fddb"``, ``"imagenet32"`` ...); without it, the root itself. The
    one answer to "where is my data": every loader passes its ``root=`` argument here."""
    base = Path(root).expanduser() if root is not None else data_root(must_exist=must_exist)
    return base / name if name else base


def data_file(relpath: str | os.PathLike, required: bool = True) -> Path | None:
    """Path of ``relpath`` under the data root; ``None`` (or an error if ``required``) if absent."""
    root = data_root(must_exist=required)
    path = root / relpath
    if path.exists():
        return path
    if not required:
        return None
    raise DataRootError(
        f"{relpath} not found under the data root {root}. See `tinylib-data status` for "
        "where to obtain it and where to put it."
    )


def cache_dir(*parts: str, create: bool = True) -> Path:
    """A directory under the tinylib cache (``TINYLIB_CACHE``), created on demand."""
    env = os.environ.get("TINYLIB_CACHE")
    if env:
        base = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "tinylib"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def build_dir(*parts: str, create: bool = True) -> Path:
    """Where ``make run`` writes executed notebooks, figures and the scorecard
    (``TINYLIB_BUILD`` or ``<repo>/build``)."""
    env = os.environ.get("TINYLIB_BUILD")
    base = Path(env).expanduser() if env else REPO_DIR / "build"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Runtime:
    """The device picked once, and the autocast dtype that goes with it."""

    device: str
    amp_dtype: object  # torch.dtype or None (AMP off)

    @property
    def use_amp(self) -> bool:
        return self.amp_dtype is not None


def pick_device(prefer: str | None = None) -> str:
    """``TINYLIB_DEVICE`` (or ``prefer``) if given, else ``cuda`` > ``mps`` > ``cpu``."""
    import torch  # heavy: only when a device is asked for (config is imported by everything)

    choice = prefer or os.environ.get("TINYLIB_DEVICE")
    if choice:
        choice = choice.strip()
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} requested but CUDA is not available")
        if choice == "mps" and not (
            getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
        ):
            raise RuntimeError("device 'mps' requested but MPS is not available")
        torch.device(choice)  # validates the string
        return choice
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def amp_dtype_for(device: str):
    """Autocast dtype for ``device``: bf16 on CUDA if supported else fp16; fp16 on MPS; None on CPU.

    CPU training runs in fp32 by default (bf16 autocast on CPU is exercised by the tests
    but is slower than fp32 on most laptops)."""
    import torch  # heavy: see pick_device

    kind = torch.device(device).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "mps":
        return torch.float16
    return None


def runtime(prefer: str | None = None) -> Runtime:
    dev = pick_device(prefer)
    return Runtime(device=dev, amp_dtype=amp_dtype_for(dev))


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch explicitly. Call it yourself; nothing seeds at import."""
    # heavy: config is imported by everything (the data CLI too); these only when seeding
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 — seeds the legacy global RNG that user code may use
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def describe() -> dict:
    """A small summary for the tour notebook and bug reports."""
    # heavy: see seed_everything
    import numpy as np
    import torch
    import torchvision

    rt = runtime()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "device": rt.device,
        "amp_dtype": str(rt.amp_dtype) if rt.amp_dtype is not None else "off",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "tier": tier(),
        "quick_mode": quick_mode(),
        "data_root": str(data_root(must_exist=False)),
        "data_root_exists": data_root(must_exist=False).is_dir(),
        "cache_dir": str(cache_dir(create=False)),
    }
