"""Object-scale statistics: normalisations on hand-made boxes; real-data checks when present."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tinylib.analysis import scales as S


def _boxes():
    # a 448x224 image with a 112x112 box; a 224x448 image with a 56x224 box
    return pd.DataFrame(dict(class_index=[0, 1], width=[448, 224], height=[224, 448],
                             x1=[0, 0], y1=[0, 0], x2=[112, 56], y2=[112, 224]))


def test_normalisations_by_hand():
    df = _boxes()
    np.testing.assert_allclose(S.normalised_sizes(df, "longer", "height"), [56, 112])
    np.testing.assert_allclose(S.normalised_sizes(df, "shorter", "height"), [112, 224])
    np.testing.assert_allclose(S.normalised_sizes(df, "stretch", "height"), [112, 112])
    np.testing.assert_allclose(S.normalised_sizes(df, "stretch", "sqrt_area"),
                               [np.sqrt(56 * 112), np.sqrt(56 * 112)])
    np.testing.assert_allclose(S.normalised_sizes(df, "longer", "max_side"), [56, 112])
    with pytest.raises(ValueError, match="normalisation must be one of"):
        S.normalised_sizes(df, "crop")


def test_category_means_and_share():
    df = pd.concat([_boxes(), _boxes().assign(class_index=[0, 1], x2=[224, 28])])
    cat = S.category_mean_sizes(df, "longer", "height")
    assert cat.loc[0] == pytest.approx((56 + 56) / 2)
    assert S.share_in_range([10, 40, 140, 141]) == 0.5
    tab = S.imagenet_convention_table(df)
    assert len(tab) == 9 and tab["share_categories"].between(0, 1).all()


def test_abs_size_stats_and_histogram():
    st = S.abs_size_stats([4, 16, 20], [4, 36, 20])
    assert st["mean"] == pytest.approx((4 + 24 + 20) / 3)
    assert st["share_le"] == pytest.approx(2 / 3)
    h = S.height_histogram([3, 3, 100])
    assert h["count"].sum() == 3


def test_wider_valid_faces_counts_degenerate():
    f = pd.DataFrame(dict(w=[3, 0, -2, 5], h=[3, 4, 5, 0], degenerate=[False, True, True, True]))
    v, n = S.wider_valid_faces(f)
    assert len(v) == 1 and n == 3


def test_coco_abs_sizes_skips_ignore(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"annotations": [
        {"bbox": [0, 0, 4, 9]}, {"bbox": [0, 0, 10, 10], "ignore": True},
        {"bbox": [0, 0, 0, 3]}]}))
    np.testing.assert_allclose(S.coco_abs_sizes(p), [6.0])
    bad = tmp_path / "b.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a COCO json"):
        S.coco_abs_sizes(bad)


def test_wider_train_matches_bh_table1(real_data):
    from tinylib.data.widerface import load_faces

    faces, n_bad = S.wider_valid_faces(load_faces("train"))
    # load_faces drops the 4 count-0 placeholders; 25 zero-size lines + 2 negative widths
    assert n_bad == 27 and len(faces) == 159_393
    st = S.abs_size_stats(faces["w"], faces["h"])
    assert st["mean"] == pytest.approx(32.8, abs=0.05)
    assert st["std"] == pytest.approx(52.7, abs=0.05)
    assert st["share_le"] == pytest.approx(0.56, abs=0.005)


def test_height_figure_names_every_reference_line():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = S.height_histogram(np.geomspace(4, 400, 500))
    ax = S.height_figure(hist, title="heights")
    vlines = {float(ln.get_xdata()[0]): ln for ln in ax.get_lines() if ln.get_xdata()[0] == ln.get_xdata()[-1]
              and len(ln.get_xdata()) == 2}
    assert set(vlines) == {20.0, 40.0, 140.0}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("20 px:") for t in legend) and any(t.startswith("40-140 px:") for t in legend)
    # each line is named: by its legend entry (40 and 140 share one) and by its value on the plot
    labelled = {x for x, ln in vlines.items() if not ln.get_label().startswith("_")}
    assert labelled == {20.0, 40.0}
    assert vlines[140.0].get_color() == vlines[40.0].get_color() != vlines[20.0].get_color()
    assert {t.get_text() for t in ax.texts} == {"20 px", "40 px", "140 px"}
    plt.close(ax.figure)
