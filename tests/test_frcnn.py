"""Faster R-CNN-FPN over any backbone (tinylib.frcnn): anchors and targets on hand-made cases,
a training step per backbone, exact resume, boxes in the library's convention, evaluation
through the same evaluators as the HR detector, the shipped recipes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from tinylib import engine
from tinylib.boxes import box_convert
from tinylib.eval.widerface import SimpleEvalGT, evaluate
from tinylib.frcnn import detect as D
from tinylib.frcnn import model as M
from tinylib.frcnn import train as T

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(fpn_channels=16, representation_size=32, rpn_batch_size=32, box_batch_size=32,
             rpn_pre_nms_train=200, rpn_post_nms_train=100, rpn_pre_nms_test=100,
             rpn_post_nms_test=50)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tensors here are tiny: one thread is faster, and 5-10x faster on a loaded 2-core
    machine where two spinning threads wait on each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _small(backbone="resnet18", **kw):
    torch.manual_seed(0)
    return M.build_frcnn(backbone, **{**SMALL, **kw})


@pytest.fixture(scope="module")
def r18():
    return _small()


# --------------------------------------------------------------------- anchors, targets
def test_anchor_shapes_are_the_documented_ones(r18):
    t = M.anchor_table(r18)
    p2 = t[t["level"] == "p2"]
    assert sorted(zip(p2["w"], p2["h"])) == [(8, 8), (8, 10), (10, 14), (12, 12)]
    assert t.groupby("level")["stride"].first().tolist() == [4, 8, 16, 32, 64]
    assert t["size"].max() == 182


def test_a_10px_face_is_matched_on_p2_only(r18):
    m = M.match_anchors(r18, [[59, 59, 69, 69]], (128, 128))  # centred on the P2 grid point 64
    pos = m[m["label"] == 1]
    assert set(pos["level"]) == {"p2"}
    assert sorted(zip(pos["w"], pos["h"])) == [(8, 10), (10, 14)]
    assert pos["iou"].max() == pytest.approx(0.8)
    left_out = m[m["label"] == -1]  # between 0.3 and 0.7: neither positive nor negative
    assert ((left_out["iou"] > 0.3) & (left_out["iou"] < 0.7)).all()
    assert (12, 12) in set(zip(left_out["w"], left_out["h"]))  # IoU 100/144
    # a 16-px face belongs to P3, where the 16-px anchor fits exactly
    m16 = M.match_anchors(r18, [[56, 56, 72, 72]], (128, 128))
    assert set(m16.loc[m16["label"] == 1, "level"]) == {"p3"}
    assert m16["iou"].max() == pytest.approx(1.0)


def test_ignored_boxes_take_anchors_and_proposals_out_of_the_loss(r18):
    region = [0, 0, 40, 40]
    m = M.match_anchors(r18, [[59, 59, 69, 69]], (128, 128), ignore_boxes=[region])
    left = m[(m["label"] == -1) & (m["iou"] == 0)]
    assert len(left) and (left[["x2", "y2"]].to_numpy() <= 40 + 64).all()
    inside = (left["x1"] >= 0) & (left["y1"] >= 0) & (left["x2"] <= 40) & (left["y2"] <= 40)
    assert inside.any()
    # the box head never samples a negative proposal lying inside the ignored region
    torch.manual_seed(0)
    props = torch.tensor([[5.0, 5, 15, 15], [10, 10, 30, 30], [80, 80, 120, 120], [90, 10, 120, 40]])
    tgt = {"boxes": torch.tensor([[59.0, 59, 69, 69]]), "labels": torch.tensor([1]),
           "ignore_boxes": torch.tensor([region], dtype=torch.float32)}
    kept, _, labels, _ = r18.roi_heads.select_training_samples([props.clone()], [tgt])
    kept = kept[0]
    assert not ((kept[:, 2] <= 40) & (kept[:, 3] <= 40)).any()
    assert (labels[0] == 0).sum() == 2 and (labels[0] == 1).sum() == 1  # the two outside + the gt


def test_collate_keeps_the_box_convention_and_splits_ignored_boxes():
    img = np.zeros((30, 50, 3), np.uint8)
    img[..., 0] = 255
    tgt = {"boxes": np.array([[1.5, 2, 11.5, 12], [20, 5, 20.5, 9], [30, 3, 40, 13], [5, 5, 5, 9]], np.float32),
           "ignore": np.array([False, False, True, False]), "image_id": "e/x"}
    images, targets = M.collate([(img, tgt)], min_box=1.0)
    assert images[0].shape == (3, 30, 50) and images[0][0].max() == 1.0 and images[0].dtype == torch.float32
    t = targets[0]
    assert torch.equal(t["boxes"], torch.tensor([[1.5, 2, 11.5, 12]]))  # xyxy, unconverted
    assert t["labels"].tolist() == [1]
    assert t["ignore_boxes"].tolist() == [[20, 5, 20.5, 9], [30, 3, 40, 13]]  # too thin, ignored
    with pytest.raises(ValueError, match="e/x.*2 boxes but 1 ignore"):
        M.collate([(img, {"boxes": tgt["boxes"][:2], "ignore": [False], "image_id": "e/x"})])


# ------------------------------------------------------------------------------ training
def _scene(seed: int, hw=(64, 80)):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (*hw, 3), dtype=np.uint8)
    x, y = 10 + 6 * seed, 12 + 3 * seed
    img[y:y + 14, x:x + 12] = 230
    return img, {"boxes": np.array([[x, y, x + 12, y + 14]], np.float32), "ignore": np.array([False]),
                 "image_id": f"e/{seed}"}


@pytest.mark.parametrize("backbone", ["resnet50", "bh_resnet50", "hrnet18", "bh_hrnet18"])
def test_one_training_step_per_backbone(backbone):
    model = _small(backbone).train()
    images, targets = M.collate([_scene(0, hw=(64, 64))])
    first = next(p for n, p in model.named_parameters() if n.startswith("backbone.body")).detach().clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total) and total > 0
    total.backward()
    opt.step()
    after = next(p for n, p in model.named_parameters() if n.startswith("backbone.body"))
    assert not torch.equal(first, after)  # the gradient reached the backbone


@pytest.mark.slow
def test_it_learns_two_scenes():
    """80 steps on two scenes: the top detection lands on each face (the pipeline learns)."""
    from tinylib.boxes import box_iou

    model = _small("resnet18", fpn_channels=32, representation_size=64).train()
    scenes = [_scene(0), _scene(1)]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(80):
        losses = model(*M.collate(scenes))
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    det = D.Detector(model, device="cpu", score_threshold=0.3)
    for img, t in scenes:
        boxes, _ = det.detect(img)
        assert len(boxes) and box_iou(boxes[:1], t["boxes"])[0, 0] > 0.5


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny synthetic data root (WIDER layout + TinyPerson json), built in seconds."""
    from tinylib.data.synthetic import make_world

    return make_world(3, 3, image_size=(192, 128), seed=1,
                      root=tmp_path_factory.mktemp("frcnn_world") / "w")


def _recipe(world, out=None, epochs=2, **eval_cfg):
    return {"name": "t", "model": {"backbone": "resnet18", **SMALL},
            "data": {"source": "wider", "root": str(world), "crop": 64, "scales": [1.0, 2.0]},
            "train": {"epochs": epochs, "batch_size": 2, "max_steps_per_epoch": 1, "optimizer": "adamw",
                      "lr": 1e-3, "amp": "off", "seed": 3, **({"out_dir": str(out)} if out else {})},
            "eval": eval_cfg or None}


def test_resume_gives_identical_next_steps(world, tmp_path):
    full, h_full = T.run(_recipe(world, epochs=2), out_dir=tmp_path / "a", progress=False)
    T.run(_recipe(world, epochs=1), out_dir=tmp_path / "b", progress=False)
    resumed, h_res = T.run(_recipe(world, epochs=2), out_dir=tmp_path / "b", resume=True, progress=False)
    assert len(h_full) == len(h_res) == 2
    assert np.allclose(h_full["loss"], h_res["loss"], rtol=0, atol=1e-6)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_recipe_runs_end_to_end_and_exports(world, tmp_path):
    weights = tmp_path / "w.pt"
    model, hist = T.run(_recipe(world, epochs=1, max_images=1), out_dir=tmp_path / "r",
                        progress=False, export=weights)
    assert {"ap_easy", "ap_medium", "ap_hard"} <= set(hist.columns)
    assert (tmp_path / "r" / "history.csv").is_file() and T.history_path(weights).is_file()
    loaded = D.load_detector(weights)
    ref = {k: (v.half().float() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, ref[k]), k
    from_ckpt = D.load_detector(tmp_path / "r" / "last.pt")  # an engine checkpoint
    assert from_ckpt.config == model.config
    with pytest.raises(FileNotFoundError, match="not found"):
        D.load_detector(tmp_path / "nothing.pt")


def test_tinyperson_source_hook(world):
    ds = T.build_train_set({"source": "tinyperson", "root": str(world), "crop": 64}, seed=0)
    assert type(ds).__name__ == "TinyPersonDataset" and len(ds) == 3
    image, target = ds[0]
    assert image.shape == (64, 64, 3) and target["boxes"].shape[1] == 4
    with pytest.raises(ValueError, match="data.source must be one of"):
        T.build_train_set({"source": "coco"})
    with pytest.raises(ValueError, match=r"unknown data settings \['crops'\]"):
        T.build_train_set({"crops": 64})


# --------------------------------------------------------------- output and evaluation
def test_detector_boxes_are_in_the_library_convention(r18):
    det = D.Detector(r18, device="cpu", score_threshold=0.0)
    boxes, scores = det.detect(np.random.default_rng(0).integers(0, 255, (50, 90, 3), dtype=np.uint8))
    assert boxes.dtype == np.float32 and boxes.shape == (len(scores), 4) and len(scores)
    assert (np.diff(scores) <= 0).all()  # sorted by score
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 90).all() and (boxes[:, 3] <= 50).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    rows = D.to_wider(boxes, scores)
    assert np.allclose(rows[:, 2], boxes[:, 2] - boxes[:, 0])  # width x2 - x1, no +1
    assert np.allclose(rows[:, :4], box_convert(boxes.astype(np.float64), "xyxy", "xywh"))


class _Oracle(torch.nn.Module):
    """Answers torchvision-style detections known in advance, looked up by image content."""

    def __init__(self, answers: dict):
        super().__init__()
        self.answers = answers

    @staticmethod
    def key(image) -> str:
        arr = np.asarray(image, np.uint8) if not isinstance(image, torch.Tensor) else (
            (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
        return hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()

    def forward(self, images):
        out = []
        for im in images:
            b = torch.as_tensor(self.answers[self.key(im)], dtype=torch.float32).reshape(-1, 4)
            top = 0.9 - 0.01 * (int(self.key(im)[:4], 16) % 30)  # distinct scores across images
            out.append({"boxes": b, "scores": torch.linspace(top, top - 0.3, len(b)),
                        "labels": torch.ones(len(b), dtype=torch.int64)})
        return out


def test_evaluation_through_the_widerface_evaluator_on_a_toy_ground_truth(r18):
    scenes = [_scene(k) for k in range(3)]
    gt = SimpleEvalGT({t["image_id"]: box_convert(t["boxes"].astype(np.float64), "xyxy", "xywh")
                       for _, t in scenes})
    oracle = _Oracle({_Oracle.key(img): t["boxes"] for img, t in scenes})
    det = D.Detector(oracle, device="cpu")
    preds = {t["image_id"]: D.to_wider(*r) for (_, t), r in zip(scenes, det.detect_many([s[0] for s in scenes]))}
    assert evaluate(preds, gt).ap["hard"] == pytest.approx(1.0)
    wrong = {k: np.hstack([box_convert(v[:, :4], "xywh", "xyxy"), v[:, 4:]]) for k, v in preds.items()}
    assert evaluate(wrong, gt).ap["hard"] < 0.5  # xyxy mistaken for xywh fails the test
    # an untrained model goes through the same evaluator
    real = {t["image_id"]: D.to_wider(*D.Detector(r18, device="cpu", score_threshold=0).detect(img))
            for img, t in scenes}
    ap = evaluate(real, gt).ap
    assert all(0.0 <= v <= 1.0 for v in ap.values())


def test_evaluate_wider_and_tinyperson_on_a_world(world):
    from tinylib.data.tinyperson import TinyPersonDataset
    from tinylib.data.widerface import WiderFaceDataset

    ds = WiderFaceDataset(world, "val")  # faces
    faces = _Oracle({_Oracle.key(ds[i][0]): ds.target(i)["boxes"] for i in range(len(ds))})
    res, preds = D.evaluate_wider(faces, world, detector_kw={"device": "cpu"})
    assert set(preds) == set(ds.images[i].rsplit(".", 1)[0] for i in range(len(ds)))
    assert res.ap["hard"] == pytest.approx(1.0)
    assert res.settings == ("easy", "medium", "hard", "le20")  # + the hard faces <= 20 px
    assert res.n_faces["le20"] == 0 or res.ap["le20"] == pytest.approx(1.0)
    tp = TinyPersonDataset(world, "test")  # persons, on the same pictures
    persons = _Oracle({_Oracle.key(tp[i][0]): tp.target(i)["boxes"] for i in range(len(tp))})
    assert D.evaluate_wider(persons, world, detector_kw={"device": "cpu"})[0].ap["hard"] < 0.5
    res_tp, preds_tp = D.evaluate_tinyperson(persons, world, detector_kw={"device": "cpu"})
    assert all(k.endswith(".jpg") for k in preds_tp)  # keyed by file_name, as the ground truth
    assert res_tp.ap[("all", 0.5)] == pytest.approx(1.0)


# ------------------------------------------------------------------------- weights, recipes
def test_weights_from_scratch_or_a_file_and_clear_messages(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="no ImageNet weights exist for bh_resnet50"):
        M.build_frcnn("bh_resnet50", pretrained="imagenet")
    monkeypatch.setattr(M, "hub_checkpoint_path", lambda depth: tmp_path / f"resnet{depth}.pth")
    with pytest.raises(FileNotFoundError, match="not available offline.*pretrained: false"):
        M.build_frcnn("resnet50", pretrained="imagenet")
    with pytest.raises(TypeError, match=r"unknown Faster R-CNN settings \['anchors'\]"):
        M.build_frcnn("resnet18", anchors=[8])
    src = _small()
    torch.save(src.backbone.body.state_dict(), tmp_path / "body.pt")
    torch.manual_seed(5)
    got = M.build_frcnn("resnet18", backbone_weights=str(tmp_path / "body.pt"), **SMALL)
    for a, b in zip(src.backbone.body.state_dict().values(), got.backbone.body.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="not a state dict of this backbone"):
        M.build_frcnn("bh_resnet50", backbone_weights=str(tmp_path / "body.pt"), **SMALL)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("frcnn_*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_parse(path):
    cfg = T.load_config(path)
    assert cfg["name"] == path.stem
    engine.TrainConfig.from_dict(cfg["train"])  # every train key is a known setting
    T._data_settings(cfg["data"])
    backbone = path.stem[len("frcnn_"):]
    for suffix in ("_wider_cpu", "_tinyperson_cpu", "_wider", "_quick"):
        if backbone.endswith(suffix):
            backbone = backbone[: -len(suffix)]
            break
    assert cfg["model"]["backbone"] == backbone
    assert set(cfg["model"]) <= set(M.MODEL_DEFAULTS)
    if path.stem.endswith("_wider_cpu"):  # scored afterwards by tools/eval_frcnn_wider.py
        assert "eval" not in cfg
    else:
        assert T.make_eval_fn(cfg["eval"], cfg["train"]["epochs"]) is not None
    if path.stem.endswith("_quick"):
        model = T.build_model(cfg["model"])
        assert model.config["backbone"] == backbone and model.backbone.out_channels == 64


def test_recipes_compare_backbones_under_one_recipe():
    """The BH comparison: the full recipes differ only in the backbone (and name)."""
    def body(p):
        cfg = T.load_config(p)
        cfg["model"] = {k: v for k, v in cfg["model"].items() if k != "backbone"}
        return {k: v for k, v in cfg.items() if k != "name"}

    for kind in ("wider", "wider_cpu", "tinyperson_cpu"):
        full = sorted((REPO / "configs").glob(f"frcnn_*_{kind}.yaml"))
        assert {p.stem for p in full} >= {f"frcnn_resnet50_{kind}", f"frcnn_bh_resnet50_{kind}"}
        assert all(body(p) == body(full[0]) for p in full), kind


# ------------------------------------------------------------- toolbox options (chapter 10)
def test_ssh_context_keeps_shapes():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 9, 7)
    y = M.SSHContext(16)(x)
    assert y.shape == x.shape and (y >= 0).all()
    with pytest.raises(ValueError, match="divisible by 4"):
        M.SSHContext(10)


def test_single_level_puts_every_anchor_on_p3(world):
    m = _small(levels="single", context_module="ssh")
    t = M.anchor_table(m)
    assert set(t["level"]) == {"p3"} and set(t["stride"]) == {8} and len(t) == 20
    feats = m.backbone(torch.zeros(1, 3, 64, 64))
    assert list(feats) == ["p3"] and feats["p3"].shape[-2:] == (8, 8)
    images, targets = M.collate([(np.zeros((64, 64, 3), np.uint8),
                                  {"boxes": np.array([[10, 10, 30, 30]], np.float32)})])
    m.train()
    losses = m(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    with pytest.raises(ValueError, match="levels"):
        _small(levels="p2")


def test_s3fd_matching_gives_a_tiny_face_its_top_n_anchors(r18):
    s3fd = _small(rpn_matching="s3fd", s3fd_top_n=5)
    for box in ([[57, 58, 66, 69]], [[61, 61, 65, 66]]):  # a 10-px and a 4-px face, off the grid
        plain = M.match_anchors(r18, box, (128, 128))
        got = M.match_anchors(s3fd, box, (128, 128))
        all_iou = np.sort(M.match_anchors(_small(rpn_fg_iou=0.1, rpn_bg_iou=0.1), box, (128, 128))["iou"])[::-1]
        n035, n01 = int((all_iou >= 0.35).sum()), int((all_iou > 0.1).sum())
        assert (got["label"] == 1).sum() == max(n035, min(5, n01)) >= (plain["label"] == 1).sum()
        assert got[got["label"] == 1]["iou"].min() > 0.1
    with pytest.raises(ValueError, match="rpn_matching"):
        _small(rpn_matching="atss")


def test_init_weights_start_from_a_trained_detector(r18, tmp_path):
    w = D.save_weights(r18, tmp_path / "det.pt", half=False)
    same = _small(init_weights=str(w))  # every tensor fits: the same detector
    for (k, a), b in zip(r18.state_dict().items(), same.state_dict().values()):
        assert torch.equal(a, b), k
    torch.manual_seed(1)
    ssh = M.build_frcnn("resnet18", **{**SMALL, "context_module": "ssh", "init_weights": str(w)})
    fresh = M._load_init_weights(ssh, w)  # what the trained detector did not have stays fresh
    assert fresh and all(k.startswith("backbone.context.") for k in fresh)
    assert torch.equal(ssh.state_dict()["rpn.head.conv.0.0.weight"], r18.state_dict()["rpn.head.conv.0.0.weight"])
    assert D.load_detector(D.save_weights(ssh, tmp_path / "ssh.pt")).config["init_weights"] is None
    with pytest.raises(ValueError, match="of this detector.s weights fit it"):
        M.build_frcnn("bh_resnet50", **{**SMALL, "backbone_width": 8, "fpn_channels": 8, "representation_size": 24,
                                        "init_weights": str(w)})
    with pytest.raises(FileNotFoundError, match="model.init_weights: file not found"):
        _small(init_weights=str(tmp_path / "none.pt"))
