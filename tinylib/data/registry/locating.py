"""Locating files under the data root (``TINYLIB_DATA``, or a ``root=`` argument through
``tinylib.config.dataset_dir``): :func:`locate` (every content file of a dataset, verified),
:func:`find` (one file, or a path inside a registered folder), and the per-file state the
status report and :func:`~tinylib.data.registry.fetching.fetch` start from. A missing file
raises :class:`DataMissingError` saying which dataset provides it and how to obtain it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from tinylib import config
from tinylib.config import DataRootError

from .catalog import DATASETS, get, spec_for
from .digests import verify_file
from .errors import ChecksumError, DataMissingError
from .specs import MISMATCH, MISSING, UNVERIFIED, VERIFIED, Dataset, FileSpec, FileStatus

__all__ = ["locate", "find"]


def _resolve_root(root) -> Path:
    """The data root (or ``root``), which must be a directory (resolved)."""
    if root is None:
        return config.data_root()
    p = config.dataset_dir(root=root)
    if not p.is_dir():
        raise DataRootError(
            f"data root not found: {p} is not a directory. Create it or point root/"
            "TINYLIB_DATA at the directory holding widerface/, fddb/, ... (see data/README.md)."
        )
    return p.resolve()


def _present(path: Path, spec: FileSpec) -> bool:
    if spec.kind == "dir":
        return path.is_dir() and any(path.iterdir())
    return path.is_file()


def _missing_message(ds: Dataset, root: Path, missing: list[FileSpec]) -> str:
    shown = "\n".join(f"  {root / s.relpath}" for s in missing[:12])
    more = f"\n  ... and {len(missing) - 12} more" if len(missing) > 12 else ""
    archives = {s.source for s in missing if s.source}
    placed = [a for a in archives if (root / a).is_file()]
    hint = ""
    if placed:
        hint = (
            f"\nThe archive {', '.join(str(root / a) for a in placed)} is there but not "
            f"unpacked: run `tinylib-data fetch {ds.name}` to verify and unpack it."
        )
    return (
        f"dataset {ds.name!r} ({ds.title}): {len(missing)} of {len(ds.files)} file(s) "
        f"missing under the data root {root}:\n{shown}{more}{hint}\n"
        f"How to obtain: {ds.how_to_obtain}\nHomepage: {ds.homepage}\nTerms: {ds.terms}"
    )


def locate(name: str, root=None, verify: bool = True) -> dict[str, Path]:
    """Paths of every content file of dataset ``name`` under the data root, verified.

    Raises :class:`DataRootError` if the root does not exist, :class:`DataMissingError`
    listing the missing files and how to obtain them, :class:`ChecksumError` for a file
    whose checksum differs. Directories (image folders) are checked for presence only.
    """
    ds = get(name)
    base = _resolve_root(root)
    found: dict[str, Path] = {}
    missing: list[FileSpec] = []
    for spec in ds.files:
        path = base / spec.relpath
        if not _present(path, spec):
            missing.append(spec)
            continue
        if verify:
            verify_file(path, spec)
        found[spec.relpath] = path
    if missing:
        raise DataMissingError(
            _missing_message(ds, base, missing), [base / s.relpath for s in missing]
        )
    return found


def find(relpath: str, root=None, verify: bool = True) -> Path:
    """Path of one file under the data root, verified if the registry knows its checksum.

    Paths inside a registered directory (``widerface/WIDER_val/images/...``) are checked
    for presence; the error for a missing one says which dataset provides it.
    """
    base = _resolve_root(root)
    rel = PurePosixPath(relpath).as_posix()
    path = base / rel
    hit = spec_for(rel)
    if hit is not None:
        ds, spec = hit
        if not _present(path, spec):
            raise DataMissingError(_missing_message(ds, base, [spec]), [path])
        if verify:
            verify_file(path, spec)
        return path
    if path.exists():
        return path
    owner = None
    for d in DATASETS.values():
        for s in d.files:
            if s.kind == "dir" and rel.startswith(s.relpath + "/"):
                owner = d
    where = (
        f" It belongs to dataset {owner.name!r}: {owner.how_to_obtain}"
        if owner
        else " See `tinylib-data status` for what is where."
    )
    raise DataMissingError(f"{rel} not found under the data root {base} ({path}).{where}", [path])


def _file_status(base: Path, spec: FileSpec, verify: bool) -> FileStatus:
    path = base / spec.relpath
    if not _present(path, spec):
        return FileStatus(spec.relpath, path, MISSING)
    if not verify:
        return FileStatus(spec.relpath, path, UNVERIFIED, "not checked")
    try:
        state = verify_file(path, spec)
    except ChecksumError as e:
        return FileStatus(spec.relpath, path, MISMATCH, str(e))
    detail = "" if state == VERIFIED else "no published checksum"
    return FileStatus(spec.relpath, path, state, detail)

