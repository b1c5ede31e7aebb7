"""The dataset catalog: ``registry_catalog.toml`` read and validated, the checksum table
``registry_files.json`` it draws sizes and SHA-256 from, and the lookups over the result.

Both files sit in ``tinylib/data/``, beside this package. :func:`load_catalog` reads the
catalog; every malformed file, entry or field raises :class:`CatalogError` naming the file,
the dataset and the field. The validator is :class:`_Catalog`, one small method per part of
an entry (header, keys and types, URL, terms, checksum, file list, image set, dataset).
:data:`DATASETS` is the catalog read once at import; :func:`get`, :func:`files_of` and
:func:`spec_for` look things up in it.
"""

from __future__ import annotations

import json
import tomllib
import urllib.parse
from pathlib import Path, PurePosixPath

from .errors import CatalogError
from .specs import Dataset, FileSpec, ImageSet

__all__ = [
    "TABLE_PATH",
    "CATALOG_PATH",
    "load_catalog",
    "DATASETS",
    "get",
    "files_of",
    "spec_for",
]

_DATA_DIR = Path(__file__).parent.parent  # tinylib/data
TABLE_PATH = _DATA_DIR / "registry_files.json"
CATALOG_PATH = _DATA_DIR / "registry_catalog.toml"


def _load_table(path: Path = TABLE_PATH) -> dict[str, dict]:
    """The checksum table ``{relpath: {"size": int, "sha256": hex}}`` (SOURCES.md appendix)."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CatalogError(
            f"{path}: cannot read the checksum table ({e}); regenerate it with "
            "`python tools/make_registry_table.py ../shared/data/SOURCES.md`"
        ) from e
    if not isinstance(table, dict):
        raise CatalogError(f"{path}: expected a JSON object {{relpath: {{size, sha256}}}}")
    for rel, row in table.items():
        if not (isinstance(row, dict) and isinstance(row.get("size"), int)
                and isinstance(row.get("sha256"), str)):
            raise CatalogError(f"{path}: row {rel!r}: expected {{\"size\": int, \"sha256\": str}}")
    return table


_DATASET_KEYS = {
    "name": str, "title": str, "homepage": str, "terms": (str, list), "downloadable": bool,
    "how_to_obtain": str, "by_hand": str, "images": dict, "files": list, "archives": list,
}
_DATASET_REQUIRED = ("name", "title", "homepage", "terms", "downloadable", "how_to_obtain",
                     "files")
_IMAGES_KEYS = {"split": str, "folder": str, "manifest": str, "total": int, "label": str}
_FILE_KEYS = {
    "relpath": str, "size": int, "sha256": str, "md5": str, "url": (str, dict),
    "mirrors": list, "kind": str, "source": str, "extract_to": str, "strip": str,
    "members": list, "note": str, "checksum": str, "table_prefix": str,
}


class _Catalog:
    """Reads one catalog file; every error names the file, the entry and the field."""

    def __init__(self, path: Path, table: dict[str, dict]):
        self.path = path
        self.table = table
        self.github: dict[str, tuple[str, str]] = {}
        self.terms: dict[str, str] = {}

    def fail(self, where: str, msg: str) -> CatalogError:
        return CatalogError(f"{self.path}: {where}: {msg}")

    # ------------------------------------------------------------------ keys and header
    def check_keys(self, where: str, entry, allowed: dict, required=()) -> None:
        if not isinstance(entry, dict):
            raise self.fail(where, f"expected a table, found {type(entry).__name__}")
        for key, value in entry.items():
            if key not in allowed:
                raise self.fail(
                    where, f"unknown field {key!r} (expected one of {', '.join(allowed)})"
                )
            want = allowed[key]
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
                raise self.fail(where, f"field {key!r} must be {names}, found {value!r}")
        for key in required:
            if key not in entry:
                raise self.fail(where, f"missing field {key!r}")

    def read_header(self, doc: dict) -> None:
        github = doc.get("github", {})
        if not isinstance(github, dict):
            raise self.fail("[github]", "expected a table of name = [repository, commit]")
        for key, value in github.items():
            if not (isinstance(value, list) and len(value) == 2
                    and all(isinstance(v, str) for v in value)):
                raise self.fail(f"[github].{key}", f"expected [repository, commit], found {value!r}")
            self.github[key] = (value[0], value[1])
        terms = doc.get("terms", {})
        if not isinstance(terms, dict) or not all(isinstance(v, str) for v in terms.values()):
            raise self.fail("[terms]", "expected a table of name = text")
        self.terms = dict(terms)
        extra = set(doc) - {"github", "terms", "dataset"}
        if extra:
            raise self.fail("top level", f"unknown table(s) {', '.join(sorted(extra))}")

    # ------------------------------------------------------------------ field values
    def url(self, where: str, value, fields: dict[str, str] | None = None) -> str:
        if isinstance(value, str):
            return value
        if set(value) != {"github", "path"} or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(where, f"field 'url' must be a URL or {{ github = ..., path = ... }}, "
                                   f"found {value!r}")
        try:
            repo, commit = self.github[value["github"]]
        except KeyError:
            raise self.fail(where, f"url: unknown github name {value['github']!r} (known: "
                                   f"{', '.join(sorted(self.github))})") from None
        path = value["path"]
        if fields is not None:
            try:
                path = path.format(**fields)
            except (KeyError, IndexError, ValueError) as e:
                raise self.fail(where, f"url path {path!r}: only {{name}} and {{rest}} may be "
                                       f"used ({e!r})") from None
        return f"https://raw.githubusercontent.com/{repo}/{commit}/{urllib.parse.quote(path)}"

    def text(self, where: str, terms) -> str:
        parts = [terms] if isinstance(terms, str) else terms
        out = []
        for part in parts:
            if not isinstance(part, str):
                raise self.fail(where, f"field 'terms': parts must be strings, found {part!r}")
            if part.startswith("@"):
                if part[1:] not in self.terms:
                    raise self.fail(where, f"field 'terms': unknown reference {part!r} (known: "
                                           f"{', '.join('@' + k for k in sorted(self.terms))})")
                part = self.terms[part[1:]]
            out.append(part)
        return " ".join(out)

    def table_row(self, where: str, entry: dict, relpath: str) -> dict:
        """``size`` and ``sha256`` of ``relpath`` from the checksum table (``checksum = "table"``)."""
        if entry["checksum"] != "table":
            raise self.fail(where, f"field 'checksum' must be \"table\", found "
                                   f"{entry['checksum']!r}")
        if any(k in entry for k in ("size", "sha256", "md5")):
            raise self.fail(where, "checksum = \"table\" and size/sha256/md5 both given")
        row = self.table.get(relpath)
        if row is None:
            raise self.fail(where, f"checksum = \"table\" but {TABLE_PATH.name} has no row "
                                   f"for {relpath!r}")
        return {"size": row["size"], "sha256": row["sha256"]}

    def mirrors(self, where: str, mirrors: list) -> tuple[str, ...]:
        if not all(isinstance(m, str) for m in mirrors):
            raise self.fail(where, "field 'mirrors' must be a list of URLs")
        return tuple(mirrors)

    def members(self, where: str, members: list) -> tuple[tuple[str, str], ...]:
        if not all(isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m)
                   for m in members):
            raise self.fail(where, "field 'members' must be a list of [member, relpath]")
        return tuple((a, b) for a, b in members)

    # ------------------------------------------------------------------ files and datasets
    def spec(self, where: str, entry: dict, url_fields: dict | None = None, **override) -> FileSpec:
        kw = {k: v for k, v in entry.items() if k not in ("checksum", "table_prefix")}
        kw.update(override)
        if entry.get("checksum") is not None:
            kw.update(self.table_row(where, entry, kw["relpath"]))
        if "url" in kw:
            kw["url"] = self.url(where, kw["url"], url_fields)
        if "mirrors" in kw:
            kw["mirrors"] = self.mirrors(where, kw["mirrors"])
        if "members" in kw:
            kw["members"] = self.members(where, kw["members"])
        try:
            return FileSpec(**kw)
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    def prefix_specs(self, here: str, entry: dict, archives: bool) -> list[FileSpec]:
        """A ``table_prefix`` entry: one spec per row of the checksum table under the prefix."""
        if archives or "relpath" in entry or "checksum" in entry:
            raise self.fail(here, "a table_prefix entry (files only) takes no relpath "
                                  "or checksum: every row under the prefix is listed")
        prefix = entry["table_prefix"]
        rels = sorted(k for k in self.table if k.startswith(prefix))
        if not rels:
            raise self.fail(here, f"table_prefix {prefix!r} matches no row of "
                                  f"{TABLE_PATH.name}")
        base = {k: v for k, v in entry.items() if k != "table_prefix"}
        out = []
        for rel in rels:
            fields = {"name": rel.rsplit("/", 1)[-1], "rest": rel[len(prefix):]}
            out.append(self.spec(f"{here} ({rel})", {**base, "checksum": "table"},
                                 url_fields=fields, relpath=rel))
        return out

    def specs(self, where: str, entries: list, archives: bool) -> list[FileSpec]:
        out: list[FileSpec] = []
        for i, entry in enumerate(entries):
            here = f"{where} {'archives' if archives else 'files'}[{i}]"
            if isinstance(entry, dict) and isinstance(entry.get("relpath"), str):
                here += f" ({entry['relpath']})"
            self.check_keys(here, entry, _FILE_KEYS)
            if "table_prefix" in entry:
                out += self.prefix_specs(here, entry, archives)
                continue
            if "relpath" not in entry:
                raise self.fail(here, "missing field 'relpath'")
            out.append(self.spec(here, entry))
        return out

    def check_sources(self, where: str, files, archives) -> None:
        """Every file's ``source`` is one of the dataset's archives."""
        known = {a.relpath for a in archives}
        for s in files:
            if s.source is not None and s.source not in known:
                raise self.fail(where, f"file {s.relpath!r}: source {s.source!r} is not one "
                                       "of the dataset's archives")

    def image_set(self, where: str, entry: dict) -> ImageSet | None:
        if "images" not in entry:
            return None
        self.check_keys(f"{where} images", entry["images"], _IMAGES_KEYS, tuple(_IMAGES_KEYS))
        return ImageSet(**entry["images"])

    def dataset(self, i: int, entry) -> Dataset:
        where = f"dataset[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            where = f"dataset {entry['name']!r}"
        self.check_keys(where, entry, _DATASET_KEYS, _DATASET_REQUIRED)
        files = tuple(self.specs(where, entry["files"], archives=False))
        archives = tuple(self.specs(where, entry.get("archives", []), archives=True))
        if not files:
            raise self.fail(where, "field 'files' is empty")
        self.check_sources(where, files, archives)
        images = self.image_set(where, entry)
        return Dataset(
            name=entry["name"],
            title=entry["title"],
            files=files,
            homepage=entry["homepage"],
            terms=self.text(where, entry["terms"]),
            downloadable=entry["downloadable"],
            how_to_obtain=entry["how_to_obtain"],
            archives=archives,
            images=images,
            by_hand=entry.get("by_hand", ""),
        )


def load_catalog(path=CATALOG_PATH, table: dict[str, dict] | None = None) -> dict[str, Dataset]:
    """Read and validate the dataset catalog (``registry_catalog.toml``): ``{name: Dataset}``
    in catalog order. ``table`` is the checksum table (default: ``registry_files.json``).
    A malformed file or entry raises :class:`CatalogError` naming the file, the dataset
    and the field."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CatalogError(f"{path}: cannot read the dataset catalog ({e})") from e
    cat = _Catalog(path, _load_table() if table is None else table)
    cat.read_header(doc)
    entries = doc.get("dataset")
    if not isinstance(entries, list) or not entries:
        raise cat.fail("top level", "expected one or more [[dataset]] tables")
    out: dict[str, Dataset] = {}
    for i, entry in enumerate(entries):
        ds = cat.dataset(i, entry)
        if ds.name in out:
            raise cat.fail(f"dataset {ds.name!r}", "name used twice")
        out[ds.name] = ds
    return out


DATASETS: dict[str, Dataset] = load_catalog()


def get(name: str) -> Dataset:
    """The dataset called ``name``; a ValueError lists the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}"
        ) from None


def files_of(*names: str) -> tuple[str, ...]:
    """The content relpaths of the datasets ``names``, in catalog order (the one list of a
    dataset's files; ``sources.choose`` checks these)."""
    return tuple(s.relpath for name in names for s in get(name).files)


def spec_for(relpath: str) -> tuple[Dataset, FileSpec] | None:
    """The dataset and spec registering ``relpath`` (content or archive), or None."""
    rel = PurePosixPath(relpath).as_posix()
    for d in DATASETS.values():
        for s in d.files + d.archives:
            if s.relpath == rel:
                return d, s
    return None

