"""Super-resolution quality: PSNR and SSIM, on the luminance channel as the SR literature
reports them (ITU-R BT.601 ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` of 0..255
RGB), and the bicubic baseline; beside them the colour measures luma hides: PSNR over the
three RGB channels (``psnr(..., y_channel=False)``), the CIE76 colour difference
:func:`delta_e` (Euclidean distance in CIELAB, sRGB D65, per pixel, averaged) and the mean
signed error per channel :func:`channel_bias` (a systematic cast, e.g. red turned orange,
shows as a non-zero mean on one channel).

SSIM is Wang et al. (2004): an 11x11 Gaussian window (sigma 1.5), ``K1 = 0.01``,
``K2 = 0.03``, dynamic range 255, averaged over the valid (unpadded) positions -- the same
definition as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``, which the tests check against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["luminance", "psnr", "ssim", "bicubic_up", "rgb_to_lab", "delta_e", "channel_bias"]


def luminance(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB 0..255 -> ``(N, 1, H, W)`` BT.601 luma (16..235)."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64).view(1, 3, 1, 1) / 255.0
    return 16.0 + (x.double() * w).sum(1, keepdim=True)


def psnr(x: torch.Tensor, y: torch.Tensor, *, y_channel: bool = True) -> torch.Tensor:
    """PSNR in dB per image ``(N,)`` of 0..255 images ``(N, 3, H, W)``."""
    if x.shape != y.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    a, b = (luminance(x), luminance(y)) if y_channel else (x.double(), y.double())
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(255.0 ** 2 / mse.clamp_min(1e-10))


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim(x: torch.Tensor, y: torch.Tensor, *, y_channel: bool = True) -> torch.Tensor:
    """Mean SSIM per image ``(N,)`` of 0..255 images ``(N, 3, H, W)`` (H, W >= 11)."""
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    a, b = (luminance(x), luminance(y)) if y_channel else (x.double(), y.double())
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"ssim needs images of at least 11x11 px, got {tuple(a.shape[-2:])}")
    c = a.shape[1]
    w = _gauss().expand(c, 1, 11, 11)

    def f(t):
        return F.conv2d(t, w, groups=c)

    mu_a, mu_b = f(a), f(b)
    va, vb = f(a * a) - mu_a ** 2, f(b * b) - mu_b ** 2
    cov = f(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
    return s.flatten(1).mean(1)


def bicubic_up(lr: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """The bicubic baseline: ``lr`` (0..255) enlarged ``scale`` times, clamped to 0..255."""
    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic",
                         align_corners=False).clamp(0, 255)


_SRGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                             [0.212671, 0.715160, 0.072169],
                             [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` sRGB 0..255 -> CIELAB ``(L*, a*, b*)`` (D65 white), the conversion of
    ``skimage.color.rgb2lab`` (the tests check it against skimage)."""
    c = x.double().clamp(0, 255) / 255.0
    lin = torch.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _SRGB_TO_XYZ, lin) / _WHITE_D65.view(1, 3, 1, 1)
    f = torch.where(xyz > (6 / 29) ** 3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def delta_e(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean CIE76 colour difference ``||Lab(x) - Lab(y)||`` per image ``(N,)`` of 0..255 RGB
    images ``(N, 3, H, W)`` (about 2.3 is a just-noticeable difference)."""
    if x.shape != y.shape:
        raise ValueError(f"delta_e: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    return (rgb_to_lab(x) - rgb_to_lab(y)).norm(dim=1).flatten(1).mean(1)


def channel_bias(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean signed error ``x - y`` per RGB channel ``(3,)`` over all images and pixels
    (0..255 units): zero for an unbiased output, whatever its noise."""
    if x.shape != y.shape:
        raise ValueError(f"channel_bias: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    return (x.double() - y.double()).mean(dim=(0, 2, 3))
