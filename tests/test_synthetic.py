"""The synthetic tiny-face world: layout, determinism, cache, artefacts, attributes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from PIL import Image
from sklearn.metrics import roc_auc_score

from tinylib.data import synthetic as syn

SMALL = {"n_train": 8, "n_val": 8, "image_size": (320, 240)}


def _small_world(root, seed=3):
    return syn.make_world(SMALL["n_train"], SMALL["n_val"], seed=seed,
                          image_size=SMALL["image_size"], size_dist="quick", root=root)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return _small_world(tmp_path_factory.mktemp("world") / "root")


def parse_bbx_txt(path: Path) -> dict[str, np.ndarray]:
    """Independent reader of the official text format (not tinylib.data.widerface)."""
    lines = path.read_text().split("\n")
    assert lines[-1] == "", "file must end with a newline"
    out, i = {}, 0
    while i < len(lines) - 1:
        name, count = lines[i], int(lines[i + 1])
        assert name.endswith(".jpg") and name.count("/") == 1, f"line {i + 1}: {name!r}"
        rows = lines[i + 2:i + 2 + max(count, 1)]
        for r in rows:
            assert r.endswith(" ") and len(r.split()) == 10, f"bad box line {r!r}"
        vals = np.array([[int(v) for v in r.split()] for r in rows], dtype=np.int64)
        if count == 0:
            assert rows == ["0 0 0 0 0 0 0 0 0 0 "]
            vals = vals[:0]
        out[name] = vals
        i += 2 + max(count, 1)
    return out


# --------------------------------------------------------------------------- layout


def test_layout_and_counts_match_images_on_disk(world):
    man = syn.read_manifest(world)
    for split in ("train", "val"):
        gt = parse_bbx_txt(world / "widerface" / f"wider_face_{split}_bbx_gt.txt")
        on_disk = sorted(str(p.relative_to(world / "widerface" / f"WIDER_{split}" / "images"))
                         for p in (world / "widerface" / f"WIDER_{split}" / "images").rglob("*.jpg"))
        assert sorted(gt) == on_disk
        assert len(gt) == man["counts"][split]["images"] == SMALL[f"n_{split}"]
        assert sum(len(v) for v in gt.values()) == man["counts"][split]["faces"]
        for name, boxes in gt.items():
            assert name.split("/")[0] in syn.EVENTS
            with Image.open(world / "widerface" / f"WIDER_{split}" / "images" / name) as im:
                W, H = im.size
                assert im.mode == "RGB" and im.format == "JPEG"
            assert (W, H) == SMALL["image_size"]
            x, y, w, h = boxes[:, :4].T
            assert np.all((w > 0) & (h > 0) & (x >= 0) & (y >= 0) & (x + w <= W) & (y + h <= H))
            assert set(np.unique(boxes[:, 4])) <= {0, 1, 2}  # blur
            assert set(np.unique(boxes[:, 8])) <= {0, 1, 2}  # occlusion
            assert set(np.unique(boxes[:, 6])) <= {0, 1}  # illumination


def test_image_sizes_csv(world):
    sizes = pd.read_csv(world / "widerface" / "image_sizes_train_val.csv")
    assert list(sizes.columns) == ["split", "image", "width", "height", "num_faces_in_gt"]
    for split in ("train", "val"):
        gt = parse_bbx_txt(world / "widerface" / f"wider_face_{split}_bbx_gt.txt")
        part = sizes[sizes.split == split]
        assert part.image.tolist() == list(gt)
        assert part.num_faces_in_gt.tolist() == [len(v) for v in gt.values()]
        assert (part.width == SMALL["image_size"][0]).all()


def test_zero_face_images_use_the_official_dummy_line():
    empty = pd.DataFrame(columns=syn.FACE_COLUMNS, dtype=np.int64)
    one = pd.DataFrame([[1, 2, 3, 4, 0, 0, 0, 0, 1, 0]], columns=syn.FACE_COLUMNS)
    text = syn.worlds._bbx_txt([("0--Crowd/a.jpg", empty), ("1--Street/b.jpg", one)])
    assert text == ("0--Crowd/a.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n"
                    "1--Street/b.jpg\n1\n1 2 3 4 0 0 0 0 1 0 \n")


def test_eval_mats_follow_official_structure_and_height_rule(world):
    gt = parse_bbx_txt(world / "widerface" / "wider_face_val_bbx_gt.txt")
    face = scipy.io.loadmat(world / "widerface" / "eval_gt" / "wider_face_val.mat")
    events = [str(e[0][0]) for e in face["event_list"]]
    assert face["event_list"].shape == (len(events), 1)
    total = 0
    for setting in ("easy", "medium", "hard"):
        m = scipy.io.loadmat(world / "widerface" / "eval_gt" / f"wider_{setting}_val.mat")
        for var in ("event_list", "file_list", "face_bbx_list", "blur_label_list",
                    "expression_label_list", "illumination_label_list", "invalid_label_list",
                    "occlusion_label_list", "pose_label_list", "gt_list"):
            assert m[var].shape == (len(events), 1), var
        for ei, event in enumerate(events):
            files = [str(f[0][0]) for f in m["file_list"][ei, 0]]
            for fi, stem in enumerate(files):
                assert not stem.endswith(".jpg")
                boxes = m["face_bbx_list"][ei, 0][fi, 0]
                txt = gt[f"{event}/{stem}.jpg"]
                assert boxes.shape == (len(txt), 4) and boxes.dtype == np.float64
                np.testing.assert_array_equal(boxes, txt[:, :4])
                np.testing.assert_array_equal(m["occlusion_label_list"][ei, 0][fi, 0].ravel(),
                                              txt[:, 8])
                keep = m["gt_list"][ei, 0][fi, 0].ravel().astype(int)
                expected = np.flatnonzero(txt[:, 3] > syn.KEEP_HEIGHTS[setting]) + 1  # 1-based
                np.testing.assert_array_equal(keep, expected)
                total += len(keep)
    assert total > 0
    split = scipy.io.loadmat(world / "widerface" / "split_mat" / "wider_face_train.mat")
    assert "face_bbx_list" in split and "gt_list" not in split


def test_keep_rule_is_height_only_and_nested():
    h = np.array([5, 10, 11, 30, 31, 50, 51, 200])
    assert syn.keep_indices(h, "hard").tolist() == [2, 3, 4, 5, 6, 7]
    assert syn.keep_indices(h, "medium").tolist() == [4, 5, 6, 7]
    assert syn.keep_indices(h, "easy").tolist() == [6, 7]


def test_tinyperson_json(world):
    n_ignore = 0
    for split, wsplit in (("train", "train"), ("test", "val")):
        coco = json.loads((world / "tinyperson" / "annotations" / f"tiny_set_{split}.json")
                          .read_text())
        assert coco["categories"] == [{"id": 1, "name": "person"}]
        images = {im["id"]: im for im in coco["images"]}
        assert len(images) == SMALL[f"n_{wsplit}"]
        for im in images.values():
            path = world / "tinyperson" / im["file_name"]
            assert path.is_file(), path
            assert path.resolve() == (world / "widerface" / f"WIDER_{wsplit}" / "images" /
                                      im["file_name"].split("/", 1)[1]).resolve()
        ids = set()
        for a in coco["annotations"]:
            assert set(a) >= {"id", "image_id", "bbox", "category_id", "area", "iscrowd",
                              "ignore", "uncertain", "logo", "in_dense_image", "segmentation"}
            im = images[a["image_id"]]
            x, y, w, h = a["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= im["width"] and y + h <= im["height"]
            assert a["area"] == pytest.approx(w * h) and a["category_id"] == 1
            ids.add(a["id"])
            n_ignore += a["ignore"]
        assert len(ids) == len(coco["annotations"])
    assert n_ignore > 0


def test_loaders_of_tinylib_read_the_world(world):
    widerface = pytest.importorskip("tinylib.data.widerface")
    txt = widerface.load_faces("val", root=world)
    mat = widerface.load_faces("val", root=world, source="mat")
    assert len(txt) == syn.read_manifest(world)["counts"]["val"]["faces"]
    pd.testing.assert_frame_equal(txt.reset_index(drop=True), mat.reset_index(drop=True),
                                  check_dtype=False)
    gt = widerface.load_eval_gt(root=world)
    assert len(gt.images) == SMALL["n_val"]
    assert sum(len(v) for v in gt.keep["hard"].values()) == syn.read_manifest(world)["val_kept"]["hard"]


# --------------------------------------------------------------------------- determinism, cache


def test_deterministic_by_seed(world, tmp_path):
    again = _small_world(tmp_path / "again")
    other = _small_world(tmp_path / "other", seed=4)
    for rel in ("widerface/wider_face_train_bbx_gt.txt", "widerface/wider_face_val_bbx_gt.txt",
                "tinyperson/annotations/tiny_set_train.json"):
        assert (world / rel).read_bytes() == (again / rel).read_bytes(), rel
        assert (world / rel).read_bytes() != (other / rel).read_bytes(), rel
    jpg = "widerface/WIDER_val/images/0--Crowd/0_Crowd_crowd_0_0.jpg"
    assert (world / jpg).read_bytes() == (again / jpg).read_bytes()


def test_cache_reuse_and_atomic_publish(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_CACHE", str(tmp_path / "cache"))
    kw = {"seed": 1, "image_size": (128, 96), "size_dist": "quick"}
    first = syn.make_world(2, 2, **kw)
    assert first.parent == tmp_path / "cache" / "synthetic"
    stamp = (first / "world.json").stat().st_mtime_ns
    t0 = time.perf_counter()
    second = syn.make_world(2, 2, **kw)
    assert second == first and time.perf_counter() - t0 < 1.0
    assert (first / "world.json").stat().st_mtime_ns == stamp
    assert syn.make_world(2, 2, **{**kw, "seed": 2}) != first  # parameters -> key
    # a concurrent builder that finishes second discards its own copy
    key = syn.read_manifest(first)["key"]
    loser = tmp_path / "cache" / "synthetic" / ".loser"
    loser.mkdir()
    (loser / "world.json").write_text("{}")
    syn.worlds._publish(loser, first, key)
    assert syn.read_manifest(first)["key"] == key
    leftovers = [p.name for p in first.parent.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    # an explicit root holding another world is not overwritten
    with pytest.raises(ValueError, match="not the world asked for"):
        syn.make_world(3, 2, root=first, **kw)


# --------------------------------------------------------------------------- scenes


@pytest.fixture(scope="module")
def scenes():
    out = []
    for i in range(10):
        rng = np.random.default_rng(1000 + i)
        out.append(syn.render_scene(rng, 512, 384, event=syn.EVENTS[i % 4], size_dist="quick"))
    return out


def _saturation(p):
    mx, mn = p.max(axis=2), p.min(axis=2)
    return np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)


def _scores(img, x, y, w, h):
    """Trivial 'detectors': saturation, edge energy, local variance, paste edge.

    The paste-edge score is the luminance step across the box border divided by the steps
    one pixel further in and out: a patch pasted with a hard edge has its step exactly on
    the box border (ratio >> 1), a natural or feathered boundary has not."""
    p = img[y:y + h, x:x + w].astype(np.float32) / 255.0
    g = p.mean(axis=2)
    gy, gx = np.gradient(g)
    H, W = img.shape[:2]
    full = np.pad(img.astype(np.float32).mean(axis=2) / 255.0, 2, mode="edge")
    x, y = x + 2, y + 2  # padded coordinates

    def ring(d):  # pixels at offset d from the box border (d=0 inside, d=1 outside ...)
        top, bot = full[y - d, x:x + w], full[y + h - 1 + d, x:x + w]
        left, right = full[y:y + h, x - d], full[y:y + h, x + w - 1 + d]
        return np.concatenate([top, bot, left, right])

    r_in1 = np.concatenate([full[y + 1, x:x + w], full[y + h - 2, x:x + w],
                            full[y:y + h, x + 1], full[y:y + h, x + w - 2]])
    step = np.abs(ring(0) - ring(1)).mean()
    around = 0.5 * (np.abs(r_in1 - ring(0)).mean() + np.abs(ring(1) - ring(2)).mean())
    return (_saturation(p).mean(), np.hypot(gx, gy).mean(), g.var(), step / (around + 1e-3))


def _face_vs_background(scenes, render=None):
    rng = np.random.default_rng(0)
    face_s, bg_s = [], []
    for img, faces, _ in scenes:
        H, W = img.shape[:2]
        f = faces[(faces.invalid == 0) & (faces.h >= 6)]
        boxes = f[["x", "y", "w", "h"]].to_numpy()
        shown = img if render is None else render(img, boxes, rng)
        for x, y, w, h in boxes:
            for _ in range(50):
                bx, by = rng.integers(0, W - w + 1), rng.integers(0, H - h + 1)
                hit = ((bx < boxes[:, 0] + boxes[:, 2]) & (boxes[:, 0] < bx + w)
                       & (by < boxes[:, 1] + boxes[:, 3]) & (boxes[:, 1] < by + h))
                if not hit.any():
                    face_s.append(_scores(shown, x, y, w, h))
                    bg_s.append(_scores(shown, bx, by, w, h))
                    break
    face_s, bg_s = np.array(face_s), np.array(bg_s)
    assert len(face_s) >= 100
    y = np.r_[np.ones(len(face_s)), np.zeros(len(bg_s))]
    aucs = [roc_auc_score(y, np.r_[face_s[:, j], bg_s[:, j]]) for j in range(face_s.shape[1])]
    return {name: max(a, 1 - a) for name, a in zip(SCORES, aucs)}


SCORES = ["saturation", "edge energy", "variance", "paste edge"]


def _naive_paste(img, boxes, rng):
    """The control: grayscale LFW faces pasted with hard edges into the same boxes."""
    faces, _ = syn.face_crop_library()
    out = img.copy()
    for x, y, w, h in boxes:
        lum = syn.scene._resize(faces[rng.integers(0, len(faces))], w, h)
        out[y:y + h, x:x + w] = np.clip(lum * 255, 0, 255).astype(np.uint8)[..., None]
    return out


def test_faces_are_not_found_by_rendering_artefacts(scenes):
    """A trivial window score must not separate faces from same-sized background windows.

    Separation = max(AUC, 1 - AUC) of the score, faces vs random non-face windows of the
    same sizes. 0.5 is chance; 0.75 means a face beats a background window 3 times out of
    4 — a shortcut a CNN would learn at once. Real photographs are not at 0.5 either (faces
    are textured, skin is saturated), so we ask for "weak" (< 0.75). The control shows the
    scores have the power to catch a naive renderer (grayscale, hard-pasted faces)."""
    ours = _face_vs_background(scenes)
    for name, sep in ours.items():
        assert sep < 0.75, f"{name} separates faces from background (separation {sep:.3f})"
    naive = _face_vs_background(scenes, render=_naive_paste)
    assert naive["saturation"] > 0.9 and naive["paste edge"] > 0.8, naive


def test_faces_are_coloured_like_the_scene_and_never_constant(scenes):
    for img, faces, _ in scenes:
        scene_sat = _saturation(img.astype(np.float32) / 255).mean()
        for r in faces[(faces.h >= 8) & (faces.occlusion == 0)].itertuples():
            patch = img[r.y:r.y + r.h, r.x:r.x + r.w].astype(np.float32)
            sat = _saturation(patch / 255).mean()
            assert sat > 0.08, "grayscale face"
            assert 0.25 * scene_sat < sat < 4 * scene_sat + 0.1
            assert patch.reshape(-1, 3).std(axis=0).max() > 2.0, "constant face patch"


def test_context_persons_and_attributes(scenes):
    n_back = 0
    for img, faces, persons in scenes:
        H, W = img.shape[:2]
        assert img.dtype == np.uint8 and img.shape[2] == 3
        for col in syn.FACE_COLUMNS:
            assert faces[col].dtype == np.int64
        assert ((persons.x >= 0) & (persons.y >= 0) & (persons.x + persons.w <= W)
                & (persons.y + persons.h <= H)).all()
        for r in faces[faces.person >= 0].itertuples():
            p = persons.iloc[r.person]
            assert p.kind == "person" and p.has_face
            # the full body box contains the face and extends well below it (context)
            assert p.x <= r.x and p.y <= r.y and r.x + r.w <= p.x + p.w
            assert p.y + p.h >= min(H, r.y + 2 * r.h)
            assert p.w >= 1.5 * r.w
            if r.occlusion == 2:
                assert p.ignore
        occ = faces.occluded_fraction
        assert ((faces.occlusion == 0) == (occ < 0.02)).all()
        assert ((faces.occlusion == 2) == (occ > 0.33)).all()
        assert (faces.invalid[faces.person < 0] == 1).all()  # dense-cluster faces
        n_back += int((~persons.has_face & (persons.kind == "person")).sum())
    all_faces = pd.concat([f for _, f, _ in scenes])
    assert all_faces.occlusion.nunique() == 3 and all_faces.blur.nunique() == 3
    assert all_faces.illumination.nunique() == 2 and n_back > 0
    kinds = pd.concat([p for _, _, p in scenes]).kind
    assert (kinds == "ignore_region").any()


def test_quick_size_distribution():
    d = syn.face_size_distribution("quick")
    h = d.sample(np.random.default_rng(0), 20000, 512)
    assert 0.75 < np.mean((h >= 8) & (h <= 60))
    assert np.mean(h > 50) > 0.03  # some "easy" faces


def test_wider_size_distribution_falls_back_to_the_stated_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))  # no WIDER files there
    d = syn.face_size_distribution(None)
    assert d.kind == "lognormal" and d.ref_width == 1024
    assert d.median == pytest.approx(np.exp(syn.WIDER_HEIGHT_LOGNORMAL[0]))
    h = d.sample(np.random.default_rng(0), 50000, 1024)
    assert np.median(h) == pytest.approx(22.3, rel=0.03)
    h512 = d.sample(np.random.default_rng(0), 50000, 512)
    assert np.median(h512) == pytest.approx(np.median(h) / 2, rel=1e-6)


@pytest.mark.realdata
def test_wider_size_distribution_uses_real_heights(real_data):
    d = syn.face_size_distribution(None)
    assert d.kind == "empirical" and len(d.heights) > 150_000
    mu, sigma = syn.fit_wider_heights()
    assert (mu, sigma) == pytest.approx(syn.WIDER_HEIGHT_LOGNORMAL, abs=2e-3)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="event"):
        syn.render_scene(np.random.default_rng(0), 100, 100, event="9--Nope")
    with pytest.raises(ValueError, match="size_dist"):
        syn.face_size_distribution("nope")
    with pytest.raises(ValueError, match="image_size"):
        syn.make_world(1, 1, image_size=(10, 10), root=os.devnull)


# --------------------------------------------------------------------------- pixels pinned

# The cached synthetic worlds are trained on, so the painter's pixels and its draws from the
# generator are pinned: sha256 digests computed with the painter as it was before it was split
# into steps (commit 5a11f83). A deliberate change of the pictures changes these digests and
# must bump ``syn.worlds.GENERATOR_VERSION``; so may a new numpy / scipy / Pillow.
PINNED_SCENES = {
    ("0--Crowd", 0): "a9c27496523a232d9dee92929ddf334ebf7c0eb194e7f9513f9e9659ec531ac5",
    ("0--Crowd", 5): "e63f716e4eca2adb096516565112d8bea0dd3b25e1f51b4d5d5aece9cb7b971a",  # cluster
    ("1--Street", 1): "384fe8619753a1bde4f8fedba4774078b1c6a929374e6216280e12122e95bf1f",
    ("2--Group", 2): "1ac7368255074646a838df6dae25955adae5ccdd440d5b5e24477b96f50609a9",
    ("3--Meeting", 3): "d72147fd97610bbeea67f7589771553b5bc0c344d5e6ecaade2372f209633266",
}
PINNED_PERSONS = "4f546141741568763d28570293499c2330e63c541b63a64c1d031b723fd755c5"


def _skip_without_every_background():
    missing = [n for n in syn.BACKGROUND_SOURCES if syn.scene._background_image(n) is None]
    if missing:
        pytest.skip(f"background sources {missing} not installed: other pixels by design")


def scene_digest(event: str, seed: int, width: int = 320, height: int = 240) -> str:
    """sha256 of a rendered scene: image bytes, face and person tables, the next draw."""
    rng = np.random.default_rng(seed)
    image, faces, persons = syn.render_scene(rng, width, height, event=event, size_dist="quick")
    d = hashlib.sha256()
    d.update(image.tobytes())
    d.update(faces[syn.FACE_COLUMNS + ["person"]].to_numpy(np.int64).tobytes())
    d.update(persons[["x", "y", "w", "h"]].to_numpy(np.int64).tobytes())
    d.update(persons[["ignore", "uncertain", "has_face"]].to_numpy(bool).tobytes())
    d.update(np.int64(rng.integers(0, 2**62)).tobytes())
    return d.hexdigest()


def persons_digest(n_seeds: int = 6) -> str:
    """sha256 of persons painted one by one over noise: with and without a face, of every
    size from 3 px, cut by the border or entirely outside (None)."""
    faces_lib, nonfaces_lib = syn.face_crop_library()
    d = hashlib.sha256()
    for seed in range(n_seeds):
        rng = np.random.default_rng(100 + seed)
        img = rng.uniform(0, 1, (120, 160, 3)).astype(np.float32)
        label = np.zeros((120, 160), np.int32)
        for j in range(6):
            fh = int(rng.integers(3, 36))
            fw = max(2, int(fh * rng.uniform(0.6, 1.0)))
            fx, fy = int(rng.integers(0, 160 - fw)), int(rng.integers(0, 120 - fh))
            if j == 5:
                fx, fy = (200, 200) if seed % 2 else (0, 0)
            person = syn.scene._Person(fx, fy, fw, fh, has_face=j % 3 != 2)
            res = syn.scene._render_person(rng, img, label, person, j + 1, faces_lib, nonfaces_lib)
            if res is None:
                d.update(b"none")
            else:
                box, n_face, attrs = res
                d.update(np.asarray(box, np.float64).tobytes())
                d.update(repr((n_face, sorted(attrs.items()))).encode())
        d.update(img.tobytes())
        d.update(label.tobytes())
        d.update(np.int64(rng.integers(0, 2**62)).tobytes())
    return d.hexdigest()


@pytest.mark.parametrize(("event", "seed"), list(PINNED_SCENES))
def test_rendered_scenes_are_pinned(event, seed):
    _skip_without_every_background()
    assert scene_digest(event, seed) == PINNED_SCENES[(event, seed)]


def test_rendered_persons_are_pinned():
    assert persons_digest() == PINNED_PERSONS


def test_person_style_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        syn.PERSON_STYLE.body_len = (1.0, 2.0)
    assert syn.PERSON_STYLE == syn.PersonStyle()


@pytest.mark.slow
def test_parallel_build_is_identical(tmp_path):
    kw = {"seed": 5, "image_size": (128, 96), "size_dist": "quick"}
    one = syn.make_world(2, 2, root=tmp_path / "one", workers=1, **kw)
    two = syn.make_world(2, 2, root=tmp_path / "two", workers=2, **kw)
    for rel in ("widerface/wider_face_train_bbx_gt.txt", "widerface/wider_face_val_bbx_gt.txt",
                "tinyperson/annotations/tiny_set_test.json"):
        assert (one / rel).read_bytes() == (two / rel).read_bytes()


def test_standard_world_parameters(monkeypatch):
    monkeypatch.setenv("TINYLIB_TIER", "quick")
    quick = syn.quick_world_params()
    assert quick["n_train"] + quick["n_val"] <= 250 and quick["image_size"][0] <= 640
    monkeypatch.setenv("TINYLIB_TIER", "cpu")  # a laptop: between the two
    cpu = syn.quick_world_params()
    assert quick["n_train"] < cpu["n_train"] < 1000
    monkeypatch.setenv("TINYLIB_TIER", "full")
    full = syn.quick_world_params()
    assert full["n_train"] >= 1000 and full["image_size"][0] == 1024
    assert full["size_dist"] is None  # the WIDER face-size distribution
