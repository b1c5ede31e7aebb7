"""The registry's records: what a file, an image set and a dataset are, and the state of each
under the data root (``VERIFIED``, ``UNVERIFIED``, ``MISSING``, ``MISMATCH``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "VERIFIED",
    "UNVERIFIED",
    "MISSING",
    "MISMATCH",
    "FileSpec",
    "ImageSet",
    "Dataset",
    "FileStatus",
    "DatasetStatus",
]

VERIFIED = "verified"
UNVERIFIED = "present but unverified"
MISSING = "missing"
MISMATCH = "checksum mismatch"


@dataclass(frozen=True)
class FileSpec:
    """One file (or directory) under the data root.

    ``relpath`` is POSIX-style, relative to the data root. A *content* spec is what the
    loaders read; an *archive* spec (``extract_to`` or ``members`` set) is a download
    vehicle unpacked into content. ``source`` names the archive a content spec comes out
    of. ``kind="dir"`` entries (image folders) are checked for presence only.
    """

    relpath: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    url: str | None = None
    mirrors: tuple[str, ...] = ()
    kind: str = "file"
    source: str | None = None
    extract_to: str | None = None
    strip: str | None = None
    members: tuple[tuple[str, str], ...] = ()
    note: str = ""

    def __post_init__(self):
        if self.kind not in ("file", "dir"):
            raise ValueError(f"{self.relpath}: kind must be 'file' or 'dir', got {self.kind!r}")
        p = PurePosixPath(self.relpath)
        if p.is_absolute() or ".." in p.parts or "\\" in self.relpath:
            raise ValueError(f"{self.relpath}: relpath must be relative, POSIX, without '..'")
        for algo, n in (("sha256", 64), ("md5", 32)):
            v = getattr(self, algo)
            if v is not None and (len(v) != n or any(c not in "0123456789abcdef" for c in v)):
                raise ValueError(f"{self.relpath}: {algo} must be {n} lowercase hex digits")

    @property
    def is_archive(self) -> bool:
        return self.extract_to is not None or bool(self.members)

    @property
    def checksum(self) -> tuple[str, str] | None:
        """``(algo, hexdigest)`` to verify against: sha256 if known, else md5, else None."""
        if self.sha256:
            return ("sha256", self.sha256)
        if self.md5:
            return ("md5", self.md5)
        return None

    @property
    def urls(self) -> tuple[str, ...]:
        return ((self.url,) if self.url else ()) + tuple(self.mirrors)


@dataclass(frozen=True)
class ImageSet:
    """A folder of images of which the data root may hold any part.

    ``folder`` (relative to the data root) holds ``<event>/<file>.jpg``; ``total`` is the
    size of the full set (WIDER val: 3,226). Each image present is verified against the
    rows of ``split`` in ``manifest`` (a registered CSV ``split,image,bytes,sha256,...``
    whose own checksum is in the appendix table). ``label`` names the set in reports
    (``"WIDER val images"``)."""

    split: str
    folder: str
    manifest: str
    total: int
    label: str
    exts: tuple[str, ...] = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Dataset:
    """A named group of files. ``files`` are the content specs, ``archives`` the download
    vehicles they come out of. ``downloadable`` is True when :func:`fetch` can obtain every
    content file without a person in the loop. ``images`` makes the dataset an image set
    (:class:`ImageSet`): its status counts and verifies the images present one by one."""

    name: str
    title: str
    files: tuple[FileSpec, ...]
    homepage: str
    terms: str
    downloadable: bool
    how_to_obtain: str
    archives: tuple[FileSpec, ...] = ()
    images: ImageSet | None = None
    by_hand: str = ""  # where to get it by hand, when not from the homepage

    def archive(self, relpath: str) -> FileSpec:
        for a in self.archives:
            if a.relpath == relpath:
                return a
        raise KeyError(f"dataset {self.name!r} has no archive {relpath!r}")

    def where(self) -> str:
        """One line: how to get the missing files."""
        if self.downloadable:
            return f"`tinylib-data fetch {self.name}` ({self.homepage})"
        if any(s.urls for s in self.files + self.archives):
            return f"partly `tinylib-data fetch {self.name}`, rest by hand (see data/README.md)"
        return f"by hand: {self.by_hand or self.homepage} (see data/README.md)"


@dataclass
class FileStatus:
    relpath: str
    path: Path
    state: str
    detail: str = ""


@dataclass
class DatasetStatus:
    name: str
    title: str
    state: str
    present: int
    total: int
    where: str
    hint: str = ""
    files: list[FileStatus] = field(default_factory=list)
    label: str = ""  # image sets: "WIDER val images"
    kind: str = "files"  # "files" or "images" (an image set: present/total count images)

    @property
    def summary(self) -> str:
        """One line: ``WIDER val images: 374 of 3,226 present, verified`` (image sets; the
        hint follows when the state is not ``verified``)."""
        what = self.label or self.name
        unit = "" if self.kind == "images" else " files"
        line = f"{what}: {self.present:,} of {self.total:,}{unit} present, {self.state}"
        if self.hint and self.state != VERIFIED:
            line += f" ({self.hint})"
        return line

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "state": self.state,
            "present": self.present,
            "total": self.total,
            "where": self.where,
            "hint": self.hint,
        }
        if self.kind == "images":
            d["summary"] = self.summary
        d["files"] = [
            {"relpath": f.relpath, "path": str(f.path), "state": f.state, "detail": f.detail}
            for f in self.files
        ]
        return d

