"""Reading images the one way tinylib wants them, and drawing annotations on them.

``read_image(path)`` always returns ``uint8 H x W x 3`` RGB: grayscale is replicated,
alpha is composited on white, palette images are expanded, 16-bit and float images are
rescaled to 8 bits. ``draw_boxes`` / ``draw_ellipses`` draw on a matplotlib axis.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["read_image", "as_rgb_image", "to_rgb_uint8", "draw_boxes", "draw_ellipses", "blank_canvas"]

log = logging.getLogger(__name__)


def to_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    """Any image array (H x W, H x W x 1/2/3/4; uint8/uint16/int/float/bool) -> uint8 RGB."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image of shape HxW or HxWxC (C in 1..4), got {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        pass
    elif a.dtype.kind in "ui":
        # 16-bit (or wider) integer images: scale the 16-bit range (or the max) to 0..255
        top = int(a.max(initial=0))
        maxv = 65535 if top <= 65535 else top
        a = np.clip(np.round(a.astype(np.float64) * (255.0 / maxv)), 0, 255).astype(np.uint8)
    elif a.dtype.kind == "f":
        scale = 255.0 if np.nanmax(a, initial=0.0) <= 1.0 else 1.0
        a = np.clip(np.round(np.nan_to_num(a) * scale), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"unsupported image dtype {a.dtype}")
    c = a.shape[2]
    if c in (2, 4):  # with alpha: composite on white
        alpha = a[:, :, -1:].astype(np.float64) / 255.0
        color = a[:, :, :-1].astype(np.float64)
        a = np.round(color * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
        c -= 1
    if c == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``uint8 H x W x 3`` RGB (EXIF orientation is *not* applied,
    as in the benchmarks' own readers). Missing file: ``FileNotFoundError`` naming it; a
    folder: ``IsADirectoryError``; unreadable file (corrupt, truncated, over Pillow's
    decompression-bomb limit): ``OSError`` naming it."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not an image file; give the image files "
                                f"in it (e.g. {path / '*.jpg'})")
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif mode == "PA":
                im = im.convert("RGBA")
            elif mode == "1":
                im = im.convert("L")
            elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.array(im, dtype=np.uint16)
                return to_rgb_uint8(arr)
            arr = np.array(im)
    except Image.DecompressionBombError as exc:
        limit = Image.MAX_IMAGE_PIXELS
        raise OSError(
            f"cannot read image {path}: refused as a possible decompression bomb ({exc}); "
            f"Pillow's limit is 2 x PIL.Image.MAX_IMAGE_PIXELS = 2 x {limit:,} pixels. If you "
            "trust the file, shrink it or raise PIL.Image.MAX_IMAGE_PIXELS"
        ) from None
    except UnidentifiedImageError as exc:
        raise OSError(f"cannot read image {path}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from None
    if mode == "I":  # 32-bit integer images (often 16-bit data): use the 16-bit range
        arr = arr.astype(np.int64)
        return to_rgb_uint8(np.clip(arr, 0, 65535).astype(np.uint16))
    return to_rgb_uint8(arr)


def as_rgb_image(image) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array from what a detector is handed: a path (read with
    :func:`read_image`), an array of any mode (:func:`to_rgb_uint8`) or a tensor, ``C x H x W``
    or ``H x W x C`` (moved to the CPU first)."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if hasattr(image, "detach"):  # a torch tensor; torch is not imported here
        image = image.detach().cpu().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[2] not in (1, 3, 4):
            image = image.transpose(1, 2, 0)
    return to_rgb_uint8(np.asarray(image))


def blank_canvas(width: int, height: int, value: int = 235) -> np.ndarray:
    """A grey ``uint8 H x W x 3`` canvas (used where the image itself is absent)."""
    return np.full((int(height), int(width), 3), value, dtype=np.uint8)


def draw_boxes(ax, image, boxes, *, labels=None, ignore=None, color="lime",
               ignore_color="red", linewidth: float = 1.0, fmt: str = "xyxy", title=None):
    """Show ``image`` (or nothing if None) on ``ax`` and draw ``boxes`` as rectangles.

    ``boxes`` ``(N, 4)`` in ``fmt`` ``"xyxy"`` (tinylib's convention) or ``"xywh"``;
    ``ignore`` (bool ``(N,)``) boxes are drawn dashed in ``ignore_color``; ``labels`` an
    optional list of strings. Returns ``ax``."""
    # heavy: only drawing needs matplotlib, and the loaders import this module
    from matplotlib.patches import Rectangle

    if image is not None:
        ax.imshow(image)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if fmt == "xywh":
        b = b.copy()
        b[:, 2] += b[:, 0]
        b[:, 3] += b[:, 1]
    elif fmt != "xyxy":
        raise ValueError(f"fmt must be 'xyxy' or 'xywh', got {fmt!r}")
    ign = np.zeros(len(b), dtype=bool) if ignore is None else np.asarray(ignore, dtype=bool)
    for k, (x1, y1, x2, y2) in enumerate(b):
        bad = bool(ign[k])
        ax.add_patch(
            Rectangle(
                (x1, y1), x2 - x1, y2 - y1, fill=False, linewidth=linewidth,
                edgecolor=ignore_color if bad else color, linestyle="--" if bad else "-",
            )
        )
        if labels is not None:
            ax.text(x1, y1, str(labels[k]), color=color, fontsize=6, va="bottom")
    if image is None and not ax.images and len(b):
        ax.set_xlim(b[:, 0].min() - 5, b[:, 2].max() + 5)
        ax.set_ylim(b[:, 3].max() + 5, b[:, 1].min() - 5)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    return ax


def draw_ellipses(ax, image, ellipses, *, color="yellow", linewidth: float = 1.0,
                  boxes=None, box_color="cyan", title=None):
    """Draw FDDB ellipses ``(N, 5)`` = ``major minor angle cx cy`` (angle in radians, major
    semi-axis along ``angle``) and optionally their boxes (xyxy). Returns ``ax``."""
    # heavy: only drawing needs matplotlib, and the loaders import this module
    from matplotlib.patches import Ellipse

    if image is not None:
        ax.imshow(image)
    e = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5)
    for major, minor, angle, cx, cy in e:
        ax.add_patch(
            Ellipse((cx, cy), 2 * major, 2 * minor, angle=float(np.degrees(angle)),
                    fill=False, edgecolor=color, linewidth=linewidth)
        )
    if boxes is not None:
        draw_boxes(ax, None, boxes, color=box_color, linewidth=linewidth)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    return ax


def read_first_readable(paths, index: int, on_skip=None) -> tuple[int, np.ndarray]:
    """``(i, image)`` for ``paths[index]``, or for the next readable path (wrapping around).

    An unreadable image is skipped with a warning and ``on_skip()`` is called (datasets count
    them), so one corrupt file never crashes an epoch. ``IndexError`` for a bad index;
    ``RuntimeError`` if no path can be read."""
    n = len(paths)
    if not -n <= int(index) < n:
        raise IndexError(f"index {index} out of range for {n} images")
    index = int(index) % n
    for k in range(n):
        i = (index + k) % n
        try:
            return i, read_image(paths[i])
        except (OSError, ValueError) as exc:
            if on_skip is not None:
                on_skip()
            log.warning("skipping unreadable image %s: %s", paths[i], exc)
    raise RuntimeError(f"none of the {n} images could be read")
