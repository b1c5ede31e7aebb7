"""Tiny-image classification sets (CIFAR-100 binary, ImageNet32 npz) built here in the
official layouts, and ``tinylib.data.images`` (reading any image file as uint8 RGB)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tinylib.data import cifar, imagenet32, images  # noqa: E402
from tinylib.data._parse import AnnotationError  # noqa: E402


def planar_records(rgb: np.ndarray, labels: np.ndarray) -> bytes:
    """Official CIFAR layout: label bytes, then R plane, G plane, B plane."""
    planes = rgb.transpose(0, 3, 1, 2).reshape(len(rgb), -1)
    return np.hstack([labels.astype(np.uint8), planes]).tobytes()


def sample_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def test_cifar_binary_layout(tmp_path):
    rgb = sample_images(5)
    rgb[0, 0, 0] = [255, 0, 0]  # a red top-left pixel in the first image
    labels = np.array([[3, 30], [19, 99], [0, 0], [7, 1], [1, 2]])
    d = tmp_path / "cifar100" / "cifar-100-binary"
    d.mkdir(parents=True)
    (d / "train.bin").write_bytes(planar_records(rgb, labels))
    (d / "fine_label_names.txt").write_text("\n".join(f"f{i}" for i in range(100)) + "\n")
    got, lab = cifar.read_cifar_bin(d / "train.bin")
    np.testing.assert_array_equal(got, rgb)
    np.testing.assert_array_equal(got[0, 0, 0], [255, 0, 0])
    np.testing.assert_array_equal(lab, labels)
    data = cifar.load_cifar100("train", root=tmp_path)
    assert data["fine"].tolist() == [30, 99, 0, 1, 2] and data["coarse"].tolist() == [3, 19, 0, 7, 1]
    ds = cifar.Cifar100(root=tmp_path, split="train")
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 30
    assert float(x[0, 0, 0]) == 1.0 and float(x[1, 0, 0]) == 0.0
    assert ds.classes[30] == "f30"
    raw = cifar.Cifar100(root=tmp_path, label="coarse", transform=lambda im: im)
    img, y = raw[1]
    assert img.dtype == np.uint8 and img.shape == (32, 32, 3) and y == 19


def test_cifar_truncated_and_bad_label(tmp_path):
    rgb = sample_images(2)
    blob = planar_records(rgb, np.array([[1, 2], [3, 4]]))
    (tmp_path / "cut.bin").write_bytes(blob[:-10])
    with pytest.raises(AnnotationError, match=r"cut.bin.*record 2 has 3064 bytes"):
        cifar.read_cifar_bin(tmp_path / "cut.bin")
    (tmp_path / "bad.bin").write_bytes(planar_records(rgb, np.array([[1, 2], [3, 140]])))
    with pytest.raises(AnnotationError, match=r"record 2.*label 140"):
        cifar.read_cifar_bin(tmp_path / "bad.bin")
    with pytest.raises(FileNotFoundError, match="nothing.bin"):
        cifar.read_cifar_bin(tmp_path / "nothing.bin")


def write_npz(path, rgb, labels_1based, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = rgb.transpose(0, 3, 1, 2).reshape(len(rgb), -1)
    np.savez(path, data=data, labels=np.asarray(labels_1based), **extra)
    return path


def test_imagenet32_npz(tmp_path):
    base = tmp_path / "imagenet32" / "Imagenet32_train_npz"
    a, b = sample_images(3, 1), sample_images(2, 2)
    write_npz(base / "train_data_batch_2.npz", b, [1000, 5], mean=np.zeros(3072))
    write_npz(base / "train_data_batch_1.npz", a, [1, 2, 3], mean=np.zeros(3072))
    images_a, labels_a = imagenet32.read_npz(base / "train_data_batch_1.npz")
    np.testing.assert_array_equal(images_a, a)
    assert labels_a.tolist() == [0, 1, 2]  # 1-based in the file
    files = imagenet32.split_files("train", root=tmp_path)
    assert [f.name for f in files] == ["train_data_batch_1.npz", "train_data_batch_2.npz"]
    ds = imagenet32.ImageNet32(root=tmp_path, split="train")
    assert len(ds) == 5 and ds.labels.tolist() == [0, 1, 2, 999, 4]
    x, y = ds[3]
    assert y == 999 and x.shape == (3, 32, 32)
    np.testing.assert_allclose(x.numpy().transpose(1, 2, 0) * 255, b[0], atol=1e-3)
    img, y = imagenet32.ImageNet32(files=files, transform=lambda im: im)[-1]
    np.testing.assert_array_equal(img, b[1])


def test_imagenet32_rejects_bad_files(tmp_path):
    p = write_npz(tmp_path / "zero.npz", sample_images(2), [0, 3])
    with pytest.raises(AnnotationError, match=r"zero.npz.*labels\[0\] = 0"):
        imagenet32.read_npz(p)
    obj = tmp_path / "obj.npz"
    np.savez(obj, data=np.array([{"a": 1}], dtype=object), labels=np.array([1]))
    with pytest.raises(AnnotationError, match="no pickle"):
        imagenet32.read_npz(obj)
    with pytest.raises(FileNotFoundError, match="tinylib-data status"):
        imagenet32.split_files("val", root=tmp_path)


# --------------------------------------------------------------------------- image files
def _palette_image():
    im = Image.new("P", (4, 3), 1)
    im.putpalette([0, 0, 0, 1, 2, 3] + [0] * (256 * 3 - 6))
    return im


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda: Image.new("L", (4, 3), 77), [77, 77, 77]),
        (lambda: Image.new("RGBA", (4, 3), (200, 100, 0, 255)), [200, 100, 0]),
        (lambda: Image.new("RGBA", (4, 3), (0, 0, 0, 0)), [255, 255, 255]),  # on white
        (lambda: _palette_image(), [1, 2, 3]),
        (lambda: Image.fromarray(np.full((3, 4), 65535, np.uint16)), [255, 255, 255]),
        (lambda: Image.new("1", (4, 3), 1), [255, 255, 255]),
    ],
    ids=["gray", "rgba", "transparent", "palette", "16bit", "bilevel"],
)
def test_read_image_converts(tmp_path, make, expect):
    path = tmp_path / "im.png"
    make().save(path)
    arr = images.read_image(path)
    assert arr.dtype == np.uint8 and arr.shape == (3, 4, 3)
    np.testing.assert_array_equal(arr[0, 0], expect)


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        images.read_image(tmp_path / "missing.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"\x00" * 20)
    with pytest.raises(OSError, match="junk.jpg"):
        images.read_image(tmp_path / "junk.jpg")


def test_to_rgb_uint8_float_and_16bit():
    np.testing.assert_array_equal(images.to_rgb_uint8(np.full((2, 2), 0.5))[0, 0], [128] * 3)
    np.testing.assert_array_equal(images.to_rgb_uint8(np.full((2, 2, 3), 257, np.uint16))[0, 0], [1] * 3)


def test_draw_boxes_and_ellipses():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    images.draw_boxes(ax, images.blank_canvas(50, 40), [[1, 2, 10, 20], [5, 5, 5, 9]], ignore=[False, True])
    assert len(ax.patches) == 2 and ax.patches[1].get_linestyle() == "--"
    images.draw_ellipses(ax, None, [[10, 5, np.pi / 2, 20, 20]], boxes=[[15, 10, 25, 30]])
    assert len(ax.patches) == 4
    plt.close(fig)
