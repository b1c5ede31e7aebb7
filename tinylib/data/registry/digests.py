"""File digests and checksums: :func:`file_digest` (SHA-256 or MD5), :func:`verify_file`
against a :class:`~tinylib.data.registry.specs.FileSpec`, and the digest cache.

Digests are cached by (resolved path, size, mtime) in ``digests.json`` under
``tinylib.config.cache_dir("verified")``, so verifying an unchanged file again is one
``stat``. ``_mem_cache`` holds the file's contents per process (tests reset it with
``monkeypatch.setattr(registry.digests, "_mem_cache", {})``); many digests at once
(:func:`_digests`, the images of an image set) write the cache once, not once per file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

from tqdm.auto import tqdm

from tinylib import config
from tinylib.io import atomic_write_text

from .errors import ChecksumError
from .specs import UNVERIFIED, VERIFIED, FileSpec

log = logging.getLogger(__name__)

__all__ = ["file_digest", "verify_file"]

_CHUNK = 1 << 20  # bytes read (and downloaded, copied out of archives) at a time

_cache_lock = threading.Lock()
_mem_cache: dict[str, dict[str, dict]] = {}


def _cache_file() -> Path:
    return config.cache_dir("verified") / "digests.json"


def _cache_load(cf: Path) -> dict[str, dict]:
    key = str(cf)
    if key not in _mem_cache:
        try:
            data = json.loads(cf.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable verification cache %s (%s)", cf, e)
            data = {}
        _mem_cache[key] = data
    return _mem_cache[key]


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _cache_get(path: Path, algo: str) -> str | None:
    name, size, mtime = _stat_key(path)
    with _cache_lock:
        entry = _cache_load(_cache_file()).get(name)
    if entry and entry.get("size") == size and entry.get("mtime_ns") == mtime:
        return entry.get(algo)
    return None


def _cache_update(data: dict, key: tuple[str, int, int], digests: dict[str, str]) -> None:
    name, size, mtime = key
    entry = data.get(name)
    if not entry or entry.get("size") != size or entry.get("mtime_ns") != mtime:
        entry = {"size": size, "mtime_ns": mtime}
    entry.update(digests)
    data[name] = entry


def _cache_write(cf: Path, data: dict) -> None:
    """Write the whole cache atomically (caller holds ``_cache_lock``)."""
    try:
        atomic_write_text(cf, json.dumps(data, indent=0, sort_keys=True))
    except OSError as e:  # a cache that cannot be written only costs time
        log.warning("cannot write verification cache %s (%s)", cf, e)


def _cache_put(path: Path, digests: dict[str, str]) -> None:
    key = _stat_key(path)
    cf = _cache_file()
    with _cache_lock:
        data = _cache_load(cf)
        _cache_update(data, key, digests)
        _cache_write(cf, data)


def _digests(paths: list[Path], algo: str = "sha256", progress: bool = False) -> list[str]:
    """Digests of many files (the images of an image set): cached ones from the cache,
    the others hashed, then the cache written once (not once per file)."""
    cf = _cache_file()
    keys = [_stat_key(p) for p in paths]  # before hashing: a file changed meanwhile re-hashes
    out: list[str | None] = [None] * len(paths)
    with _cache_lock:
        data = _cache_load(cf)
        for i, (name, size, mtime) in enumerate(keys):
            entry = data.get(name)
            if entry and entry.get("size") == size and entry.get("mtime_ns") == mtime:
                out[i] = entry.get(algo)
    todo = [i for i, d in enumerate(out) if not d]
    for i in tqdm(todo, desc=f"{algo} images", unit="file", disable=not progress or len(todo) < 50):
        out[i] = _hash_file(paths[i], algo)
    if todo:
        with _cache_lock:
            data = _cache_load(cf)
            for i in todo:
                _cache_update(data, keys[i], {algo: out[i]})
            _cache_write(cf, data)
    return out  # type: ignore[return-value]


def file_digest(path, algo: str = "sha256", use_cache: bool = True, progress: bool = False) -> str:
    """Hex digest of a file (``sha256`` or ``md5``), cached by (path, size, mtime)."""
    path = Path(path)
    if algo not in ("sha256", "md5"):
        raise ValueError(f"unsupported digest {algo!r}: expected 'sha256' or 'md5'")
    if use_cache:
        cached = _cache_get(path, algo)
        if cached:
            return cached
    digest = _hash_file(path, algo, progress)
    if use_cache:
        _cache_put(path, {algo: digest})
    return digest


def _hash_file(path: Path, algo: str, progress: bool = False) -> str:
    h = hashlib.new(algo)
    size = path.stat().st_size
    with (
        open(path, "rb") as f,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"{algo} {path.name}",
            disable=not progress or size < (64 << 20),
        ) as bar,
    ):
        while block := f.read(_CHUNK):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def verify_file(path, spec: FileSpec, use_cache: bool = True, progress: bool = False) -> str:
    """Check ``path`` against ``spec``: returns ``VERIFIED`` or ``UNVERIFIED`` (no checksum
    known); raises ``FileNotFoundError`` if absent and :class:`ChecksumError` (naming the
    file, the expected and the actual digest) if the size or digest differs."""
    path = Path(path)
    if spec.kind == "dir":
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: expected a directory ({spec.relpath}), found none")
        return UNVERIFIED
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected the file {spec.relpath}, found none")
    want = spec.checksum
    if want is None:
        return UNVERIFIED
    algo, expected = want
    actual = file_digest(path, algo, use_cache=use_cache, progress=progress)
    size = path.stat().st_size
    if actual != expected or (spec.size is not None and size != spec.size):
        size_note = (
            f"; size expected {spec.size} bytes, found {size}"
            if spec.size is not None and size != spec.size
            else ""
        )
        raise ChecksumError(
            f"{path}: checksum mismatch for {spec.relpath}: expected {algo} {expected}, "
            f"actual {actual}{size_note}. The file is corrupt, truncated or a different "
            "version: delete it and run `tinylib-data fetch` again, or copy it again "
            "from its source.",
            path,
            algo,
            expected,
            actual,
        )
    return VERIFIED

