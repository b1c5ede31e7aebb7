"""Models: backbones (``tinylib.models.backbones``) and detectors built on them."""
