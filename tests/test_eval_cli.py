"""``tinylib-eval``: prints the three APs, writes curves, reports bad input as an error;
``--images LIST|present`` evaluates a labelled subset."""

from __future__ import annotations

import numpy as np

from tinylib.eval import cli
from tinylib.eval import widerface as W


def test_widerface_prints_aps_and_writes_curves(tmp_path, monkeypatch, capsys, toy_submission):
    gt, preds = toy_submission
    rc = cli.main(["widerface", str(tmp_path / "pred"), "--curves", str(tmp_path / "curves"),
                   "--name", "toy"])
    out = capsys.readouterr().out
    assert rc == 0
    ap = W.evaluate(preds, gt).ap
    for s in W.SETTINGS:
        assert f"{s:<6} AP = {ap[s]:.4f}" in out
    assert (tmp_path / "curves" / "wider_pr_info_toy_hard_val.mat").exists()


def test_widerface_bad_file_is_a_clean_error(tmp_path, monkeypatch, capsys, toy_eval_gt):
    monkeypatch.setattr(cli, "_load_gt", lambda _d: toy_eval_gt)
    f = tmp_path / "pred" / "0--E" / "a.txt"
    f.parent.mkdir(parents=True)
    f.write_text("a\n1\n1 2 3 4 nan\n")
    rc = cli.main(["widerface", str(tmp_path / "pred")])
    err = capsys.readouterr().err
    assert rc == 2 and "a.txt, line 3" in err


def test_widerface_images_list_restricts_and_labels(tmp_path, monkeypatch, capsys, toy_submission):
    gt, preds = toy_submission
    lst = tmp_path / "images.txt"
    lst.write_text("# one of the two\n0--E/a.jpg\n")
    rc = cli.main(["widerface", str(tmp_path / "pred"), "--images", str(lst),
                   "--curves", str(tmp_path / "curves"), "--name", "toy"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0].startswith("WIDER val subset (1 image): 1 of 2 images, 2 detections")
    ap = W.evaluate(preds, gt, subset=["0--E/a"]).ap
    for s in W.SETTINGS:
        assert f"{s:<6} AP = {ap[s]:.4f}" in out
    assert "1 prediction file(s) for val images outside the subset (dropped), e.g. 0--E/b" in out
    assert "PR curves (WIDER val subset (1 image))" in out
    csv = (tmp_path / "curves" / "wider_pr_toy_easy_val.csv").read_text().splitlines()
    assert csv[1].endswith(",WIDER val subset (1 image)")
    # without --images: unchanged, the whole ground truth
    assert cli.main(["widerface", str(tmp_path / "pred")]) == 0
    assert capsys.readouterr().out.startswith("WIDER val: 2 images, 3 detections")


def test_widerface_images_list_bad_line_names_file_and_line(tmp_path, monkeypatch, capsys, toy_eval_gt):
    monkeypatch.setattr(cli, "_load_gt", lambda _d: toy_eval_gt)
    W.write_predictions({"0--E/a": np.array([[0, 0, 10, 10, 0.9]])}, tmp_path / "pred")
    lst = tmp_path / "images.txt"
    lst.write_text("0--E/a.jpg\n\n0--E b.jpg\n")
    assert cli.main(["widerface", str(tmp_path / "pred"), "--images", str(lst)]) == 2
    err = capsys.readouterr().err
    assert f"{lst}, line 3: expected one image as 'event/name' or 'event/name.jpg'" in err
    assert "Traceback" not in err
    lst.write_text("0--E/a.jpg\n0--E/nope.jpg\n")
    assert cli.main(["widerface", str(tmp_path / "pred"), "--images", str(lst)]) == 2
    assert f"{lst}, line 2: 0--E/nope.jpg is not a WIDER val image" in capsys.readouterr().err
    assert cli.main(["widerface", str(tmp_path / "pred"), "--images", str(tmp_path / "no")]) == 2
    assert "expected 'present' or a text file" in capsys.readouterr().err


def test_widerface_images_present_on_real_data(real_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYLIB_CACHE", str(tmp_path / "cache"))
    key = "0--Parade/0_Parade_marchingband_1_465"
    W.write_predictions({key: np.array([[345, 211, 4, 4, 0.9], [10, 10, 30, 30, 0.3]]),
                         "0--Parade/0_Parade_Parade_0_120": np.array([[1, 1, 9, 9, 0.5]])},
                        tmp_path / "pred")
    rc = cli.main(["widerface", str(tmp_path / "pred"), "--images", "present",
                   "--curves", str(tmp_path / "curves")])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("WIDER val subset (374 images): 374 of 3226 images, 2 detections")
    assert "373 prediction file(s) missing" in out
    # 0_Parade_Parade_0_120 is a val image outside the real subset: its detection is dropped
    assert "1 prediction file(s) for val images outside the subset (dropped)" in out
    csv = (tmp_path / "curves" / "wider_pr_tinylib_hard_val.csv").read_text().splitlines()
    assert csv[1].endswith(",WIDER val subset (374 images)")


def test_widerface_with_gt_folder_and_published(real_data, tmp_path, capsys):
    gt_dir = real_data / "widerface" / "eval_gt"
    preds = {"0--Parade/0_Parade_marchingband_1_465": np.array([[345, 211, 4, 4, 0.9]])}
    W.write_predictions(preds, tmp_path / "pred")
    assert cli.main(["widerface", str(tmp_path / "pred"), "--gt", str(gt_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("WIDER val: 3226 images") and "missing" in out
    assert cli.main(["published", "--method", "hr_res101"]) == 0
    assert "hard 0.8303" in capsys.readouterr().out
