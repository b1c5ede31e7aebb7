"""The losses of Bai et al., Eq. 4-11, as plain functions of logits and images.

Notation: ``D(x)`` = sigmoid of the ``gan`` logit (probability that ``x`` is a real
high-resolution image), ``Dcls(x)`` = sigmoid of the ``cls`` logit (probability of a face),
``y`` the face label (1 face, 0 non-face), ``v`` the box-regression target, ``t`` a predicted
offset. Every mean is over the ``N`` samples of the batch, as the paper's ``1/N sum``.

* Eq. 4, pixel-wise: ``mean ||G1(LR) - HR||^2 + ||G2(G1(LR)) - HR||^2`` -- per pixel (the
  squared error averaged over pixels and channels of ``[-1, 1]`` images, as SRGAN's MSE that
  the paper's weights were tuned beside; the paper's ``||.||^2`` does not say).
* Eq. 5, adversarial (generator): ``alpha * mean log(1 - D(G(LR)))``, minimised. This is the
  original, saturating form the paper writes; ``form="nonsaturating"`` uses the usual
  ``-alpha * mean log D(G(LR))`` instead (not the paper's; a stated option).
* Eq. 6, classification: the paper's ``log(y - Dcls(.))`` is read as the binary
  cross-entropy ``-[y log Dcls + (1 - y) log(1 - Dcls)]`` on generated and real images.
* Eq. 7-8, regression: ``gamma * mean [y >= 1] sum_j SL1(t_j - v_j)`` with the smooth-L1 of
  Eq. 8 (1 at the knee), over faces only, averaged over all ``N`` samples.
* Eq. 10 (generator) = alpha Eq. 5 + beta Eq. 6 (generated term) + gamma Eq. 7 (generated
  term) + Eq. 4; Eq. 11 (discriminator) = alpha (BCE real->1 + BCE generated->0) + beta Eq. 6
  (both terms) + gamma Eq. 7 (both terms).

Weights: ``alpha = 0.001``, ``beta = gamma = 0.01`` (Sec. 4.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ALPHA", "BETA", "GAMMA", "pixel_loss", "adversarial_g", "adversarial_d",
           "classification", "regression", "smooth_l1"]

ALPHA, BETA, GAMMA = 0.001, 0.01, 0.01


def pixel_loss(sr: torch.Tensor, refined: torch.Tensor | None, hr: torch.Tensor) -> torch.Tensor:
    """Eq. 4: per-pixel MSE of ``G1`` plus (when there is one) of ``G2`` against ``hr``."""
    loss = F.mse_loss(sr, hr)
    if refined is not None:
        loss = loss + F.mse_loss(refined, hr)
    return loss


def adversarial_g(fake_logit: torch.Tensor, form: str = "paper") -> torch.Tensor:
    """Eq. 5 (unweighted): ``mean log(1 - D(G(LR)))`` (``form="paper"``, to be minimised;
    ``log(1 - sigmoid(z)) = -softplus(z)``) or ``mean -log D(G(LR))`` (``"nonsaturating"``)."""
    if form == "paper":
        return -F.softplus(fake_logit).mean()
    if form == "nonsaturating":
        return F.softplus(-fake_logit).mean()
    raise ValueError(f"form must be 'paper' or 'nonsaturating', got {form!r}")


def adversarial_d(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """Eq. 11's first term (unweighted): ``-mean [log(1 - D(G(LR))) + log D(HR)]``."""
    return (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
            + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))


def classification(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One term of Eq. 6 (unweighted): the mean binary cross-entropy of face logits."""
    return F.binary_cross_entropy_with_logits(logit, y.float())


def smooth_l1(x: torch.Tensor) -> torch.Tensor:
    """Eq. 8: ``0.5 x^2`` where ``|x| < 1``, else ``|x| - 0.5``."""
    a = x.abs()
    return torch.where(a < 1, 0.5 * x * x, a - 0.5)


def regression(t: torch.Tensor, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One term of Eq. 7 (unweighted): ``mean_i [y_i >= 1] sum_j SL1(t_ij - v_ij)``."""
    if not len(t):
        return t.sum() * 0
    face = (y >= 1).to(t.dtype)
    return (smooth_l1(t - v).sum(1) * face).mean()
