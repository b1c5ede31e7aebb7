"""The one training loop of tinylib and what every detector shares, in training and inference.

Modules:

* ``loop`` -- :func:`~tinylib.engine.loop.train`, the model-agnostic training loop (SGD/AdamW
  with per-group learning-rate multipliers, warm-up and schedules, AMP, gradient clipping,
  one optimiser per phase for a GAN, atomic ``last.pt`` checkpoints with exact resume, DDP
  through ``torchrun``, tqdm, a pandas history), written as small named steps;
* ``recipe`` -- the YAML recipe every detector trains from (:func:`~tinylib.engine.recipe.load_config`,
  :func:`~tinylib.engine.recipe.apply_overrides`, :func:`~tinylib.engine.recipe.check_settings`)
  and the command line every recipe trainer shares (:func:`~tinylib.engine.recipe.recipe_main`);
* ``runs`` -- the run-folder format: its layout, the append-only rule
  (:func:`~tinylib.engine.runs.check_run_dir`, ``--resume`` / ``--overwrite``) and the readers
  and writers of its files (history, metrics, predictions);
* ``weights`` -- the one inference-checkpoint schema of every detector (``weights.pt``:
  format, family, config, state dict, meta; fp16 on request), written atomically, and the
  registry of per-family builders that :func:`~tinylib.engine.weights.load` dispatches on (the
  detector packages register themselves; older layouts still load);
* ``tta`` -- test-time augmentation around any detector's ``detect(image)`` function: an image
  pyramid and horizontal flipping merged by NMS (:func:`~tinylib.engine.tta.tta_detect`), its
  pixel cost and the toolbox's settings (the ``tta_<setting>.json`` scorings of ``runs``).

The names of ``loop`` and ``runs`` that callers use are re-exported here
(``from tinylib import engine; engine.train(...)``); the recipe's are imported from
:mod:`tinylib.engine.recipe`, the weights' from :mod:`tinylib.engine.weights`
(``weights.save``, ``weights.load``), test-time augmentation's from :mod:`tinylib.engine.tta`.
"""

from .loop import (
    IncompatibleCheckpointError,
    NonFiniteLossError,
    TrainConfig,
    WarmupCosine,
    WarmupMultiStep,
    config_diff,
    init_distributed,
    is_main_process,
    load_checkpoint,
    make_optimizer,
    make_scheduler,
    resolve_amp,
    save_checkpoint,
    seeded,
    train,
)
from .runs import (
    RUN_FILES,
    RunExistsError,
    check_run_dir,
    clean_stale_tmp,
    existing_run,
    set_aside_run,
)

__all__ = [
    "TrainConfig",
    "NonFiniteLossError",
    "RunExistsError",
    "IncompatibleCheckpointError",
    "RUN_FILES",
    "existing_run",
    "check_run_dir",
    "clean_stale_tmp",
    "set_aside_run",
    "config_diff",
    "seeded",
    "init_distributed",
    "is_main_process",
    "make_optimizer",
    "make_scheduler",
    "WarmupMultiStep",
    "WarmupCosine",
    "resolve_amp",
    "save_checkpoint",
    "load_checkpoint",
    "train",
]
