"""The GAN super-resolution tiny-face detector of Bai et al. (``../shared/papers/004_...``):
proposals from a baseline detector (ours: the shipped HR detector), a generator that
super-resolves (x4) and refines each proposal's context crop, a discriminator with three heads
(real/fake, face/non-face, box regression) whose face probability re-scores the proposal.

* :mod:`tinylib.gan.model` -- :class:`Generator`, :class:`Discriminator` (Table 1);
* :mod:`tinylib.gan.losses` -- Eq. 4-11;
* :mod:`tinylib.gan.crops` -- context windows, crops, low-resolution copies, box targets,
  the training crops;
* :mod:`tinylib.gan.detector` -- :class:`GANDetector` (alternating training through
  :mod:`tinylib.engine`'s phases, re-scoring), weights I/O;
* :mod:`tinylib.gan.train` -- the recipe runner and CLI (``python -m tinylib.gan.train``);
* :mod:`tinylib.gan.evaluate` -- proposals vs re-scored AP, the re-scorer's ranking by
  proposal size, its most confident misses, super-resolution quality on held-apart faces;
* :mod:`tinylib.gan.metrics` -- PSNR / SSIM of super-resolved crops.
"""

from .detector import GANDetector, build_gan, load_gan, save_weights
from .model import Discriminator, Generator

__all__ = ["GANDetector", "Generator", "Discriminator", "build_gan", "load_gan", "save_weights"]
