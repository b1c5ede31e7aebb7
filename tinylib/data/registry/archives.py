"""Archives: :func:`extract` unpacks a verified zip or tar under the data root, either chosen
members to their relpaths (each verified, via a temporary name) or the whole tree through a
temporary folder moved into place. Unsafe member paths (absolute, ``..``, links out of the
tree) raise :class:`ExtractError` and nothing lands."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from .catalog import spec_for
from .digests import _CHUNK, verify_file
from .errors import ExtractError
from .locating import _resolve_root
from .specs import FileSpec

__all__ = ["extract"]


def _safe_member(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise ExtractError(f"{archive}: unsafe member path {name!r} (absolute or with '..')")
    return p


def _open_archive(path: Path):
    if zipfile.is_zipfile(path):
        return "zip", zipfile.ZipFile(path)
    if tarfile.is_tarfile(path):
        return "tar", tarfile.open(path)
    raise ExtractError(f"{path}: expected a zip or tar archive, found neither")


def _member_names(kind: str, arc) -> list[str]:
    if kind == "zip":
        return [i.filename for i in arc.infolist() if not i.is_dir()]
    return [m.name for m in arc.getmembers() if m.isfile()]


def _read_member(kind: str, arc, name: str):
    if kind == "zip":
        return arc.open(name)
    f = arc.extractfile(name)
    if f is None:
        raise ExtractError(f"{name}: not a regular file in the archive")
    return f


def _extract_members(path: Path, spec: FileSpec, base: Path) -> list[Path]:
    kind, arc = _open_archive(path)
    out = []
    with arc:
        names = _member_names(kind, arc)
        for member, rel in spec.members:
            name = member if member in names else None
            if name is None:  # tolerate a different top-level folder name
                base_name = member.rsplit("/", 1)[-1]
                cands = [n for n in names if n.rsplit("/", 1)[-1] == base_name]
                if len(cands) != 1:
                    raise ExtractError(
                        f"{path}: expected member {member!r}, found "
                        f"{cands or 'no such member'} among {len(names)} members"
                    )
                name = cands[0]
            _safe_member(name, path)
            dest = base / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as f, _read_member(kind, arc, name) as src:
                    shutil.copyfileobj(src, f, _CHUNK)
                sub = spec_for(rel)
                if sub is not None:
                    verify_file(tmp, sub[1], use_cache=False)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            out.append(dest)
    return out


def _move_into(src: Path, dest: Path) -> None:
    """Move the tree ``src`` into ``dest``: one rename when ``dest`` is absent, else entry
    by entry (files replace files of the same name; nothing else in ``dest`` is touched)."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        return
    if not dest.is_dir():
        raise ExtractError(f"{dest}: expected a directory to unpack into, found a file")
    for entry in list(src.iterdir()):
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink():
            _move_into(entry, target)
        else:
            os.replace(entry, target)


def extract(archive, spec: FileSpec, root=None, progress: bool = True) -> list[Path]:
    """Unpack a verified archive under the data root.

    ``spec.members``: copy those members to their relpaths (each via a temporary name).
    ``spec.extract_to``: unpack everything into a temporary directory next to the target,
    drop a leading ``spec.strip`` folder, then move it into place (a single rename when the
    target does not exist yet). Unsafe member paths (absolute, ``..``, links out of the
    tree) are refused. Returns the written paths (members) or ``[target dir]``.
    """
    archive = Path(archive)
    base = _resolve_root(root)
    if spec.members:
        return _extract_members(archive, spec, base)
    if spec.extract_to is None:
        raise ValueError(f"{spec.relpath}: not an archive spec (no extract_to or members)")
    dest = base / spec.extract_to
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extract", dir=dest.parent))
    try:
        kind, arc = _open_archive(archive)
        with arc:
            if kind == "zip":
                infos = arc.infolist()
                for info in tqdm(infos, desc=f"unpack {archive.name}", disable=not progress):
                    _safe_member(info.filename, archive)
                    arc.extract(info, tmpdir)
            else:
                members = arc.getmembers()
                for m in tqdm(members, desc=f"unpack {archive.name}", disable=not progress):
                    _safe_member(m.name, archive)
                    try:
                        arc.extract(m, tmpdir, filter="data")
                    except tarfile.FilterError as e:
                        raise ExtractError(f"{archive}: refused member {m.name!r} ({e})") from e
        content = tmpdir
        entries = list(tmpdir.iterdir())
        if (
            spec.strip
            and len(entries) == 1
            and entries[0].name == spec.strip
            and entries[0].is_dir()
        ):
            content = entries[0]
        _move_into(content, dest)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return [dest]

