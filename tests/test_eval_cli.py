"""``tinylib-eval``: prints the three APs, writes curves, reports bad input as an error."""

from __future__ import annotations

import numpy as np

from tinylib.eval import cli
from tinylib.eval import widerface as W


def _tiny_gt():
    return W.SimpleEvalGT(boxes={"0--E/a": np.array([[0, 0, 10, 10], [40, 40, 12, 12]]),
                                 "0--E/b": np.array([[5, 5, 20, 20]])})


def test_widerface_prints_aps_and_writes_curves(tmp_path, monkeypatch, capsys):
    gt = _tiny_gt()
    monkeypatch.setattr(cli, "_load_gt", lambda _d: gt)
    preds = {"0--E/a": np.array([[0, 0, 10, 10, 0.9], [100, 100, 5, 5, 0.2]]),
             "0--E/b": np.array([[5, 5, 20, 20, 0.7]])}
    W.write_predictions(preds, tmp_path / "pred")
    rc = cli.main(["widerface", str(tmp_path / "pred"), "--curves", str(tmp_path / "curves"),
                   "--name", "toy"])
    out = capsys.readouterr().out
    assert rc == 0
    ap = W.evaluate(preds, gt).ap
    for s in W.SETTINGS:
        assert f"{s:<6} AP = {ap[s]:.4f}" in out
    assert (tmp_path / "curves" / "wider_pr_info_toy_hard_val.mat").exists()


def test_widerface_bad_file_is_a_clean_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_load_gt", lambda _d: _tiny_gt())
    f = tmp_path / "pred" / "0--E" / "a.txt"
    f.parent.mkdir(parents=True)
    f.write_text("a\n1\n1 2 3 4 nan\n")
    rc = cli.main(["widerface", str(tmp_path / "pred")])
    err = capsys.readouterr().err
    assert rc == 2 and "a.txt, line 3" in err


def test_widerface_with_gt_folder_and_published(real_data, tmp_path, capsys):
    gt_dir = real_data / "widerface" / "eval_gt"
    preds = {"0--Parade/0_Parade_marchingband_1_465": np.array([[345, 211, 4, 4, 0.9]])}
    W.write_predictions(preds, tmp_path / "pred")
    assert cli.main(["widerface", str(tmp_path / "pred"), "--gt", str(gt_dir)]) == 0
    out = capsys.readouterr().out
    assert "3226 images" in out and "missing" in out
    assert cli.main(["published", "--method", "hr_res101"]) == 0
    assert "hard 0.8303" in capsys.readouterr().out
