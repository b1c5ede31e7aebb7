"""``tinylib-eval``: evaluate detections on the benchmarks from the command line.

    tinylib-eval widerface PRED_DIR [--gt DIR] [--images present|LIST] [--curves OUT_DIR]
                                    [--name NAME] [--no-plus-one]
                                    [--score-normalisation minmax|none]
    tinylib-eval published [--method hr_res101]
    tinylib-eval fddb PRED_FILE [--folds DIR]

``widerface`` reads a folder in the official submission layout (``<event>/<stem>.txt``),
takes the val ground truth from the data root (``TINYLIB_DATA``) unless ``--gt`` names a
folder holding ``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat`` (or a data
root), prints the three APs, and with ``--curves`` writes the PR curves (``.mat`` in the
toolbox's layout and ``.csv``). ``--images`` restricts the evaluation (official semantics on
those images only): ``present`` = the val images present and verified under the data root
(``tinylib.data.registry.present_images``), or a text file with one ``event/name(.jpg)`` per
line. The result is then labelled ``WIDER val subset (N images)``, else ``WIDER val``.
Scores are min-max normalised over the whole set as the toolbox does (``--score-normalisation
none`` uses them as given); scores that look wrong (a few outliers stretching the range) are
warned about. Bad input (a malformed file, a header naming another image, no prediction file
where expected, ``--curves`` on a file) is an ``error:`` line naming the file, exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..data import registry
from . import fddb
from . import widerface as W


def _load_gt(gt_dir: str | None):
    from ..data import widerface as data_wf  # heavy (torch, pandas): only when GT is read

    if gt_dir is None:
        return data_wf.load_eval_gt()
    d = Path(gt_dir)
    if (d / "widerface" / "eval_gt").is_dir():
        return data_wf.load_eval_gt(d)
    if (d / "wider_face_val.mat").is_file():
        return data_wf.read_eval_gt(d)
    raise FileNotFoundError(
        f"--gt {d}: expected a folder with wider_face_val.mat and wider_{{easy,medium,hard}}_val.mat, "
        "or a data root with widerface/eval_gt/"
    )


def _subset(images: str | None, gt, gt_dir: str | None) -> list[str] | None:
    """The images ``--images`` names: ``present`` (verified val images under the data root;
    ``--gt`` when it names a data root) or a list file."""
    if images is None:
        return None
    if images == "present":
        root = None
        if gt_dir is not None and (Path(gt_dir) / "widerface" / "eval_gt").is_dir():
            root = gt_dir
        keys = registry.present_images("val", root=root)
        if not keys:
            raise FileNotFoundError(
                "--images present: no verified WIDER val image under the data root "
                "(widerface/WIDER_val/images/); see `tinylib-data status`"
            )
        known = set(gt.images)
        outside = [k for k in keys if W._key_from_name(k) not in known]
        if outside:
            raise ValueError(
                f"--images present: {len(outside)} present image(s) are not in the ground "
                f"truth, e.g. {outside[0]}"
            )
        return keys
    path = Path(images)
    if not path.is_file():
        raise FileNotFoundError(
            f"--images {images}: expected 'present' or a text file with one event/name.jpg "
            "per line, found no such file"
        )
    return W.read_image_list(path, gt)


def _check_curves_dir(curves: str) -> None:
    """``--curves``: a folder that exists or can be made, writable; checked before the AP is
    computed so that a long evaluation never ends in a write error."""
    d = Path(curves)
    if d.exists() and not d.is_dir():
        raise ValueError(f"--curves {d}: is a file, expected a folder for the PR curves "
                         "(it is created if needed); give a folder name")
    probe = d
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"--curves {d}: {probe} is a file, so the folder cannot be made; "
                         "give another folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"--curves {d}: cannot write in {probe} (permission denied); give a "
                         "folder you can write to")


def _cmd_widerface(args) -> int:
    if args.curves:
        _check_curves_dir(args.curves)
    pred = Path(args.pred_dir)
    if not pred.is_dir():
        what = "is a file" if pred.exists() else "not found"
        raise FileNotFoundError(f"{pred}: prediction folder {what}; expected a folder with one "
                                "<event>/<image>.txt file per val image")
    gt = _load_gt(args.gt)
    subset = _subset(args.images, gt, args.gt)
    normalize = args.score_normalisation == "minmax"
    res = W.evaluate(args.pred_dir, gt, plus_one=not args.no_plus_one, progress=args.progress,
                     subset=subset, normalize=normalize)
    counted = (f"{res.n_images} of {res.n_gt_images} images" if res.is_subset
               else f"{res.n_images} images")
    scoring = "" if normalize else ", scores not normalised"
    print(f"{res.label}: {counted}, {res.n_detections} detections "
          f"({'+1 pixel convention' if not args.no_plus_one else 'no +1'}{scoring})")
    for s in res.settings:
        print(f"  {s:<6} AP = {W.format_ap(res.ap[s], res.n_faces[s], 4)}   (max recall {res.recall[s][-1]:.4f}, "
              f"{res.n_faces[s]} faces)")
    if res.missing:
        print(f"  {len(res.missing)} prediction file(s) missing (counted as no detections), "
              f"e.g. {res.missing[0]}")
    if res.excluded:
        print(f"  {len(res.excluded)} prediction file(s) for val images outside the subset "
              f"(dropped), e.g. {res.excluded[0]}")
    if res.extra:
        print(f"  {len(res.extra)} prediction file(s) for images not in the ground truth "
              f"(ignored), e.g. {res.extra[0]}")
    if args.curves:
        files = res.save_curves(args.curves, name=args.name)
        print(f"  PR curves ({res.label}) written to {Path(args.curves)} ({len(files)} files)")
    return 0


def _cmd_published(args) -> int:
    methods = W.published_methods() if args.method == "all" else [args.method]
    for m in methods:
        ap = W.published_ap(m)
        print(f"{m:<24} " + "  ".join(f"{s} {ap[s]:.4f}" for s in W.SETTINGS))
    return 0


def _cmd_fddb(args) -> int:
    res = fddb.evaluate_file(args.pred_file, folds_dir=args.folds)
    print(f"FDDB: {res.n_images} images, {res.n_faces} faces, {res.n_detections} detections")
    for fp in (100, 500, 1000, 2000):
        print(f"  TPR at {fp:>4} false positives: discrete {res.tpr_at(fp, 'discrete'):.4f}  "
              f"continuous {res.tpr_at(fp, 'continuous'):.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinylib-eval", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log warnings and progress")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("widerface", help="WIDER FACE val AP (official toolbox semantics)")
    w.add_argument("pred_dir", help="folder with <event>/<image>.txt prediction files")
    w.add_argument("--gt", default=None, help="ground-truth folder (default: the data root)")
    w.add_argument("--images", default=None, metavar="present|LIST",
                   help="evaluate only these val images: 'present' (verified under the data "
                        "root) or a file with one event/name.jpg per line")
    w.add_argument("--curves", default=None, help="write PR curves (.mat + .csv) here")
    w.add_argument("--name", default="tinylib", help="method name in the curve files")
    w.add_argument("--no-plus-one", action="store_true", help="IoU without the +1 pixel")
    w.add_argument("--progress", action="store_true", help="show progress bars")
    w.add_argument("--score-normalisation", choices=("minmax", "none"), default="minmax",
                   help="minmax (default, the official toolbox): scores min-max normalised over "
                        "the whole set; none: scores used as given (they must lie in [0, 1])")
    w.set_defaults(func=_cmd_widerface)
    pub = sub.add_parser("published", help="AP of the published curves in the data root")
    pub.add_argument("--method", default="all")
    pub.set_defaults(func=_cmd_published)
    f = sub.add_parser("fddb", help="FDDB discrete/continuous scores")
    f.add_argument("pred_file", help="FDDB detection file (image, count, x y w h score lines)")
    f.add_argument("--folds", default=None, help="folder with FDDB-fold-*-ellipseList.txt")
    f.set_defaults(func=_cmd_fddb)
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"tinylib-eval: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `tinylib-eval published | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
