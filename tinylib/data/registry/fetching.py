"""Downloads and fetch: :func:`download` streams one URL to its place (tqdm bar, HTML-page
detection, size/checksum check, temporary name + atomic rename: on any failure nothing is
left under the destination), and :func:`fetch` obtains every missing or corrupt file of a
dataset: direct files downloaded (URL, then mirrors), archives taken from the data root when
placed there by hand or else downloaded, verified and unpacked
(:func:`~tinylib.data.registry.archives.extract`). What cannot be downloaded ends in a
:class:`DataMissingError` naming the exact place to put it by hand."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .archives import extract
from .catalog import get
from .digests import _CHUNK, _cache_put, verify_file
from .errors import ChecksumError, DataMissingError, DownloadError
from .locating import _file_status, _resolve_root, locate
from .specs import MISMATCH, MISSING, FileSpec

log = logging.getLogger(__name__)

__all__ = ["download", "fetch"]

_HTML_STARTS = (b"<!doctype html", b"<html")


# --------------------------------------------------------------------------- download
def _hand_hint(url: str, dest: Path) -> str:
    return f"Download {url} by hand (browser, another machine) and put it at {dest}"


def _looks_like_html(head: bytes) -> bool:
    return head[:1024].lstrip().lower().startswith(_HTML_STARTS)


def _open(url: str, dest: Path, timeout: float):
    """The response for ``url``; HTTP errors and unreachable servers raise
    :class:`DownloadError` naming the URL and where to put the file by hand."""
    req = urllib.request.Request(url, headers={"User-Agent": "tinylib-data/0.1"})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(
            f"cannot download {url}: HTTP {e.code} {e.reason}. {_hand_hint(url, dest)}.",
            url,
            dest,
        ) from e
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"cannot download {url} ({reason}): offline or the server is unreachable. "
            f"{_hand_hint(url, dest)}.",
            url,
            dest,
        ) from e


def _stream(resp, f, url: str, dest: Path, total: int | None, hashers: dict,
            expect_html: bool, progress: bool) -> int:
    """Copy the body of ``resp`` into the open file ``f``, hashing it on the way; returns the
    number of bytes. An interrupted read or an HTML page raises :class:`DownloadError`."""
    received = 0
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=dest.name,
        disable=not progress,
    ) as bar:
        while True:
            try:
                block = resp.read(_CHUNK)
            except (http.client.IncompleteRead, OSError, http.client.HTTPException) as e:
                raise DownloadError(
                    f"download of {url} interrupted after {received} of "
                    f"{total if total is not None else '?'} bytes ({e!r}); nothing "
                    f"was written to {dest}. Run the fetch again.",
                    url,
                    dest,
                ) from e
            if not block:
                break
            if received == 0 and not expect_html and _looks_like_html(block):
                raise DownloadError(
                    f"{url} served an HTML page instead of {dest.name} (the body "
                    f"starts with {block[:40]!r}): probably a login, consent or "
                    f"error page. {_hand_hint(url, dest)}.",
                    url,
                    dest,
                )
            f.write(block)
            for h in hashers.values():
                h.update(block)
            received += len(block)
            bar.update(len(block))
    return received


def _check_received(url: str, dest: Path, received: int, total: int | None) -> None:
    """A body shorter than its Content-Length, or an empty one, is an error."""
    if total is not None and received != total:
        raise DownloadError(
            f"download of {url} interrupted: received {received} of {total} bytes; "
            f"nothing was written to {dest}. Run the fetch again.",
            url,
            dest,
        )
    if received == 0:
        raise DownloadError(
            f"{url} returned an empty body; nothing written to {dest}", url, dest
        )


def _check_checksum(url: str, dest: Path, spec: FileSpec | None, digests: dict[str, str],
                    received: int) -> None:
    """The downloaded bytes against ``spec``'s size and checksum (:class:`ChecksumError`)."""
    if spec is None or spec.checksum is None:
        return
    algo, expected = spec.checksum
    size_bad = spec.size is not None and received != spec.size
    if digests[algo] != expected or size_bad:
        size_note = (
            f"; size expected {spec.size}, got {received} bytes" if size_bad else ""
        )
        raise ChecksumError(
            f"{dest}: checksum mismatch for {spec.relpath} downloaded from {url}: "
            f"expected {algo} {expected}, actual {digests[algo]}{size_note}. "
            f"Nothing was written to {dest}; the server may hold a different "
            f"version. {_hand_hint(url, dest)} if you trust another copy.",
            dest,
            algo,
            expected,
            digests[algo],
        )


def download(
    url: str,
    dest,
    spec: FileSpec | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Stream ``url`` to ``dest``: tqdm bar, HTML-page detection, size/checksum check
    against ``spec``, temporary name in the same directory + atomic rename. On any
    failure nothing is left under ``dest`` (a previous file there stays untouched)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    expect_html = dest.suffix.lower() in (".html", ".htm")
    resp = _open(url, dest, timeout)
    with resp:
        ctype = resp.headers.get("Content-Type", "") or ""
        if not expect_html and "text/html" in ctype.lower():
            raise DownloadError(
                f"{url} served an HTML page (Content-Type {ctype}) instead of {dest.name}: "
                f"probably a login, consent or error page. {_hand_hint(url, dest)}.",
                url,
                dest,
            )
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.strip().isdigit() else None
        algos = {"sha256"} | ({"md5"} if spec is not None and spec.md5 else set())
        hashers = {a: hashlib.new(a) for a in algos}
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                received = _stream(resp, f, url, dest, total, hashers, expect_html, progress)
                f.flush()
                os.fsync(f.fileno())
            _check_received(url, dest, received, total)
            digests = {a: h.hexdigest() for a, h in hashers.items()}
            _check_checksum(url, dest, spec, digests, received)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    _cache_put(dest, digests)
    log.info("downloaded %s -> %s (%d bytes)", url, dest, received)
    return dest


def _download_any(spec: FileSpec, dest: Path, progress: bool, timeout: float) -> Path:
    """Try the spec's URL, then its mirrors; the last error lists every URL tried."""
    errors = []
    urls = spec.urls
    for i, url in enumerate(urls):
        try:
            return download(url, dest, spec, progress=progress, timeout=timeout)
        except (DownloadError, ChecksumError) as e:
            if i + 1 < len(urls):
                log.warning("%s -- trying the next source", e)
            errors.append(e)
    if not errors:
        raise DataMissingError(f"{spec.relpath} has no download URL; place it at {dest}", [dest])
    if len(errors) == 1:
        raise errors[0]
    last = errors[-1]
    tried = "; ".join(f"{e.url if isinstance(e, DownloadError) else '?'}" for e in errors)
    msg = f"every source failed for {spec.relpath} (tried {tried}). Last error: {last}"
    if isinstance(last, ChecksumError):
        raise ChecksumError(msg, last.path, last.algo, last.expected, last.actual) from last
    raise DownloadError(msg, last.url, dest) from last



# --------------------------------------------------------------------------- fetch
def fetch(
    name: str,
    root=None,
    progress: bool = True,
    timeout: float = 60.0,
    force: bool = False,
) -> dict[str, Path]:
    """Obtain every missing (or corrupt) file of dataset ``name`` and return
    :func:`locate`'s mapping.

    Direct files are downloaded; archives are taken from the data root if already placed
    there, else downloaded, then verified and unpacked. Files that must be placed by hand
    end in a :class:`DataMissingError` naming the exact destination, after everything
    downloadable has been fetched. Offline, the :class:`DownloadError` names the URL and
    where to put the file by hand.
    """
    ds = get(name)
    base = _resolve_root(root)
    need: list[FileSpec] = []
    for spec in ds.files:
        bad = _file_status(base, spec, verify=True).state in (MISSING, MISMATCH)
        # with force, refetch what can be refetched; a good hand-placed file stays as is
        if bad or (force and (spec.source or spec.urls)):
            need.append(spec)
    hand: list[tuple[Path, str]] = []
    archives: list[str] = []
    for spec in need:
        dest = base / spec.relpath
        if spec.source:
            if spec.source not in archives:
                archives.append(spec.source)
        elif spec.urls:
            _download_any(spec, dest, progress, timeout)
        else:
            hand.append((dest, spec.note))
    for rel in archives:
        aspec = ds.archive(rel)
        apath = base / rel
        ok = False
        if apath.is_file():
            try:
                verify_file(apath, aspec, progress=progress)
                ok = True
            except ChecksumError:
                if not aspec.urls:
                    raise
                log.warning("%s has a bad checksum; downloading it again", apath)
        if not ok:
            if not aspec.urls:
                hand.append((apath, "archive" + (f"; {aspec.note}" if aspec.note else "")))
                continue
            _download_any(aspec, apath, progress, timeout)
        extract(apath, aspec, base, progress=progress)
    if hand:
        lines = "\n".join(f"  {p}" + (f"  ({note})" if note else "") for p, note in hand)
        raise DataMissingError(
            f"dataset {ds.name!r}: these must be placed by hand:\n{lines}\n"
            f"How to obtain: {ds.how_to_obtain}\nHomepage: {ds.homepage}\nTerms: {ds.terms}",
            [p for p, _ in hand],
        )
    return locate(name, base, verify=True)
