"""Where a chapter's data comes from: the real data root when it holds the files, else the
embedded default (the synthetic world, which has the same layout), else nothing.

A notebook asks once, shows the answer, and passes ``source.root`` to the loaders::

    src = sources.choose(sources.WIDER_ANNOTATIONS, what="WIDER FACE annotations")
    print(src)            # says "real" or "synthetic" and, if synthetic, which files were missing
    faces = widerface.load_faces("train", root=src.root)

Data with no synthetic counterpart (ImageNet boxes, the published PR curves, the released
HR templates) use ``fallback=None``: ``src.available`` is then False and the notebook skips
those cells with the message ``str(src)``, recording its scorecard rows as
``not comparable``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .. import config

log = logging.getLogger(__name__)

WIDER_ANNOTATIONS = (
    "widerface/wider_face_train_bbx_gt.txt",
    "widerface/wider_face_val_bbx_gt.txt",
)
WIDER_IMAGES = WIDER_ANNOTATIONS + (
    "widerface/WIDER_train/images",
    "widerface/WIDER_val/images",
)  # the real train and val images in the official layout (annotations + image folders)
WIDER_EVAL = tuple(
    f"widerface/eval_gt/wider_{s}_val.mat" for s in ("face", "easy", "medium", "hard")
)
IMAGENET_BOXES = (
    "imagenet/ilsvrc2012_val_image_ids.txt",
    "imagenet/ilsvrc2012_val_class_labels.txt",
    "imagenet/ilsvrc2012_val_image_sizes.txt",
    "imagenet/ilsvrc2012_val_localization.txt",
    "imagenet/LOC_synset_mapping.txt",
)
HR_TEMPLATES = ("tinyfaces_hr/RefBox_N25.mat", "tinyfaces_hr/RefBox_N25_scaled.mat")
PR_CURVES = ("widerface/pr_curves/Val/setting_int/hr_res101/wider_pr_info_hr_res101_easy_val.mat",)
WIDER_SAMPLES = ("widerface/sample_images", "widerface/wider_face_val_bbx_gt.txt")
SELFIE = ("demo/selfie.jpg",)
FDDB = tuple(f"fddb/FDDB-fold-{i:02d}-ellipseList.txt" for i in range(1, 11))


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


def missing_files(relpaths, root: Path | None = None) -> tuple[str, ...]:
    """The ``relpaths`` that do not exist under ``root`` (default: the data root)."""
    base = Path(root) if root is not None else config.data_root(must_exist=False)
    return tuple(r for r in relpaths if not (base / r).exists())


def choose(relpaths, *, what: str = "data", fallback: str | None = "synthetic") -> Source:
    """The real data root if it has every file in ``relpaths``; otherwise the synthetic world
    (``fallback="synthetic"``, built or reused from the cache) or a ``missing`` source."""
    relpaths = tuple(relpaths)
    missing = missing_files(relpaths)
    if not missing:
        return Source(what, "real", config.data_root(), ())
    if fallback == "synthetic":
        from .synthetic import quick_world

        root = quick_world()
        log.warning("%s: real files missing (%s); using the synthetic world", what, missing[0])
        return Source(what, "synthetic", root, missing)
    if fallback is not None:
        raise ValueError(f"fallback must be 'synthetic' or None, got {fallback!r}")
    return Source(what, "missing", None, missing)
