"""The synthetic tiny-face world: scenes with real faces, written in the real layouts.

Two parts, one public face (``from tinylib.data.synthetic import X`` works for every name
below):

* :mod:`~tinylib.data.synthetic.scene` — the **scene painter**: face-size distributions,
  the shipped face crops and backgrounds, persons and hard negatives, and
  :func:`render_scene` (one image with its face and person tables);
* :mod:`~tinylib.data.synthetic.worlds` — the **world writers**: :func:`make_world` /
  :func:`quick_world` render many scenes and write a *data root* laid out exactly like the
  real one (WIDER FACE text, split and eval MAT files, TinyPerson COCO json, ``world.json``),
  so every loader and evaluator of tinylib runs unchanged on it.
"""

from __future__ import annotations

from . import scene, worlds
from .scene import *  # noqa: F403 -- the package's public face is its two parts' names
from .worlds import *  # noqa: F403

__all__ = [*scene.__all__, *worlds.__all__]
