"""Issue #23, the command lines: bad input gives a clear message and a non-zero exit code,
never a traceback, and nothing a user made is lost.

``tinylib-detect`` (outputs never replace inputs or each other, the output folder checked
first, a bad image skipped and summarised, arguments validated), ``tinylib-eval`` (``--curves``
checked first, prediction headers, empty or wrongly nested folders, outlying scores,
``--score-normalisation``) and ``python -m tinylib.notebooks run`` (paths checked first, cells
counted from 1). Small generated fixtures; the shipped MobileNet weights on tiny images.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import tempfile
import zlib
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from tinylib import notebooks
from tinylib.eval import cli as eval_cli
from tinylib.eval import widerface as W
from tinylib.hr import detect
from tinylib.hr.detect import DEFAULT_WEIGHTS

WEIGHTS = str(DEFAULT_WEIGHTS)
FAST = ["--weights", WEIGHTS, "--max-side", "128", "--device", "cpu"]


def _photo(path: Path, seed: int = 0, size=(48, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _bomb_png(path: Path, width: int = 14000, height: int = 13000) -> Path:
    """A 60-byte PNG whose header claims ``width x height`` pixels (over Pillow's limit)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- tinylib-detect
def test_detect_draw_never_overwrites_the_input_photo(tmp_path, monkeypatch, capsys):
    """`tinylib-detect team.jpg --out . --draw` used to replace team.jpg by the drawing."""
    monkeypatch.chdir(tmp_path)
    team = _photo(tmp_path / "team.jpg")
    before = _md5(team)
    assert detect.main(["team.jpg", "--out", ".", "--draw", *FAST]) == 0
    assert _md5(team) == before
    folder = tmp_path.name  # images of one folder: <out>/<folder>/<stem>
    assert (tmp_path / folder / "team.txt").read_text().splitlines()[0] == "team"
    assert (tmp_path / "drawings" / folder / "team.jpg").is_file()
    capsys.readouterr()


def test_detect_refuses_an_output_that_is_an_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    photo = _photo(tmp_path / "drawings" / "ev" / "a.jpg")  # where its own drawing would go
    before = _md5(photo)
    assert detect.main(["drawings/ev/a.jpg", "--out", ".", "--draw", *FAST]) == 2
    err = capsys.readouterr().err
    assert "which is the input" in err and "another --out" in err and "Traceback" not in err
    assert _md5(photo) == before
    assert _files(tmp_path) == ["drawings/ev/a.jpg"]  # nothing written


def test_detect_output_names_never_collide(tmp_path, capsys):
    a = _photo(tmp_path / "a" / "ev" / "img.jpg", 1)
    b = _photo(tmp_path / "b" / "ev" / "img.jpg", 2)
    png = _photo(tmp_path / "a" / "ev" / "img.png", 3)
    out = tmp_path / "o"
    # the same folder/stem twice: refused before any work
    assert detect.main([str(a), str(b), str(png), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "would both write" in err and str(a) in err and str(png) in err
    assert not out.exists()
    # keyed by the path below the common folder: both kept
    assert detect.main([str(a), str(b), "--out", str(out), *FAST]) == 0
    assert _files(out) == ["a/ev/img.txt", "b/ev/img.txt"]
    # a WIDER-like tree keeps its event/stem layout
    tree = tmp_path / "WIDER_val" / "images"
    x = _photo(tree / "0--Parade" / "x.jpg")
    y = _photo(tree / "1--Handshaking" / "y.jpg")
    assert detect.main([str(x), str(y), "--out", str(tmp_path / "w"), *FAST]) == 0
    assert _files(tmp_path / "w") == ["0--Parade/x.txt", "1--Handshaking/y.txt"]
    capsys.readouterr()


def test_detect_checks_the_output_folder_first(tmp_path, monkeypatch, capsys):
    photo = _photo(tmp_path / "ev" / "a.jpg")
    afile = tmp_path / "results.txt"
    afile.write_text("mine\n")
    assert detect.main([str(photo), "--out", str(afile), *FAST]) == 2
    cap = capsys.readouterr()
    assert "is a file, expected a folder" in cap.err and "Traceback" not in cap.err
    assert "faces" not in cap.out and afile.read_text() == "mine\n"

    def denied(*args, **kwargs):  # a read-only folder (tests may run as root: simulated)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert detect.main([str(photo), "--out", str(tmp_path / "ro"), *FAST]) == 2
    cap = capsys.readouterr()
    assert "cannot write there (Permission denied)" in cap.err and "faces" not in cap.out


def test_detect_bad_image_is_skipped_and_summarised(tmp_path, capsys):
    first = _photo(tmp_path / "ev" / "first.jpg", 1)
    corrupt = tmp_path / "ev" / "corrupt.jpg"
    corrupt.write_bytes(first.read_bytes()[:200])  # a truncated JPEG
    folder = tmp_path / "ev" / "folder.jpg"
    folder.mkdir()
    bomb = _bomb_png(tmp_path / "ev" / "bomb.png")
    last = _photo(tmp_path / "ev" / "last.jpg", 2)
    out = tmp_path / "out"
    rc = detect.main([str(p) for p in (first, corrupt, folder, bomb, last)] + ["--out", str(out), *FAST])
    cap = capsys.readouterr()
    assert rc == 1
    assert _files(out) == ["ev/first.txt", "ev/last.txt"]  # the images after the bad ones done
    assert "Traceback" not in cap.err
    assert "3 of 5 image(s) skipped" in cap.err
    summary = cap.err.split("skipped, the others done:")[1]
    assert str(corrupt) in summary and str(folder) in summary and str(bomb) in summary
    assert "is a folder, not an image file" in cap.err
    assert "decompression bomb" in cap.err and "MAX_IMAGE_PIXELS" in cap.err


def test_detect_bomb_limit_is_named_with_a_lowered_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    from tinylib.data.images import read_image

    with pytest.raises(OSError, match=r"decompression bomb.*2 x 100 pixels"):
        read_image(_photo(tmp_path / "big.png", size=(20, 20)))


@pytest.fixture()
def text_weights(tmp_path):
    p = tmp_path / "weights.pt"
    p.write_text("these are not weights\n")
    return p


@pytest.fixture()
def corrupt_weights(tmp_path):
    p = tmp_path / "half.pt"
    data = DEFAULT_WEIGHTS.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--threshold", "-1"], "argument --threshold: expected a score between 0 and 1"),
        (["--threshold", "2"], "argument --threshold: expected a score between 0 and 1"),
        (["--threshold", "nan"], "argument --threshold: expected a finite number"),
        (["--max-side", "0"], "argument --max-side: expected a positive number"),
        (["--nms", "0"], "argument --nms: expected an IoU in (0, 1]"),
        (["--nms", "1.5"], "argument --nms: expected an IoU in (0, 1]"),
        (["--vote", "2"], "argument --vote: expected an IoU in (0, 1], or 0"),
        (["--device", "banana"], "--device banana: unknown device; expected cpu, cuda"),
        (["--device", "cuda"], "--device cuda: CUDA is not available"),
        (["--weights", "MISSING"], "weights not found"),
        (["--weights", "TEXT"], "not a PyTorch checkpoint (a text file starting 'these are not weights'); "
                                "expected a PyTorch checkpoint written by torch.save"),
        (["--weights", "CORRUPT"], "truncated or corrupt, or not a PyTorch checkpoint"),
    ],
)
def test_detect_validates_arguments(tmp_path, monkeypatch, capsys, text_weights,
                                    corrupt_weights, args, expected):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    args = [{"MISSING": str(tmp_path / "none.pt"), "TEXT": str(text_weights),
             "CORRUPT": str(corrupt_weights)}.get(a, a) for a in args]
    photo = _photo(tmp_path / "ev" / "a.jpg")
    out = tmp_path / "out"
    rc = detect.main([str(photo), "--out", str(out), "--weights", WEIGHTS, *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert expected in err and "error:" in err and "Traceback" not in err
    assert not out.exists()  # refused before any work


# ----------------------------------------------------------------------------- tinylib-eval
@pytest.fixture()
def toy(toy_submission):  # conftest: the two-image ground truth behind tinylib-eval
    return toy_submission


def test_eval_curves_on_a_file_fails_before_the_ap(tmp_path, toy, capsys):
    target = tmp_path / "curves.txt"
    target.write_text("keep me\n")
    assert eval_cli.main(["widerface", str(tmp_path / "pred"), "--curves", str(target)]) == 2
    cap = capsys.readouterr()
    assert "--curves" in cap.err and "is a file, expected a folder" in cap.err
    assert "AP =" not in cap.out and "Traceback" not in cap.err
    assert target.read_text() == "keep me\n"


def test_eval_header_naming_another_image_is_an_error(tmp_path, toy, capsys):
    f = tmp_path / "pred" / "0--E" / "a.txt"
    body = f.read_text().split("\n", 1)[1]
    f.write_text("b\n" + body)  # a's boxes under b's name: a copied file
    assert eval_cli.main(["widerface", str(tmp_path / "pred")]) == 2
    err = capsys.readouterr().err
    assert f"{f}, line 1: the header names image 'b'" in err and "Traceback" not in err
    for header in ("a", "a.jpg", "0--E/a.jpg", "/data/WIDER_val/images/0--E/a.jpg"):
        f.write_text(header + "\n" + body)
        assert eval_cli.main(["widerface", str(tmp_path / "pred")]) == 0, header
    f.write_text("1--Other/a.jpg\n" + body)
    assert eval_cli.main(["widerface", str(tmp_path / "pred")]) == 2
    capsys.readouterr()


def test_eval_empty_or_nested_folder_says_what_it_found(tmp_path, toy, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert eval_cli.main(["widerface", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "0 of 2 prediction files found" in err and str(empty) in err
    assert "nothing (the folder is empty)" in err
    nested = tmp_path / "nested"
    W.write_predictions({"0--E/a": np.array([[0, 0, 10, 10, 0.9]])}, nested / "run1")
    assert eval_cli.main(["widerface", str(nested)]) == 2
    err = capsys.readouterr().err
    assert "0 of 2 prediction files found" in err and "one level deeper" in err
    assert f"point at {nested / 'run1'}" in err and "Traceback" not in err
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.txt").write_text("a\n0\n")
    assert eval_cli.main(["widerface", str(flat)]) == 2
    assert "directly in the folder, not in event folders" in capsys.readouterr().err


def _many():
    """20 faces in 4 images, 20 hits and 20 misses with scores in [0, 1]."""
    rng = np.random.default_rng(0)
    boxes, preds = {}, {}
    for i in range(4):
        g = np.array([[20.0 * j, 10, 12, 12] for j in range(5)])
        boxes[f"0--E/i{i}"] = g
        hits = np.hstack([g, rng.uniform(0.3, 1.0, (5, 1))])
        fps = np.hstack([g + [0, 300, 0, 0], rng.uniform(0.0, 0.7, (5, 1))])
        preds[f"0--E/i{i}"] = np.vstack([hits, fps])
    return W.SimpleEvalGT(boxes=boxes), preds


@pytest.mark.parametrize("outlier", [-5.0, 1e30])
def test_eval_outlying_score_is_warned_and_none_keeps_it_out(tmp_path, monkeypatch, capsys,
                                                             caplog, outlier):
    gt, preds = _many()
    monkeypatch.setattr(eval_cli, "_load_gt", lambda _d: gt)
    clean = W.evaluate(preds, gt)
    bad = {k: v.copy() for k, v in preds.items()}
    bad["0--E/i0"][-1, 4] = outlier  # one false positive with a stray score
    stretched = W.evaluate(bad, gt)
    assert stretched.ap["easy"] != clean.ap["easy"]  # what the warning is about
    W.write_predictions(bad, tmp_path / "pred")
    with caplog.at_level(logging.WARNING):
        assert eval_cli.main(["widerface", str(tmp_path / "pred")]) == 0
    out = capsys.readouterr().out
    assert f"easy   AP = {stretched.ap['easy']:.4f}" in out  # the default stays official
    assert "1 of 40 detection scores lie outside [0, 1]" in caplog.text
    assert "--score-normalisation none" in caplog.text
    caplog.clear()
    assert eval_cli.main(["widerface", str(tmp_path / "pred"), "--score-normalisation", "none"]) == 0
    out = capsys.readouterr().out
    unnormalised = W.evaluate(bad, gt, normalize=False)
    assert f"easy   AP = {unnormalised.ap['easy']:.4f}" in out and "scores not normalised" in out
    assert abs(unnormalised.ap["easy"] - W.evaluate(preds, gt, normalize=False).ap["easy"]) < 0.05
    assert eval_cli.main(["widerface", str(tmp_path / "pred"), "--score-normalisation", "z"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_check_scores_flags_dominating_outliers_only():
    rng = np.random.default_rng(0)
    assert W.check_scores(rng.uniform(0, 1, 500)) == []
    logits = rng.normal(0, 2, 500)  # scores on another scale: fine as they are
    assert W.check_scores(logits) == []
    msgs = W.check_scores(np.append(logits, 1e6))
    assert len(msgs) == 1 and "dominate the min-max range" in msgs[0]


# ----------------------------------------------------------------------------- notebook runner
def _notebook(path: Path, *cells) -> Path:
    nb = nbformat.v4.new_notebook()
    for kind, src in cells:
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "md"
                        else nbformat.v4.new_code_cell(src))
    nbformat.write(nb, str(path))
    return path


def test_notebook_run_checks_every_path_before_running(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(notebooks, "execute", lambda path, *a, **k: ran.append(path))
    good = _notebook(tmp_path / "01_good.ipynb", ("code", "x = 1"))
    text = tmp_path / "notes.txt"
    text.write_text("not a notebook\n")
    broken = tmp_path / "02_broken.ipynb"
    broken.write_text('{"cells": [')
    out = tmp_path / "build"
    rc = notebooks.main(["run", str(good), str(tmp_path / "missing.ipynb"), str(text), str(broken),
                         "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and ran == [] and not out.exists()
    assert f"{tmp_path / 'missing.ipynb'}: no such notebook" in err
    assert f"{text}: not a Jupyter notebook" in err and f"{broken}: not a Jupyter notebook" in err
    assert "Traceback" not in err


def test_failing_cell_is_counted_from_one(tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path / "build"))
    p = _notebook(tmp_path / "03_bad.ipynb", ("md", "# title"), ("code", "x = 1"),
                  ("code", "raise ValueError('boom')"))

    def execute(self, **kwargs):  # no kernel: the third cell fails as a kernel would report
        self.nb.cells[2].outputs = [nbformat.v4.new_output(
            "error", ename="ValueError", evalue="boom", traceback=[])]
        raise CellExecutionError("ValueError: boom", "ValueError", "boom")

    monkeypatch.setattr(NotebookClient, "execute", execute)
    with pytest.raises(notebooks.NotebookError, match=r"03_bad.ipynb: cell 3 failed"):
        notebooks.execute(p)
