"""The registry's errors: each names the file (and, for downloads, the URL) it is about.

``DataMissingError`` is a :class:`tinylib.config.DataRootError` (the data root lacks files);
``ChecksumError``, ``ExtractError`` and ``CatalogError`` are ``ValueError`` subclasses;
``DownloadError`` is an ``OSError``.
"""

from __future__ import annotations

from pathlib import Path

from tinylib.config import DataRootError

__all__ = [
    "DataRootError",
    "DataMissingError",
    "ChecksumError",
    "DownloadError",
    "ExtractError",
    "CatalogError",
]


class DataMissingError(DataRootError):
    """Files of a dataset are not under the data root; the message says how to get them."""

    def __init__(self, message: str, missing: list[Path] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])


class ChecksumError(ValueError):
    """A file's size or digest differs from the registry. ``.path``, ``.algo``,
    ``.expected``, ``.actual`` (hex digests)."""

    def __init__(self, message: str, path, algo: str, expected: str, actual: str):
        super().__init__(message)
        self.path = Path(path)
        self.algo = algo
        self.expected = expected
        self.actual = actual


class DownloadError(OSError):
    """A download failed (offline, HTTP error, HTML page, interrupted). ``.url``, ``.dest``."""

    def __init__(self, message: str, url: str, dest):
        super().__init__(message)
        self.url = url
        self.dest = Path(dest)

    def __str__(self) -> str:  # OSError's str() would show args in a tuple
        return self.args[0]


class ExtractError(ValueError):
    """An archive cannot be unpacked safely or lacks an expected member."""



class CatalogError(ValueError):
    """The dataset catalog (``registry_catalog.toml``) or the checksum table is malformed;
    the message names the file, the dataset entry and the field."""
