"""Where a chapter's data comes from: the real data root when it holds the files, else the
embedded default (the synthetic world, which has the same layout), else nothing.

A notebook names the registry dataset it needs, shows the answer, and passes
``source.root`` to the loaders::

    src = sources.choose("widerface_eval")
    print(src)            # says "real" or "synthetic" and, if synthetic, which files were missing
    gt = widerface.load_eval_gt(root=src.root)

The registry (:mod:`tinylib.data.registry`, its catalog ``registry_catalog.toml``) is the
one place that knows which files a dataset has; :func:`choose` checks those. A tuple of
dataset names asks for all of them. The constants below (``WIDER_ANNOTATIONS`` ...) name
*parts* of datasets, for chapters that need only some of a dataset's files; they are
derived from the registry where possible, and :func:`choose` accepts them (and any tuple
mixing dataset names and relative paths) as before.

Data with no synthetic counterpart (ImageNet boxes, the published PR curves, the released
HR templates) use ``fallback=None``: ``src.available`` is then False and the notebook skips
those cells with the message ``str(src)``, recording its scorecard rows as
``not comparable``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import config
from . import registry, synthetic

log = logging.getLogger(__name__)

# Parts of registry datasets (relative paths under the data root).
WIDER_ANNOTATIONS = tuple(
    sorted(r for r in registry.files_of("widerface_annotations") if r.endswith("_bbx_gt.txt"))
)  # train, val
WIDER_IMAGES = WIDER_ANNOTATIONS + registry.files_of(
    "widerface_train_images", "widerface_val_images"
)  # the real train and val images in the official layout (annotations + image folders)
WIDER_EVAL = registry.files_of("widerface_eval")
IMAGENET_BOXES = registry.files_of("imagenet_val_boxes")
HR_TEMPLATES = tuple(r for r in registry.files_of("tinyfaces_hr") if r.endswith(".mat"))
PR_CURVES = ("widerface/pr_curves/Val/setting_int/hr_res101/wider_pr_info_hr_res101_easy_val.mat",)
WIDER_SAMPLES = ("widerface/sample_images", "widerface/wider_face_val_bbx_gt.txt")
SELFIE = ("demo/selfie.jpg",)
FDDB = tuple(r for r in registry.files_of("fddb") if r.endswith("-ellipseList.txt"))


def required_files(dataset: str | Iterable[str]) -> tuple[str, ...]:
    """The relative paths ``dataset`` stands for: a registry dataset name gives the files
    the registry lists for it; a tuple may mix dataset names and relative paths (a path
    has a ``/``, a name never does). Unknown names raise ``ValueError`` listing the known
    ones."""
    items = (dataset,) if isinstance(dataset, str) else tuple(dataset)
    out: list[str] = []
    for item in items:
        rels = (item,) if "/" in item else registry.files_of(item)
        out.extend(r for r in rels if r not in out)
    return tuple(out)


@dataclass(frozen=True)
class Source:
    """The answer of :func:`choose`: a root (or None), its kind and why."""

    what: str
    kind: str  # "real", "synthetic" or "missing"
    root: Path | None
    missing: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.root is not None

    @property
    def is_real(self) -> bool:
        return self.kind == "real"

    def __str__(self) -> str:
        if self.kind == "real":
            return f"{self.what}: real files under {self.root}"
        why = f"real files missing under {config.data_root(must_exist=False)}: " + ", ".join(
            self.missing[:3]
        ) + (" ..." if len(self.missing) > 3 else "")
        if self.kind == "synthetic":
            return (
                f"{self.what}: using the SYNTHETIC world at {self.root} ({why}). Set "
                "TINYLIB_DATA to the real data root to run this on real data."
            )
        return (
            f"{self.what}: not available, skipping ({why}). See `tinylib-data status` for "
            "where to get it."
        )


def missing_files(dataset, root: Path | None = None) -> tuple[str, ...]:
    """The files of ``dataset`` (see :func:`required_files`) that do not exist under
    ``root`` (default: the data root)."""
    base = config.dataset_dir(root=root, must_exist=False)
    return tuple(r for r in required_files(dataset) if not (base / r).exists())


def choose(dataset, *, what: str | None = None, fallback: str | None = "synthetic") -> Source:
    """The real data root if it has every file of ``dataset`` (a registry dataset name, or
    a tuple of names and/or relative paths, see :func:`required_files`); otherwise the
    synthetic world (``fallback="synthetic"``, built or reused from the cache) or a
    ``missing`` source. ``what`` names the data in messages (default: the dataset's title)."""
    if fallback not in ("synthetic", None):
        raise ValueError(f"fallback must be 'synthetic' or None, got {fallback!r}")
    if what is None:
        what = registry.get(dataset).title if isinstance(dataset, str) else "data"
    missing = missing_files(dataset)
    if not missing:
        return Source(what, "real", config.data_root(), ())
    if fallback == "synthetic":
        root = synthetic.quick_world()
        log.warning("%s: real files missing (%s); using the synthetic world", what, missing[0])
        return Source(what, "synthetic", root, missing)
    return Source(what, "missing", None, missing)
