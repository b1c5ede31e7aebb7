"""FDDB fold and ellipse-list parsers."""

from __future__ import annotations

import numpy as np
import pytest

from tinylib.data import fddb
from tinylib.data._parse import AnnotationError

ELLIPSES = [
    "2002/08/11/big/img_591",
    "1",
    "123.583300 85.549500 1.265839 269.693400 161.781200  1",
    "2002/08/26/big/img_265",
    "2",
    "20 10 0 100 50  1",
    "20 10 1.5707963267948966 200 100",  # 5 fields also accepted
]


def write(path, lines, newline="\n"):
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def _root(tmp_path, ellipses=ELLIPSES, fold=("2002/08/11/big/img_591", "2002/08/26/big/img_265")):
    d = tmp_path / "fddb"
    d.mkdir(exist_ok=True)
    write(d / "FDDB-fold-01-ellipseList.txt", ellipses, "\r\n")
    write(d / "FDDB-fold-01.txt", list(fold))
    return tmp_path


def test_ellipse_list_and_boxes(tmp_path):
    df = fddb.load_faces(_root(tmp_path), folds=[1])
    assert list(df.columns) == list(fddb.COLUMNS)
    assert df.attrs["images"] == ["2002/08/11/big/img_591", "2002/08/26/big/img_265"]
    assert len(df) == 3 and df["fold"].tolist() == [1, 1, 1]
    # angle 0: major radius along x
    np.testing.assert_allclose(df.loc[1, ["x1", "y1", "x2", "y2"]].to_numpy(float), [80, 40, 120, 60])
    # angle pi/2: major radius along y (an upright face)
    np.testing.assert_allclose(
        df.loc[2, ["x1", "y1", "x2", "y2"]].to_numpy(float), [190, 80, 210, 120], atol=1e-9
    )
    assert df.loc[0, "major"] == pytest.approx(123.5833)


def test_zero_face_image(tmp_path):
    df = fddb.read_ellipse_list(write(tmp_path / "e.txt", ["a/img_1", "0", "a/img_2", "1", "5 4 0 10 10 1"]))
    assert df.attrs["images"] == ["a/img_1", "a/img_2"] and len(df) == 1


@pytest.mark.parametrize(
    "index, text, needle",
    [(2, "123.5 85.5 1.26 269.6", "5 numbers"), (5, "20 10 zero 100 50 1", "20 10 zero"), (4, "two", "face count")],
)
def test_malformed_lines(tmp_path, index, text, needle):
    lines = list(ELLIPSES)
    lines[index] = text
    path = write(tmp_path / "e.txt", lines)
    with pytest.raises(AnnotationError) as info:
        fddb.read_ellipse_list(path)
    assert f"line {index + 1}" in str(info.value) and needle in str(info.value)
    assert str(path) in str(info.value)


def test_truncated_and_fold_mismatch(tmp_path):
    with pytest.raises(AnnotationError, match="file ends after 1"):
        fddb.read_ellipse_list(write(tmp_path / "e.txt", ELLIPSES[:-1]))
    root = _root(tmp_path, fold=("2002/08/26/big/img_265", "2002/08/11/big/img_591"))
    with pytest.raises(AnnotationError, match="same order"):
        fddb.load_faces(root, folds=[1])
    assert len(fddb.load_faces(root, folds=[1], check_folds=False)) == 3


@pytest.mark.realdata
def test_real_fddb_counts(real_data):
    df = fddb.load_faces()
    assert len(df.attrs["images"]) == 2845 and len(df) == 5171
    per_fold = df.groupby("fold").size().tolist()
    assert per_fold == [515, 519, 517, 517, 514, 518, 518, 518, 514, 521]
    folds = fddb.load_folds()
    assert [len(v) for v in folds.values()] == [290, 285, 274, 302, 298, 302, 279, 276, 259, 280]
    # faces are upright ellipses: boxes taller than wide
    assert float(np.median((df.x2 - df.x1) / (df.y2 - df.y1))) < 0.8
