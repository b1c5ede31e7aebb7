"""Atomic writes: whatever a user makes (results, caches, checkpoints) appears under its final
name complete or not at all.

Every writer goes to a temporary file in the destination's folder and is then moved into
place with ``os.replace`` (atomic on POSIX and Windows); on any error the temporary file is
removed and an existing file under the final name is left untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    For writers that want a file name (``np.savez``, ``torch.save``, ``scipy.io.savemat``).
    ``suffix`` keeps the extension some writers insist on (``np.savez`` appends ``.npz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and checkpoints are ordinary files
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_save(path: str | os.PathLike, writer: Callable[[Path], object], suffix: str = ".tmp") -> Path:
    """``writer(tmp_path)`` writes the file; it is then moved to ``path``."""
    with atomic_path(path, suffix=suffix) as tmp:
        writer(tmp)
    return Path(path)
