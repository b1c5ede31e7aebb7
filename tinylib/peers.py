"""Off-the-shelf face detectors to compare with ("peers"), behind one interface.

``get(name, upsample=1, **opts).detect(image)`` takes an RGB ``uint8 H x W x 3`` image and
returns ``(boxes, scores)``: ``float32 (N, 4)`` xyxy boxes (tinylib's convention, no +1)
and ``float32 (N,)`` scores, highest first.

==============  =====================================  =========================================
name            package (the ``peers`` extra)          score
==============  =====================================  =========================================
``mtcnn``       ``facenet-pytorch`` (weights in wheel)  the O-net face probability
``haar``        ``opencv-python-headless``              ``levelWeights`` of ``detectMultiScale3``
                                                        (``outputRejectLevels=True``): the summed
                                                        stage response of the last stage, a
                                                        margin, not a probability
``dlib_hog``    ``dlib`` / ``dlib-bin``                 the HOG+SVM margin from ``run()``
``yunet``       ``opencv-python-headless`` (>= 4.8,     ``sqrt(class x objectness)`` in [0, 1],
                ``cv2.FaceDetectorYN``); weights from   the last column of
                the data bundle                         ``FaceDetectorYN.detect``
``retinaface``  ``torch`` (tinylib's own                the softmax face probability of
                ``tinylib.models.retinaface``);         RetinaFace-MobileNet0.25
                weights from the data bundle
==============  =====================================  =========================================

``yunet`` and ``retinaface`` are modern WIDER-trained detectors whose weights ship with the
data bundle (``SOURCES.md`` section 8) and are read from the data root:
``weights/yunet/yunet_n_640_640.onnx`` and ``weights/retinaface_mnet025/mobilenet0.25_Final.pth``.
Both run on the image at its own resolution (YuNet's ONNX file is exported for 640 x 640,
but OpenCV runs it fully convolutionally at any ``setInputSize``; checked: on a 640 x 640
crop aligned to the 32-px grid it gives the same boxes and scores as on the whole image).
Their own NMS (``nms_threshold``: 0.3 YuNet, 0.4 RetinaFace) runs per scale; ``nms_iou``
merges the scales of a pyramid. Defaults keep weak detections (``score_threshold`` 0.1,
``conf_threshold`` 0.02) so that PR curves are meaningful.

Small faces: ``upsample`` enlarges the image before detection (boxes are mapped back), and
a sequence of factors, e.g. ``upsample=(1, 2)``, runs a small pyramid and merges the scales
with NMS (IoU ``nms_iou``). Every detector has a smallest face it can see (Haar and MTCNN
about 20 px by default, dlib HOG about 80 px without upsampling; RetinaFace's smallest
anchor is 16 px and YuNet's stride-8 level reaches lower, yet both miss most faces under
~8 px), which is the point of notebook 06.

A missing package or weights file does not break anything at import: :func:`available`
says which peers work and why the others do not, and :func:`get` raises
:class:`PeerUnavailable` with the reason and the pip command (or the missing file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .boxes import box_convert
from .config import cache_dir, data_root
from .data.images import read_image
from .io import atomic_save

log = logging.getLogger(__name__)

__all__ = ["PEERS", "PeerUnavailable", "available", "get", "detect_many", "Peer"]

PEERS = ("mtcnn", "haar", "dlib_hog", "yunet", "retinaface")
_PIP = {
    "mtcnn": "pip install facenet-pytorch --no-deps",
    "haar": "pip install 'tinylib[peers]'  (opencv-python-headless)",
    "dlib_hog": "pip install 'tinylib[peers]'  (dlib-bin)",
    "yunet": "pip install 'tinylib[peers]'  (opencv-python-headless >= 4.8)",
    "retinaface": "pip install torch torchvision  (tinylib's core dependencies)",
}
#: weights files (under the data root) of the peers that need one
_WEIGHTS = {
    "yunet": "weights/yunet/yunet_n_640_640.onnx",
    "retinaface": "weights/retinaface_mnet025/mobilenet0.25_Final.pth",
}


class PeerUnavailable(ImportError):
    """A peer's package is missing or broken; the message says which and how to install."""


def _probe(name: str, check_weights: bool = True) -> str | None:
    try:
        if name == "mtcnn":
            import facenet_pytorch  # noqa: F401  (optional: the ``peers`` extra)
        elif name == "haar":
            import cv2  # optional dependency (the ``peers`` extra)

            xml = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
            if not xml.is_file():
                return f"OpenCV is installed but has no cascade file {xml}"
        elif name == "dlib_hog":
            import dlib  # noqa: F401  (optional: the ``peers`` extra)
        elif name == "yunet":
            import cv2  # optional dependency (the ``peers`` extra)

            if not hasattr(cv2, "FaceDetectorYN"):
                return (f"OpenCV {cv2.__version__} has no cv2.FaceDetectorYN — install with: "
                        f"{_PIP[name]}")
        elif name == "retinaface":
            import torch  # noqa: F401  (heavy; imported only to probe for it)
            import torchvision  # noqa: F401
        else:
            return f"unknown peer {name!r} (known: {', '.join(PEERS)})"
    except Exception as exc:  # ImportError, or a broken binary wheel
        return f"{type(exc).__name__}: {exc} — install with: {_PIP[name]}"
    if check_weights and name in _WEIGHTS:
        path = _weights_path(name)
        if not path.is_file():
            return (f"weights file {path} not found (under the data root, TINYLIB_DATA): "
                    f"{_WEIGHTS[name]} comes with the data bundle (SOURCES.md section 8; "
                    f"`tinylib-data status` shows what is present)")
    return None


def _weights_path(name: str) -> Path:
    return data_root(must_exist=False) / _WEIGHTS[name]


def available() -> dict[str, str | None]:
    """``{name: None}`` for a working peer, ``{name: reason}`` for one that is not."""
    return {name: _probe(name) for name in PEERS}


def _resize(image: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def _check_image(image) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(
            f"expected an RGB uint8 image of shape (H, W, 3), got dtype {img.dtype} shape {img.shape}"
        )
    return np.ascontiguousarray(img)


class Peer:
    """Common wrapper: upsampling / pyramid, NMS across scales, output conventions."""

    name = "peer"

    def __init__(self, upsample: float | Sequence[float] = 1, nms_iou: float = 0.3, **opts):
        scales = tuple(upsample) if isinstance(upsample, (tuple, list)) else (upsample,)
        if not scales or any(float(s) <= 0 for s in scales):
            raise ValueError(f"upsample must be positive factor(s), got {upsample!r}")
        self.scales = tuple(float(s) for s in scales)
        self.nms_iou = float(nms_iou)
        self.opts = opts

    def _detect_one(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def detect(self, image) -> tuple[np.ndarray, np.ndarray]:
        img = _check_image(image)
        all_b, all_s = [], []
        for f in self.scales:
            b, s = self._detect_one(_resize(img, f))
            all_b.append(np.asarray(b, dtype=np.float64).reshape(-1, 4) / f)
            all_s.append(np.asarray(s, dtype=np.float64).ravel())
        boxes = np.concatenate(all_b)
        scores = np.concatenate(all_s)
        if len(self.scales) > 1 and len(boxes):
            import torch  # heavy import, only to merge the scales of a pyramid
            from torchvision.ops import nms

            keep = nms(torch.as_tensor(boxes), torch.as_tensor(scores), self.nms_iou).numpy()
            boxes, scores = boxes[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")
        return boxes[order].astype(np.float32), scores[order].astype(np.float32)

    def config(self) -> dict:
        return {"name": self.name, "scales": self.scales, "nms_iou": self.nms_iou, **self.opts}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


class MTCNNPeer(Peer):
    """facenet-pytorch's MTCNN on the CPU (or ``device=``). Options: ``min_face_size`` (20),
    ``thresholds`` ([0.6, 0.7, 0.7]), ``factor`` (0.709)."""

    name = "mtcnn"

    def __init__(self, upsample=1, nms_iou=0.3, min_face_size=20, thresholds=(0.6, 0.7, 0.7),
                 factor=0.709, device="cpu"):
        super().__init__(upsample, nms_iou, min_face_size=min_face_size,
                         thresholds=list(thresholds), factor=factor, device=device)
        from facenet_pytorch import MTCNN  # optional dependency (the ``peers`` extra)

        self._net = MTCNN(keep_all=True, device=device, min_face_size=min_face_size,
                          thresholds=list(thresholds), factor=factor, post_process=False,
                          select_largest=False)

    def _detect_one(self, image):
        import torch  # heavy import; facenet-pytorch needs it anyway

        with torch.no_grad():
            boxes, probs = self._net.detect(image)
        if boxes is None:
            return np.zeros((0, 4)), np.zeros(0)
        return boxes, probs


class HaarPeer(Peer):
    """OpenCV's Viola-Jones cascade. Options: ``cascade`` (file name in ``cv2.data``),
    ``scale_factor`` (1.1), ``min_neighbors`` (3), ``min_size`` (10)."""

    name = "haar"

    def __init__(self, upsample=1, nms_iou=0.3, cascade="haarcascade_frontalface_default.xml",
                 scale_factor=1.1, min_neighbors=3, min_size=10):
        super().__init__(upsample, nms_iou, cascade=cascade, scale_factor=scale_factor,
                         min_neighbors=min_neighbors, min_size=min_size)
        import cv2  # optional dependency (the ``peers`` extra)

        path = Path(cascade) if Path(cascade).is_file() else Path(cv2.data.haarcascades) / cascade
        self._clf = cv2.CascadeClassifier(str(path))
        if self._clf.empty():
            raise PeerUnavailable(f"OpenCV could not load the cascade {path}")

    def _detect_one(self, image):
        import cv2  # optional dependency (the ``peers`` extra)

        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        o = self.opts
        rects, _levels, weights = self._clf.detectMultiScale3(
            gray, scaleFactor=o["scale_factor"], minNeighbors=o["min_neighbors"],
            minSize=(o["min_size"], o["min_size"]), outputRejectLevels=True,
        )
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        r = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        boxes = np.hstack([r[:, :2], r[:, :2] + r[:, 2:]])
        return boxes, np.asarray(weights, dtype=np.float64).ravel()


class DlibHogPeer(Peer):
    """dlib's HOG + linear SVM frontal face detector. Options: ``adjust_threshold`` (0.0;
    negative values return more, weaker detections — useful for a PR curve),
    ``upsample_num_times`` (0, dlib's own 2x pyramid levels)."""

    name = "dlib_hog"

    def __init__(self, upsample=1, nms_iou=0.3, adjust_threshold=0.0, upsample_num_times=0):
        super().__init__(upsample, nms_iou, adjust_threshold=adjust_threshold,
                         upsample_num_times=upsample_num_times)
        import dlib  # optional dependency (the ``peers`` extra)

        self._det = dlib.get_frontal_face_detector()

    def _detect_one(self, image):
        rects, scores, _ = self._det.run(image, self.opts["upsample_num_times"],
                                         self.opts["adjust_threshold"])
        if not rects:
            return np.zeros((0, 4)), np.zeros(0)
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects],
                         dtype=np.float64)  # dlib rectangles are inclusive
        return boxes, np.asarray(scores, dtype=np.float64)


class YuNetPeer(Peer):
    """OpenCV's YuNet (``cv2.FaceDetectorYN``) on ``weights/yunet/yunet_n_640_640.onnx``
    from the data root, run at the image's own size. Options: ``score_threshold`` (0.1;
    low, for PR curves — 0.9 is OpenCV's demo value), ``nms_threshold`` (0.3, YuNet's own
    NMS), ``top_k`` (5000), ``weights`` (another ONNX file)."""

    name = "yunet"

    def __init__(self, upsample=1, nms_iou=0.3, score_threshold=0.1, nms_threshold=0.3,
                 top_k=5000, weights=None):
        path = Path(weights) if weights is not None else _weights_path(self.name)
        super().__init__(upsample, nms_iou, score_threshold=float(score_threshold),
                         nms_threshold=float(nms_threshold), top_k=int(top_k),
                         weights=str(path))
        import cv2  # optional dependency (the ``peers`` extra)

        if not path.is_file():
            raise PeerUnavailable(f"YuNet weights file {path} not found; it comes with the "
                                  f"data bundle (SOURCES.md section 8)")
        self._det = cv2.FaceDetectorYN.create(str(path), "", (640, 640), float(score_threshold),
                                              float(nms_threshold), int(top_k))

    def _detect_one(self, image):
        import cv2  # optional dependency (the ``peers`` extra)

        h, w = image.shape[:2]
        self._det.setInputSize((w, h))
        _, faces = self._det.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if faces is None or len(faces) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        f = np.asarray(faces, dtype=np.float64).reshape(len(faces), -1)
        # rows: x, y, w, h, 5 landmarks (x, y), score
        return box_convert(f[:, :4], "xywh", "xyxy"), f[:, -1]


class RetinaFacePeer(Peer):
    """RetinaFace-MobileNet0.25 (``tinylib.models.retinaface``) with the released WIDER FACE
    weights from the data root, at the image's own resolution (the released protocol).
    Options: ``conf_threshold`` (0.02, for PR curves), ``nms_threshold`` (0.4, its own NMS),
    ``top_k`` (5000 before NMS), ``keep_top_k`` (750 after), ``device`` ("cpu"),
    ``weights`` (another state-dict file). ``nms_iou`` (0.4) merges pyramid scales."""

    name = "retinaface"

    def __init__(self, upsample=1, nms_iou=0.4, conf_threshold=0.02, nms_threshold=0.4,
                 top_k=5000, keep_top_k=750, device="cpu", weights=None):
        path = Path(weights) if weights is not None else _weights_path(self.name)
        super().__init__(upsample, nms_iou, conf_threshold=float(conf_threshold),
                         nms_threshold=float(nms_threshold), top_k=int(top_k),
                         keep_top_k=int(keep_top_k), device=str(device), weights=str(path))
        from .models.retinaface import retinaface_mnet025  # heavy (torch)

        if not path.is_file():
            raise PeerUnavailable(f"RetinaFace weights file {path} not found; it comes with "
                                  f"the data bundle (SOURCES.md section 8)")
        self._net = retinaface_mnet025(weights=path).to(device)

    def _detect_one(self, image):
        from .models.retinaface import detect_faces  # heavy (torch)

        o = self.opts
        return detect_faces(self._net, image, conf_threshold=o["conf_threshold"],
                            nms_iou=o["nms_threshold"], top_k=o["top_k"],
                            keep_top_k=o["keep_top_k"], device=o["device"])


_CLASSES = {"mtcnn": MTCNNPeer, "haar": HaarPeer, "dlib_hog": DlibHogPeer, "yunet": YuNetPeer,
            "retinaface": RetinaFacePeer}


def get(name: str, upsample: float | Sequence[float] = 1, **opts) -> Peer:
    """A ready detector (see the module doc for names and options)."""
    if name not in _CLASSES:
        raise KeyError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    reason = _probe(name, check_weights=opts.get("weights") is None)
    if reason is not None:
        raise PeerUnavailable(f"peer {name!r} is not available: {reason}")
    return _CLASSES[name](upsample=upsample, **opts)


def _fingerprint(src) -> str:
    """What identifies the image's content: path + size + mtime for a file, the bytes' hash
    for an array — so a rebuilt image with the same key never reuses stale detections."""
    if isinstance(src, (str, os.PathLike)):
        st = Path(src).stat()
        ident = f"{Path(src).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()
    else:
        arr = np.ascontiguousarray(src)
        ident = str(arr.shape).encode() + arr.tobytes()
    return hashlib.sha1(ident).hexdigest()[:12]


def _cache_path(peer: Peer, key: str, cache: str | os.PathLike | None, src=None) -> Path:
    tag = hashlib.sha1(json.dumps(peer.config(), sort_keys=True, default=str).encode()).hexdigest()[:12]
    base = Path(cache) if cache is not None else cache_dir("peers")
    suffix = f"-{_fingerprint(src)}" if src is not None else ""
    return base / f"{peer.name}-{tag}" / (key.replace("/", "__") + suffix + ".npz")


def detect_many(
    peer: Peer,
    images: Mapping[str, object],
    cache: bool | str | os.PathLike = True,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``peer`` on ``{key: path or RGB array}``; returns ``{key: (N, 5) x y w h score}``
    (the WIDER submission layout, ready for ``tinylib.eval.widerface.evaluate``).

    Detections are cached per image under ``cache_dir("peers")`` (keyed by the peer's
    options) unless ``cache=False``; a path gives another cache folder."""
    out = {}
    for key, src in tqdm(list(images.items()), desc=peer.name, disable=not progress):
        path = None
        if cache is not False:
            path = _cache_path(peer, key, None if cache is True else cache, src)
            if path.is_file():
                with np.load(path, allow_pickle=False) as z:
                    out[key] = z["dets"]
                continue
        if isinstance(src, (str, os.PathLike)):
            img = read_image(src)
        else:
            img = src
        boxes, scores = peer.detect(img)
        dets = box_convert(np.hstack([boxes.astype(np.float64), scores[:, None].astype(np.float64)]),
                           "xyxy", "xywh")
        out[key] = dets
        if path is not None:
            atomic_save(path, lambda t, d=dets: np.savez(t, dets=d), suffix=".npz")
    return out
