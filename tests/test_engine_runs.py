"""The run-folder format (``tinylib.engine.runs``): metrics and predictions written and read
back, the key mangling of ``predictions.npz``, the names of the scoring files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tinylib.engine import runs


def test_predictions_round_trip_with_mangled_keys(tmp_path):
    preds = {"0--Parade/a": np.array([[1, 2, 3, 4, 0.9]], np.float32),
             "1--Handshaking/b": np.zeros((0, 5), np.float32)}
    path = runs.write_predictions(tmp_path, preds)
    assert path == tmp_path / "predictions.npz" and not list(tmp_path.glob(".*.tmp*"))
    with np.load(path) as z:  # the stored names: "/" written "|"
        assert z.files == ["0--Parade|a", "1--Handshaking|b"]
    for where in (tmp_path, path):
        back = runs.read_predictions(where)
        assert list(back) == list(preds)
        for k, v in preds.items():
            assert back[k].dtype == v.dtype and np.array_equal(back[k], v)


def test_metrics_files_and_labels(tmp_path):
    m = {"run": "r_s0", "images": 3, "easy": 0.5, "faces": {"le20": 2}}
    assert runs.write_metrics(tmp_path, m) == tmp_path / "metrics.json"
    assert runs.write_metrics(tmp_path, m, n=120) == tmp_path / "metrics_n120.json"
    assert (tmp_path / "metrics.json").read_text() == json.dumps(m, indent=1)
    assert runs.read_metrics(tmp_path) == m == runs.read_metrics(tmp_path / "metrics_n120.json")
    assert runs.scoring_label(tmp_path / "metrics.json") == "all"
    assert runs.scoring_label(runs.metrics_path(tmp_path, 120)) == "n120"
    tta = runs.write_tta_metrics(tmp_path, "0.5x/1x/2x+flip", {"tta": "0.5x/1x/2x+flip"})
    assert tta.name == "tta_0.5x-1x-2x_flip.json" and runs.read_metrics(tta)["tta"] == "0.5x/1x/2x+flip"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad/metrics.json: not valid JSON"):
        runs.read_metrics(tmp_path / "bad")


def test_history_marks_a_run(tmp_path):
    runs.write_history(tmp_path, pd.DataFrame({"epoch": [1], "step": [1], "loss": [0.5]}))
    assert pd.read_csv(tmp_path / "history.csv")["loss"].tolist() == [0.5]
    assert runs.existing_run(tmp_path) == [tmp_path / "history.csv"]
    with pytest.raises(runs.RunExistsError):
        runs.check_run_dir(tmp_path)
