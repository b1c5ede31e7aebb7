"""``tinylib-data``: the state of the data root, downloads and dataset statistics.

    tinylib-data status [--json] [--no-verify] [--root DIR] [-v]
    tinylib-data fetch NAME [--root DIR] [--force] [--timeout S] [--no-progress]
    tinylib-data stats NAME [--root DIR]

``status`` prints one row per dataset: its state (verified / present but unverified /
missing / checksum mismatch), files present out of total, and where to get it; then one
line per image set (image folders that may be partly present), e.g.
``WIDER val images: 374 of 3,226 present, verified``, naming the images that differ from
the manifest or are not in it. Image digests are cached, so a second run is instant.
Exit status: 0 on success, 1 when the data root is missing or a command failed, 2 for
usage errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from tinylib import config
from tinylib.data import registry


def _print_status(args) -> int:
    base = config.dataset_dir(root=args.root or None, must_exist=False)
    root_ok = base.is_dir()
    rows = registry.status(
        root=base, verify=not args.no_verify, progress=not args.json and sys.stderr.isatty()
    )
    if args.json:
        datasets = []
        for r in rows:
            d = r.to_dict()
            if not args.verbose:
                d.pop("files")
            datasets.append(d)
        out = {"data_root": str(base), "data_root_exists": root_ok, "datasets": datasets}
        print(json.dumps(out, indent=1))
    else:
        print(f"data root: {base}" + ("" if root_ok else "  (DOES NOT EXIST)"))
        header = ("dataset", "state", "files", "where to get it")
        table = [
            (
                r.name,
                r.state,
                f"{r.present}/{r.total}",
                r.where + (f"  [{r.hint}]" if r.hint else ""),
            )
            for r in rows
        ]
        widths = [max(len(t[i]) for t in [header, *table]) for i in range(3)]
        for t in [header, *table]:
            print(f"{t[0]:<{widths[0]}}  {t[1]:<{widths[1]}}  {t[2]:>{widths[2]}}  {t[3]}")
        image_sets = [r for r in rows if r.kind == "images"]
        if image_sets:
            print()
            print("image sets (any part may be present; each image checked against its manifest):")
            for r in image_sets:
                print(f"  {r.summary}")
        if args.verbose:
            for r in rows:
                for f in r.files:
                    if f.state != registry.VERIFIED:
                        detail = f" ({f.detail})" if f.detail else ""
                        print(f"  {r.name}: {f.relpath}: {f.state}{detail}")
    if not root_ok:
        msg = f"data root {base} does not exist"
        if not args.root:
            try:
                config.data_root()
            except config.DataRootError as e:
                msg = str(e)
        print(f"tinylib-data: error: {msg}", file=sys.stderr)
        return 1
    return 0


def _fetch(args) -> int:
    paths = registry.fetch(
        args.name,
        root=args.root,
        progress=not args.no_progress,
        timeout=args.timeout,
        force=args.force,
    )
    print(f"{args.name}: {len(paths)} file(s) in place and verified where a checksum is known")
    return 0


def _stats(args) -> int:
    # heavy (the loaders import torch and pandas): only this command needs it, so
    # `tinylib-data status` and `fetch` start fast
    from tinylib.data import stats

    try:
        rows = stats.collect(args.name, root=args.root)
    except (FileNotFoundError, ValueError) as exc:  # absent dataset, unknown name, bad file
        print(f"tinylib-data: error: {exc}", file=sys.stderr)
        return 1
    for row in rows:
        print(json.dumps(row, sort_keys=False, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tinylib-data",
        description="Datasets of tinylib: state of the data root (TINYLIB_DATA), downloads, stats.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("status", help="each dataset's state and where to get it")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--no-verify", action="store_true", help="presence only, no checksums")
    s.add_argument("--root", default=None, help="data root (default: TINYLIB_DATA)")
    s.add_argument(
        "-v", "--verbose", action="store_true", help="more detail (per-file states, logs)"
    )
    s.set_defaults(func=_print_status)

    f = sub.add_parser("fetch", help="download / unpack a dataset into the data root")
    f.add_argument("name", choices=sorted(registry.DATASETS), metavar="NAME")
    f.add_argument("--root", default=None, help="data root (default: TINYLIB_DATA)")
    f.add_argument(
        "-v", "--verbose", action="store_true", help="more detail (per-file states, logs)"
    )
    f.add_argument("--force", action="store_true", help="fetch again even if verified")
    f.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    f.add_argument("--no-progress", action="store_true", help="no progress bars")
    f.set_defaults(func=_fetch)

    t = sub.add_parser("stats", help="one JSON object per line of dataset statistics")
    t.add_argument("name", metavar="NAME", help="widerface, fddb, imagenet, tinyperson, synthetic, all, or a registry name")
    t.add_argument("--root", default=None, help="data root (default: TINYLIB_DATA)")
    t.add_argument(
        "-v", "--verbose", action="store_true", help="more detail (per-file states, logs)"
    )
    t.set_defaults(func=_stats)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (
        config.DataRootError,
        registry.ChecksumError,
        registry.DownloadError,
        registry.ExtractError,
        ValueError,
    ) as e:
        print(f"tinylib-data: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "tinylib-data: interrupted; no partial file was left under a final name",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
