"""Weight averaging of HR checkpoints (tinylib.hr.soup)."""

from __future__ import annotations

import pytest
import torch

from tinylib.hr import soup
from tinylib.hr.detect import load_detector, save_weights
from tinylib.hr.model import build_hr

TPL = [[16, 16, 1.0], [40, 40, 1.0], [8, 10, 2.0]]


def _model(seed, **kw):
    torch.manual_seed(seed)
    return build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False, **kw).eval()


def test_average_is_the_weighted_mean_of_every_float_tensor(tmp_path):
    a = save_weights(_model(0), tmp_path / "a.pt", half=False)
    b = save_weights(_model(1), tmp_path / "b.pt", half=False)
    sa, sb = load_detector(a).state_dict(), load_detector(b).state_dict()
    uniform = soup.average_weights([a, b]).state_dict()
    skewed = soup.average_weights([a, b], [3, 1]).state_dict()  # normalised: 0.75 / 0.25
    for k, v in sa.items():
        if v.is_floating_point():
            assert torch.allclose(uniform[k], (v + sb[k]) / 2, atol=1e-6), k
            assert torch.allclose(skewed[k], 0.75 * v + 0.25 * sb[k], atol=1e-6), k
        else:
            assert torch.equal(uniform[k], v), k
    # the two inputs differ, so the mean is neither of them
    w = next(k for k, v in sa.items() if v.is_floating_point() and v.numel() > 10)
    assert not torch.allclose(uniform[w], sa[w]) and not torch.allclose(uniform[w], sb[w])


def test_cli_writes_loadable_fp16_weights_with_provenance(tmp_path):
    a = save_weights(_model(0), tmp_path / "a.pt")
    b = save_weights(_model(1), tmp_path / "b.pt")
    out = tmp_path / "soup" / "s.pt"
    out.parent.mkdir()
    for i, w in enumerate((a, b)):
        (tmp_path / f"{w.stem}_history.csv").write_text(f"epoch,loss\n1,{i + 0.5}\n2,{i + 0.25}\n")
    assert soup.main([str(out), str(a), str(b)]) == 0
    hist = (out.parent / "s_history.csv").read_text().splitlines()
    assert hist == ["epoch,loss,stage", "1,0.5,1", "2,0.25,1", "1,1.5,2", "2,1.25,2"]
    obj = torch.load(out, weights_only=True)
    assert obj["meta"]["alphas"] == [0.5, 0.5] and len(obj["meta"]["average_of"]) == 2
    assert all(v.dtype == torch.float16 for v in obj["model"].values() if v.is_floating_point())
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        assert load_detector(out)(x)[0].shape == (1, 3, 8, 8)


def test_refuses_mixed_architectures_and_bad_alphas(tmp_path, capsys):
    a = save_weights(_model(0), tmp_path / "a.pt")
    c = save_weights(_model(2, use_res4=False), tmp_path / "c.pt")
    with pytest.raises(ValueError, match=r"c\.pt: model config differs .*use_res4"):
        soup.average_weights([a, c])
    with pytest.raises(ValueError, match="at least two"):
        soup.average_weights([a])
    with pytest.raises(ValueError, match="2 alphas for 3"):
        soup.average_weights([a, a, a], [1, 1])
    assert soup.main([str(tmp_path / "o.pt"), str(a), str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()
