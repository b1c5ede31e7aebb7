"""Super-resolution quality: PSNR and SSIM, on the luminance channel as the SR literature
reports them (ITU-R BT.601 ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` of 0..255
RGB), and the bicubic baseline.

SSIM is Wang et al. (2004): an 11x11 Gaussian window (sigma 1.5), ``K1 = 0.01``,
``K2 = 0.03``, dynamic range 255, averaged over the valid (unpadded) positions -- the same
definition as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``, which the tests check against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["luminance", "psnr", "ssim", "bicubic_up"]


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
