"""Reading the HR templates (RefBox_N25*.mat) with the +1 width convention."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from tinylib.data import templates as T


def test_read_synthetic_mat(tmp_path):
    p = tmp_path / "t.mat"
    scipy.io.savemat(p, {"clusters": np.array([[-5.0, -7.0, 5.0, 7.0, 2.0]])})
    df = T.read_templates_mat(p)
    assert list(df.columns) == list(T.TEMPLATE_COLUMNS)
    assert df.loc[0, "w"] == 11 and df.loc[0, "h"] == 15 and df.loc[0, "scale"] == 2
    scipy.io.savemat(p, {"clusters": np.zeros((2, 4))})
    assert (T.read_templates_mat(p)["scale"] == 1).all()


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="template file not found"):
        T.read_templates_mat(tmp_path / "none.mat")
    p = tmp_path / "x.mat"
    scipy.io.savemat(p, {"other": np.zeros(3)})
    with pytest.raises(ValueError, match="'clusters'"):
        T.read_templates_mat(p)


def test_real_templates_match_sources_table(real_data):
    s = T.load_templates(scaled=True)
    assert len(s) == 25
    assert s.loc[0, ["w", "h"]].tolist() == pytest.approx([173.68, 227.89], abs=0.01)
    assert s["scale"].value_counts().to_dict() == {2.0: 13, 1.0: 8, 0.5: 4}
    r = T.load_templates(scaled=False)
    assert r.loc[24, ["w", "h"]].tolist() == pytest.approx([3.80, 4.80], abs=0.01)
    assert r.loc[0, ["w", "h"]].tolist() == pytest.approx([216.85, 286.12], abs=0.01)
