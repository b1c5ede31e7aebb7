"""The conditions of the studies: :class:`StudySpec` (one condition), the budget of quick
and full mode (:func:`budget`) and the standard conditions of the paper's figures —
context (Fig. 4, :func:`context_specs`), foveal descriptors (Fig. 5, :func:`foveal_specs`)
and template resolution (Fig. 7, :func:`resolution_specs`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from .. import config

__all__ = [
    "SMALL_FACE",
    "LARGE_FACE",
    "STAGES",
    "StudySpec",
    "budget",
    "context_specs",
    "foveal_specs",
    "resolution_specs",
]

SMALL_FACE = (25, 20)  # the paper's "small" face, height x width
LARGE_FACE = (250, 200)  # the paper's "large" face, height x width
#: Stages of a study network, strides 2 .. 32 (see :class:`tinylib.studies.model.StudyNet`).
STAGES = ("s1", "s2", "s3", "s4", "s5")

@dataclass(frozen=True)
class StudySpec:
    """One condition of a fixed-size face study (see the module docstring).

    ``face_hw``: target face size (h, w) in the test image. ``resolution``: template
    resolution sigma (the template is built for ``sigma * face_hw``). ``context_factor``:
    window side / face side, in test-image pixels (the same image region for every sigma).
    ``context``: ``"loose"`` or ``"tight"`` (blank outside the face box grown by
    ``tight_margin`` on each side). ``layers``: stages read at the centre (``"s1"`` ..
    ``"s5"``, strides 2 .. 32)."""

    face_hw: tuple[int, int] = SMALL_FACE
    resolution: float = 1.0
    context: str = "loose"
    context_factor: float = 3.0
    tight_margin: float = 0.1
    layers: tuple[str, ...] = ("s2", "s3", "s4")
    arch: str = "tiny"
    width: int = 8
    steps: int = 60
    batch_size: int = 16
    lr: float = 2e-3
    n_train_pos: int = 128
    n_test_pos: int = 96
    neg_per_pos: int = 3
    test_neg_per_pos: int = 4
    scale_range: tuple[float, float] = (0.2, 5.0)

    def __post_init__(self):
        if self.context not in ("tight", "loose"):
            raise ValueError(f"context must be 'tight' or 'loose', got {self.context!r}")
        if self.resolution <= 0:
            raise ValueError(f"resolution must be > 0, got {self.resolution}")
        if not self.layers:
            raise ValueError("layers must name at least one stage")
        bad = [name for name in self.layers if name not in STAGES]
        if bad:
            raise ValueError(f"unknown layers {bad}; expected some of {list(STAGES)}")

    @property
    def template_hw(self) -> tuple[int, int]:
        """Face size the template is built for: ``round(sigma * face_hw)``."""
        return (round(self.face_hw[0] * self.resolution), round(self.face_hw[1] * self.resolution))

    @property
    def native_crop_hw(self) -> tuple[int, int]:
        """Window size in test-image pixels (even numbers)."""
        return tuple(int(2 * math.ceil(self.context_factor * s / 2)) for s in self.face_hw)

    @property
    def crop_hw(self) -> tuple[int, int]:
        """Window size the network sees (native window interpolated by sigma)."""
        return tuple(max(8, round(s * self.resolution)) for s in self.native_crop_hw)

    def data_key(self) -> tuple:
        """Conditions with the same key share the same sampled windows."""
        return (self.face_hw, self.resolution, self.context_factor, self.n_train_pos,
                self.n_test_pos, self.neg_per_pos, self.test_neg_per_pos, self.scale_range)

    def plan_key(self) -> tuple:
        """Conditions with the same key cut the same windows (same faces, positions, scales),
        possibly at different resolutions: the data key without the resolution."""
        key = self.data_key()
        return key[:1] + key[2:]


def budget() -> dict:
    """Sizes of the studies per tier — quick (CI, seconds), cpu (a laptop, minutes) and full
    (GPU): model, steps, windows, seeds, the "large" face (quick and cpu stand in 64x52 for
    250x200 to keep the
    windows small), context factors, the real WIDER images read per split
    (``n_train_images``/``n_test_images``, ``None`` = all with usable faces) and the synthetic
    scenes rendered per size.

    Five seeds in both modes: with two, a standard deviation is little more than the gap
    between two numbers, and a gain cannot be judged against it."""
    return config.pick(
        dict(arch="tiny", width=8, steps=60, batch_size=16, lr=3e-3, n_train_pos=192,
             n_test_pos=192, seeds=(0, 1, 2, 3, 4), large_face=(64, 52), small_context=3.0,
             large_context=1.6, n_train_images=60, n_test_images=40, n_train_scenes=40,
             n_test_scenes=30, image_size=(384, 288), persons={"small": 12, "large": 6},
             workers=1, threads=1),
        # cpu tier: a laptop, minutes — the quick networks, more windows and steps
        dict(arch="tiny", width=16, steps=200, batch_size=32, lr=3e-3, n_train_pos=600,
             n_test_pos=400, seeds=(0, 1, 2, 3, 4), large_face=(64, 52), small_context=3.0,
             large_context=1.6, n_train_images=150, n_test_images=80, n_train_scenes=80,
             n_test_scenes=40, image_size=(512, 384), persons={"small": 16, "large": 6},
             workers=1, threads=None),
        dict(arch="resnet18", width=64, steps=2000, batch_size=64, lr=1e-3, n_train_pos=4000,
             n_test_pos=1000, seeds=(0, 1, 2, 3, 4), large_face=LARGE_FACE, small_context=6.0,
             large_context=1.6, n_train_images=None, n_test_images=None, n_train_scenes=400,
             n_test_scenes=150, image_size=(1024, 768), persons={"small": 30, "large": 4},
             workers=os.cpu_count() or 1, threads=None),
    )


def _base(**overrides) -> StudySpec:
    b = budget()
    keys = ("arch", "width", "steps", "batch_size", "lr", "n_train_pos", "n_test_pos")
    return replace(StudySpec(**{k: b[k] for k in keys}), **overrides)


def _face(size: str) -> tuple[tuple[int, int], float]:
    b = budget()
    if size == "small":
        return SMALL_FACE, b["small_context"]
    if size == "large":
        return tuple(b["large_face"]), b["large_context"]
    raise ValueError(f"size must be 'small' or 'large', got {size!r}")


def context_specs(size: str) -> dict[str, StudySpec]:
    """Fig. 4: tight (object extent) versus loose (window of ``context_factor`` x the face)."""
    face, ctx = _face(size)
    return {c: _base(face_hw=face, context_factor=ctx, context=c) for c in ("tight", "loose")}


def foveal_specs(size: str) -> dict[str, StudySpec]:
    """Fig. 5: hypercolumn of s2+s3+s4 ("foveal") versus s4 only, both with loose context."""
    face, ctx = _face(size)
    return {
        "foveal": _base(face_hw=face, context_factor=ctx, layers=("s2", "s3", "s4")),
        "last_only": _base(face_hw=face, context_factor=ctx, layers=("s4",)),
    }


def resolution_specs(size: str) -> dict[str, StudySpec]:
    """Fig. 7: 1x versus 2x templates for small faces, 1x versus 0.5x for large ones.

    The window covers the same image region in both; the context factor is smaller than in
    the context study to keep the 2x windows affordable on a CPU."""
    face, _ = _face(size)
    if size == "small":
        return {
            "1x": _base(face_hw=face, context_factor=2.0, resolution=1.0),
            "2x": _base(face_hw=face, context_factor=2.0, resolution=2.0),
        }
    ctx = budget()["large_context"]
    return {
        "1x": _base(face_hw=face, context_factor=ctx, resolution=1.0),
        "0.5x": _base(face_hw=face, context_factor=ctx, resolution=0.5),
    }
