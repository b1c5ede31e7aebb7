"""Image sets: image folders the data root may hold only part of (the shared bundle has
1,239 of the 12,880 WIDER train and 374 of the 3,226 val images).

Every image present is checked (bytes + SHA-256) against the manifest
``widerface/wider_subset_manifest.csv`` (:func:`read_manifest`), itself checked against the
appendix table; the digests go to the digest cache, written once per pass.
:func:`present_images` lists the present, verified images of a split (or of one half of the
WIDER val subset, :mod:`tinylib.data.splits`)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .catalog import DATASETS, spec_for
from .digests import _digests
from .locating import _file_status, _resolve_root
from .specs import (
    MISMATCH,
    MISSING,
    UNVERIFIED,
    VERIFIED,
    Dataset,
    DatasetStatus,
    FileStatus,
    ImageSet,
)

log = logging.getLogger(__name__)

__all__ = ["read_manifest", "image_set", "present_images"]


def read_manifest(path, split: str | None = None) -> dict[str, tuple[int, str]]:
    """The rows of an image manifest (CSV ``split,image,bytes,sha256[,...]``) as
    ``{image: (bytes, sha256)}``, for one ``split`` or (``split=None``) keyed
    ``"split/image"``. A malformed row raises ``ValueError`` naming the file and line."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    need = ("split", "image", "bytes", "sha256")
    header = [h.strip() for h in lines[0].split(",")] if lines else []
    if any(h not in header for h in need):
        raise ValueError(
            f"{path}, line 1: expected a header with columns {', '.join(need)}, "
            f"got {lines[0] if lines else ''!r}"
        )
    col = {h: header.index(h) for h in need}
    out: dict[str, tuple[int, str]] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(header):
            raise ValueError(
                f"{path}, line {lineno}: expected {len(header)} comma-separated fields "
                f"({', '.join(header)}), found {len(cells)}: {line!r}"
            )
        sp, image, nbytes, digest = (cells[col[h]] for h in need)
        if not nbytes.isdigit():
            raise ValueError(f"{path}, line {lineno}: expected a byte count, got {nbytes!r}")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(
                f"{path}, line {lineno}: expected a sha256 of 64 lowercase hex digits, "
                f"got {digest!r}"
            )
        rel = PurePosixPath(image)
        if not image or rel.is_absolute() or ".." in rel.parts or "\\" in image:
            raise ValueError(
                f"{path}, line {lineno}: expected a relative image path 'event/file.jpg', "
                f"got {image!r}"
            )
        if split is not None and sp != split:
            continue
        key = image if split is not None else f"{sp}/{image}"
        if key in out:
            raise ValueError(f"{path}, line {lineno}: {sp} image {image} listed twice")
        out[key] = (int(nbytes), digest)
    return out


def image_set(split: str) -> Dataset:
    """The registry dataset holding the image set of ``split`` (``"train"``/``"val"``)."""
    for d in DATASETS.values():
        if d.images is not None and d.images.split == split:
            return d
    known = sorted(d.images.split for d in DATASETS.values() if d.images is not None)
    raise ValueError(f"no image set for split {split!r}; known: {', '.join(known)}")


def _list_images(folder: Path, exts: tuple[str, ...]) -> list[str]:
    """Image files under ``folder`` as sorted POSIX paths relative to it (hidden files and
    folders skipped)."""
    if not folder.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(folder)
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(exts):
                out.append((rel / f).as_posix())
    return sorted(out)


@dataclass
class _ImageScan:
    present: list[str]
    states: dict[str, tuple[str, str]]  # image -> (state, detail)
    problem: str = ""  # why nothing could be verified (no / bad manifest, not checked)

    def with_state(self, state: str) -> list[str]:
        return [k for k in self.present if self.states[k][0] == state]


def _scan_images(base: Path, iset: ImageSet, verify: bool, progress: bool = False) -> _ImageScan:
    folder = base / iset.folder
    present = _list_images(folder, iset.exts)
    scan = _ImageScan(present, {k: (UNVERIFIED, "") for k in present})
    if not present:
        return scan
    if not verify:
        scan.problem = "not checked"
        scan.states = {k: (UNVERIFIED, "not checked") for k in present}
        return scan
    mpath = base / iset.manifest
    mstate = _file_status(base, spec_for(iset.manifest)[1], verify=True)
    if mstate.state == MISSING:
        scan.problem = f"no manifest ({iset.manifest} missing): no checksum to check against"
    elif mstate.state == MISMATCH:
        scan.problem = f"the manifest {iset.manifest} itself has a bad checksum"
    if scan.problem:
        scan.states = {k: (UNVERIFIED, scan.problem) for k in present}
        return scan
    rows = read_manifest(mpath, iset.split)
    to_hash: list[tuple[str, Path, str]] = []
    for key in present:
        row = rows.get(key)
        if row is None:
            scan.states[key] = (UNVERIFIED, f"not in the manifest {iset.manifest}")
            continue
        path = folder / key
        size = path.stat().st_size
        if size != row[0]:
            scan.states[key] = (
                MISMATCH,
                f"{path}: size expected {row[0]} bytes (manifest), found {size}",
            )
            continue
        to_hash.append((key, path, row[1]))
    digests = _digests([p for _, p, _ in to_hash], "sha256", progress=progress)
    for (key, path, expected), actual in zip(to_hash, digests):
        if actual == expected:
            scan.states[key] = (VERIFIED, "")
        else:
            scan.states[key] = (
                MISMATCH,
                f"{path}: sha256 expected {expected} (manifest), actual {actual}",
            )
    return scan


def _shown(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def _image_set_status(ds: Dataset, base: Path, verify: bool, progress: bool) -> DatasetStatus:
    iset = ds.images
    assert iset is not None
    scan = _scan_images(base, iset, verify, progress)
    if not scan.present:
        files = [FileStatus(iset.folder, base / iset.folder, MISSING)]
        placed = [a.relpath for a in ds.archives if (base / a.relpath).is_file()]
        hint = (
            f"{', '.join(placed)} present: run `tinylib-data fetch {ds.name}` to unpack"
            if placed
            else ""
        )
        return DatasetStatus(
            ds.name, ds.title, MISSING, 0, iset.total, ds.where(), hint, files, iset.label, "images"
        )
    files = [
        FileStatus(f"{iset.folder}/{k}", base / iset.folder / k, *scan.states[k])
        for k in scan.present
    ]
    bad = scan.with_state(MISMATCH)
    unknown = scan.with_state(UNVERIFIED)
    if scan.problem:
        hint = scan.problem
    else:
        parts = []
        if bad:
            verb = "differs" if len(bad) == 1 else "differ"
            parts.append(f"{len(bad)} {verb} from the manifest: {_shown(bad)}")
        if unknown:
            parts.append(f"{len(unknown)} not in the manifest: {_shown(unknown)}")
        hint = "; ".join(parts)
    # a manifest is the bundle's list, not a published checksum: images that do not match
    # it are "present but unverified" (named in the hint), never a broken dataset
    state = UNVERIFIED if (bad or unknown) else VERIFIED
    return DatasetStatus(
        ds.name,
        ds.title,
        state,
        len(scan.present),
        iset.total,
        ds.where(),
        hint,
        files,
        iset.label,
        "images",
    )


def present_images(
    split: str = "val", root=None, *, verified: bool = True, progress: bool = False,
    half: str | None = None,
) -> list[str]:
    """The images of ``split`` present under the data root, ``"event/name.jpg"``, sorted.

    ``half="tuning"|"test"`` (val only): just that half of the WIDER val subset, by the split
    the project ships (:mod:`tinylib.data.splits`, ``wider_val_split.csv``): choices are made
    on the tuning half, headline numbers reported on the test half.

    With ``verified=True`` (default) only those whose bytes and SHA-256 match the subset
    manifest (a warning says how many present images were left out and why); with
    ``verified=False`` every image file present. Digests are cached (see :func:`status`), so
    a second call costs one ``stat`` per image. Raises :class:`DataRootError` when the data
    root does not exist, ``ValueError`` for a split without an image set."""
    if half is not None:
        from ..splits import half_keys

        if split != "val":
            raise ValueError(f"half={half!r}: the tuning/test split is of the val images, not {split!r}")
        keep = {k.rsplit(".", 1)[0] for k in half_keys(half)}
        every = present_images(split, root, verified=verified, progress=progress)
        return [k for k in every if k.rsplit(".", 1)[0] in keep]
    iset = image_set(split).images
    assert iset is not None
    base = _resolve_root(root)
    scan = _scan_images(base, iset, verify=verified, progress=progress)
    if not verified:
        return list(scan.present)
    ok = scan.with_state(VERIFIED)
    left = [k for k in scan.present if scan.states[k][0] != VERIFIED]
    if left:
        why = scan.problem or scan.states[left[0]][1]
        log.warning(
            "%s: %d of %d present image(s) not verified, left out (e.g. %s: %s)",
            iset.label,
            len(left),
            len(scan.present),
            left[0],
            why,
        )
    return ok

