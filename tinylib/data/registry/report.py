"""The status report: each dataset's state under the data root (:func:`status`, one
:class:`~tinylib.data.registry.specs.DatasetStatus` per dataset; ``tinylib-data status``
prints it). A report never raises for a missing root."""

from __future__ import annotations

from tinylib import config

from .catalog import DATASETS, get
from .image_sets import _image_set_status
from .locating import _file_status
from .specs import MISMATCH, MISSING, UNVERIFIED, VERIFIED, DatasetStatus

__all__ = ["dataset_status", "status"]


def dataset_status(
    name: str, root=None, verify: bool = True, progress: bool = False
) -> DatasetStatus:
    """The state of one dataset (see :func:`status`)."""
    ds = get(name)
    base = config.dataset_dir(root=root, must_exist=False)
    if ds.images is not None:
        return _image_set_status(ds, base, verify, progress)
    files = [_file_status(base, s, verify) for s in ds.files]
    present = sum(f.state != MISSING for f in files)
    states = {f.state for f in files}
    if MISMATCH in states:
        state = MISMATCH
    elif MISSING in states:
        state = MISSING
    elif UNVERIFIED in states:
        state = UNVERIFIED
    else:
        state = VERIFIED
    hint = ""
    if state == MISSING:
        placed = [a.relpath for a in ds.archives if (base / a.relpath).is_file()]
        if placed:
            hint = f"{', '.join(placed)} present: run `tinylib-data fetch {ds.name}` to unpack"
    elif state == MISMATCH:
        bad = [f.relpath for f in files if f.state == MISMATCH]
        hint = f"bad checksum: {', '.join(bad[:3])}" + (" ..." if len(bad) > 3 else "")
    elif state == UNVERIFIED:
        hint = "no published checksum for some files"
    return DatasetStatus(ds.name, ds.title, state, present, len(files), ds.where(), hint, files)


def status(root=None, verify: bool = True, progress: bool = False) -> list[DatasetStatus]:
    """Each dataset's state under the data root: ``verified`` / ``present but unverified`` /
    ``missing`` / ``checksum mismatch``, with counts and where to get it. Never raises for
    a missing root (every dataset is then missing).

    Image sets (``kind == "images"``) count images, out of the full set: ``present`` of
    ``total`` (e.g. 374 of 3,226), ``verified`` when every image present matches the
    manifest, else ``present but unverified`` with the images that differ or are not in
    the manifest named in ``hint`` (and per image in ``files``)."""
    return [dataset_status(n, root=root, verify=verify, progress=progress) for n in DATASETS]

