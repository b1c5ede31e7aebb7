"""Tiny-image pre-training of a backbone (Ning et al., Sec. 4.1 and Table 5), then detection.

``python -m tinylib.frcnn.pretrain CONFIG [--out DIR] [--resume | --overwrite] [--set KEY=VALUE]``

A recipe (``configs/pretrain_<backbone>_cpu.yaml``)::

    model: {backbone: bh_resnet50, width: 16}       # width: resnet50 / bh_resnet50 only
    data:  {source: auto | cifar100 | imagenet32 | wider_crops, per_image: 8}
    train: {epochs, optimizer, lr, batch_size, ...}          # tinylib.engine.TrainConfig

The classifier is the backbone as the detector uses it (:func:`tinylib.models.backbones.
build_backbone`, unchanged: no stem surgery for 32x32 input, so the weights drop into the
detector as they are) + global average pooling of its last map + one linear layer. At the end
the run writes ``DIR/backbone.pt`` (the backbone's state dict, for the detector's
``model.backbone_weights``) and ``DIR/result.json`` (top-1 on the held-out split).

Data (``data.source``):

* ``cifar100`` -- CIFAR-100 (train / test) under the data root, the paper's first choice;
* ``imagenet32`` -- ImageNet32 (train / val) under the data root;
* ``wider_crops`` -- the offline stand-in **WIDER-32** (:mod:`tinylib.data.tinycrops`): 32x32
  crops of the bundle's real WIDER FACE train photos (test: val photos), labelled background /
  face at three scales;
* ``auto`` -- the first of those that is present, saying which (neither CIFAR-100 nor
  ImageNet32 is on this machine, so ``auto`` means WIDER-32 here).

Augmentation: the paper's "random horizontal flipping, random cropping and resizing" as
CIFAR training does it: pad 4 px (reflect), random 32x32 crop, flip; ImageNet normalisation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import engine
from ..config import runtime
from ..data import cifar, imagenet32, tinycrops
from ..engine.recipe import check_settings, recipe_main
from ..engine.runs import write_history
from ..io import atomic_save, atomic_write_text
from ..models.backbones import build_backbone
from .model import IMAGE_MEAN, IMAGE_STD

log = logging.getLogger(__name__)

__all__ = ["SOURCES", "DATA_DEFAULTS", "BackboneClassifier", "TinyAugment", "resolve_source",
           "tiny_dataset", "collate", "top1", "run", "main"]

SOURCES = ("auto", "cifar100", "imagenet32", "wider_crops")
DATA_DEFAULTS = {"source": "auto", "root": None, "per_image": 8, "seed": 0}
_SPLITS = {"cifar100": ("train", "test"), "imagenet32": ("train", "val"),
           "wider_crops": ("train", "val")}


class BackboneClassifier(nn.Module):
    """``build_backbone(name)`` + global average pooling of its last map + a linear layer.
    Training: ``model(images, {"labels": ...})`` -> ``{"loss_cls": cross-entropy}`` (the
    engine's contract); otherwise ``model(images)`` -> logits ``(B, num_classes)``."""

    def __init__(self, backbone: str, num_classes: int, width: int | None = None):
        super().__init__()
        self.backbone_name = str(backbone)
        self.body = build_backbone(backbone, **({} if width is None else {"width": int(width)}))
        self.last = list(self.body.out_channels)[-1]
        self.fc = nn.Linear(int(self.body.out_channels[self.last]), int(num_classes))

    def forward(self, images: torch.Tensor, targets: dict | None = None):
        logits = self.fc(self.body(images)[self.last].mean((2, 3)))
        if self.training and targets is not None:
            return {"loss_cls": F.cross_entropy(logits, targets["labels"])}
        return logits


class TinyAugment:
    """uint8 ``32x32x3`` -> normalised float ``(3, 32, 32)``; with ``train=True`` first a
    reflect-pad of ``pad`` px, a random crop back to the input size and a random flip
    (torch's RNG: the engine seeds it per epoch, so resume is exact)."""

    def __init__(self, train: bool = True, pad: int = 4):
        self.train = bool(train)
        self.pad = int(pad)
        self.mean = torch.tensor(IMAGE_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGE_STD).view(3, 1, 1)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
        if self.train:
            h, w = x.shape[1:]
            if self.pad:
                x = F.pad(x[None], (self.pad,) * 4, mode="reflect")[0]
                i, j = (int(v) for v in torch.randint(0, 2 * self.pad + 1, (2,)))
                x = x[:, i:i + h, j:j + w]
            if torch.rand(()) < 0.5:
                x = x.flip(2)
        return (x - self.mean) / self.std


def _settings(dcfg: dict | None) -> dict:
    return check_settings(dcfg, DATA_DEFAULTS, sources=SOURCES)


def _present(source: str, root) -> bool:
    try:
        if source == "cifar100":
            return (cifar.cifar_dir(root) / "train.bin").is_file()
        if source == "imagenet32":
            return bool(imagenet32.split_files("train", root))
    except (FileNotFoundError, OSError):
        return False
    return True


def resolve_source(source: str = "auto", root=None) -> str:
    """``source``, or for ``auto`` the first present of CIFAR-100, ImageNet32, WIDER-32 (logged)."""
    if source != "auto":
        return source
    for s in ("cifar100", "imagenet32"):
        if _present(s, root):
            log.info("tiny-image pre-training on %s", s)
            return s
    log.warning("neither CIFAR-100 nor ImageNet32 is under the data root: pre-training on the "
                "stand-in WIDER-32 (32x32 crops of the real WIDER FACE train photos, "
                "tinylib.data.tinycrops)")
    return "wider_crops"


def tiny_dataset(source: str, train: bool = True, root=None, *, per_image: int = 8, seed: int = 0,
                 transform=None):
    """``(dataset, classes)`` of 32x32 samples ``(tensor, label)`` for ``source``'s train
    (``train=True``) or held-out split."""
    source = resolve_source(source, root)
    split = _SPLITS[source][0 if train else 1]
    tf = transform if transform is not None else TinyAugment(train)
    if source == "cifar100":
        ds = cifar.Cifar100(root, split, transform=tf)
        return ds, list(ds.classes)
    if source == "imagenet32":
        ds = imagenet32.ImageNet32(root, split, transform=tf)
        return ds, [str(k) for k in range(1000)]
    data = tinycrops.build_wider_crops(split, root, per_image=per_image, seed=seed)
    return tinycrops.ArrayImages(data["images"], data["labels"], tf, data["classes"]), list(data["classes"])


def collate(batch):
    """``[(tensor, label)]`` -> ``(images (B, 3, 32, 32), {"labels": (B,)})``."""
    xs, ys = zip(*batch)
    return torch.stack(xs), {"labels": torch.as_tensor(ys, dtype=torch.int64)}


@torch.no_grad()
def top1(model: BackboneClassifier, dataset, *, batch_size: int = 256, device=None,
         progress: bool = False) -> float:
    """Top-1 accuracy of ``model`` on ``dataset`` (eval mode; restored afterwards)."""
    device = torch.device(device or next(model.parameters()).device)
    was = model.training
    model.eval()
    right = total = 0
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    for x, t in tqdm(loader, disable=not progress, desc="top-1"):
        pred = model(x.to(device)).argmax(1).cpu()
        right += int((pred == t["labels"]).sum())
        total += len(pred)
    model.train(was)
    if not total:
        raise ValueError("top1: empty dataset")
    return right / total


def run(cfg: dict, *, out_dir=None, resume: bool = False, progress: bool = True,
        overwrite: bool = False):
    """Pre-train per recipe; returns ``(model, history, result)`` with ``result`` =
    ``{"backbone", "source", "top1", "n_train", "n_test", "classes", "steps"}``, also written to
    ``out_dir/result.json`` beside ``out_dir/backbone.pt``."""
    d = _settings(cfg.get("data"))
    backbone = str((cfg.get("model") or {}).get("backbone", "resnet50"))
    width = (cfg.get("model") or {}).get("width")
    extra = sorted(set(cfg.get("model") or {}) - {"backbone", "width"})
    if extra:
        raise ValueError(f"unknown model settings {extra}; a pre-training recipe takes "
                         "model.backbone and model.width")
    tcfg = dict(cfg.get("train", {}))
    if out_dir is not None:
        tcfg["out_dir"] = str(out_dir)
    source = resolve_source(d["source"], d["root"])
    train_set, classes = tiny_dataset(source, True, d["root"], per_image=int(d["per_image"]),
                                      seed=int(d["seed"]))
    test_set, _ = tiny_dataset(source, False, d["root"], per_image=int(d["per_image"]),
                               seed=int(d["seed"]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(tcfg.get("seed", 0)))
        model = BackboneClassifier(backbone, len(classes), width)
    hist = engine.train(model, train_set, collate_fn=collate, config=tcfg, device=runtime().device,
                        resume=resume or None, overwrite=overwrite, progress=progress,
                        extra_config={"recipe": cfg, "source": source})
    result = {"backbone": backbone, "source": source, "top1": top1(model, test_set, progress=progress),
              "n_train": len(train_set), "n_test": len(test_set), "classes": classes,
              "steps": int(hist["step"].max()) if len(hist) else 0}
    if engine.is_main_process() and tcfg.get("out_dir"):
        out = Path(tcfg["out_dir"])
        state = {k: v.detach().cpu() for k, v in model.body.state_dict().items()}
        atomic_save(out / "backbone.pt", lambda p: torch.save(state, p))
        atomic_write_text(out / "result.json", json.dumps(result, indent=1))
        write_history(out, hist)
    log.info("pre-trained %s on %s: top-1 %.3f on %d held-out images", backbone, source,
             result["top1"], result["n_test"])
    return model, hist, result


def main(argv: list[str] | None = None) -> int:
    def _run(cfg, out, args):
        _, _, result = run(cfg, out_dir=out, resume=args.resume, progress=not args.no_progress,
                           overwrite=args.overwrite)
        return (f"done: top-1 {result['top1']:.4f} on {result['n_test']} held-out images; "
                f"backbone weights in {out}/backbone.pt")

    return recipe_main(argv, prog="python -m tinylib.frcnn.pretrain", description=__doc__.split("\n")[0],
                       run_recipe=_run, export=False)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
