"""MTCNN face detector: our own port of facenet-pytorch's `detect_face` cascade.

The steps, constants and rounding follow facenet-pytorch 2.5 (see
`references/model_lines.md` section 1.3) so that its published weights give the same boxes,
scores and landmarks; facenet-pytorch itself is never imported (it pins an old torch).
Differences, both deliberate: results are sorted by score, not by area, and a box whose crop is
empty (entirely outside the image) is dropped, where the reference misaligns crops and boxes.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core import weights
from ..core.device import resolve_device
from ..core.face_context import add_large_faces, refine_border_faces
from ..core.types import Face
from ..models.mtcnn import ONet, PNet, RNet
from .base import FaceDetector
from .nms import batched_nms
from .onnx_runtime import OrtModule, check_runtime
from .onnx_runtime import export as onnx_export

#: crops per R-Net / O-Net call; bounds memory when a batch yields many proposals
_CHUNK = 512
#: R-/O-Net batches are padded to a power of two up to this many crops, then to a multiple of
#: it (`_bucket`): a new batch size makes oneDNN build (and cache) new kernels, and a camera
#: stream brings a new size nearly every frame, so the detector's memory grew by tens of MB a
#: minute at 1080p; with buckets there are at most 7 + _CHUNK / _BUCKET sizes
_BUCKET = 64


class MTCNNDetector(FaceDetector):
    """Faces with five landmarks from the P-Net -> R-Net -> O-Net cascade.

    `min_face_size` (pixels) sets the largest pyramid scale, `thresholds` are the face
    probabilities each stage keeps, `factor` is the pyramid step and `max_faces` keeps only the
    N best-scoring faces per image (0 = all). `border_context` (default on) detects faces cut
    by the frame border again with a grey margin around them (`core.face_context`): without
    it, frame-filling faces get their eye landmarks on the brows (or are not found: a small
    padded copy of the frame is searched for large faces too). `runtime` torch (default) or
    onnxruntime: the three networks exported to ONNX from the loaded weights and run by ONNX
    Runtime (`backends/onnx_runtime.py`), the rest of the cascade unchanged; `onnx_dir` takes
    the files of `gaze-perception export mtcnn` instead.
    """

    gives = frozenset({"faces", "landmarks"})

    def __init__(self, *, weights_dir: Optional[Path] = None, device: str = "auto",
                 min_face_size: float = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, max_faces: int = 0,
                 border_context: bool = True, runtime: str = "torch",
                 onnx_dir: Optional[Path] = None) -> None:
        thresholds = tuple(float(t) for t in thresholds)
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {thresholds}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must lie in (0, 1), got {factor}")
        if not min_face_size > 0:
            raise ValueError(f"min_face_size must be positive, got {min_face_size}")
        if int(max_faces) != max_faces or max_faces < 0:
            raise ValueError(f"max_faces must be a non-negative integer, got {max_faces}")
        self.min_face_size = float(min_face_size)
        self.thresholds = thresholds
        self.factor = float(factor)
        self.max_faces = int(max_faces)
        self.border_context = bool(border_context)
        self.device = resolve_device(device)
        self.pnet = self._load(PNet(), "mtcnn_pnet", weights_dir)
        self.rnet = self._load(RNet(), "mtcnn_rnet", weights_dir)
        self.onet = self._load(ONet(), "mtcnn_onet", weights_dir)
        self.runtime = check_runtime(runtime)
        if runtime == "onnxruntime":  # the files of `gaze-perception export`, or exported now
            models = ([Path(onnx_dir) / f"{n}.onnx" for n in ("pnet", "rnet", "onet")]
                      if onnx_dir else self.export_onnx())
            self.pnet, self.rnet, self.onet = (OrtModule(m) for m in models)

    def export_onnx(self, folder: Optional[Path] = None) -> List[bytes]:
        """P-, R- and O-Net as ONNX models (dynamic batch; P-Net also dynamic height and
        width), written to folder/{pnet,rnet,onet}.onnx when `folder` is given."""
        nets = {"pnet": (self.pnet, (1, 3, 12, 12), ["reg", "prob"]),
                "rnet": (self.rnet, (1, 3, 24, 24), ["reg", "prob"]),
                "onet": (self.onet, (1, 3, 48, 48), ["reg", "points", "prob"])}
        out = []
        for name, (net, shape, outputs) in nets.items():
            dynamic = ({k: {0: "n", 2: "h", 3: "w"} for k in ["input", *outputs]}
                       if name == "pnet" else {k: {0: "n"} for k in ["input", *outputs]})
            example = torch.zeros(shape, device=self.device)
            out.append(onnx_export(net, [example], outputs, dynamic,
                                   None if folder is None else Path(folder) / f"{name}.onnx"))
        return out

    def _load(self, net: nn.Module, name: str, weights_dir: Optional[Path]) -> nn.Module:
        path = weights.resolve(name, weights_dir)
        try:
            net.load_state_dict(weights.load_state_dict(path), strict=True)
        except RuntimeError as exc:  # key or shape mismatch: name the file, not just the layer
            raise weights.WeightsError(f"weights file '{path}' does not fit "
                                       f"{type(net).__name__}: {exc}") from exc
        return net.to(self.device).eval()

    def describe(self) -> str:
        return (f"MTCNNDetector(device={self.device}, runtime={self.runtime}, "
                f"min_face_size={self.min_face_size:g}, "
                f"thresholds={self.thresholds}, factor={self.factor:g}, "
                f"max_faces={self.max_faces})")

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """Faces per image, best score first. Same-size images share one batched pass."""
        arrays = [_check_image(img) for img in images]
        groups: Dict[Tuple[int, int], List[int]] = defaultdict(list)
        for i, img in enumerate(arrays):
            groups[img.shape[:2]].append(i)
        results: List[List[Face]] = [[] for _ in arrays]
        for idx in groups.values():
            batch = torch.from_numpy(np.stack([arrays[i] for i in idx])).to(self.device)
            for i, faces in zip(idx, self._detect_batch(batch.permute(0, 3, 1, 2).float())):
                results[i] = faces
        if self.border_context:
            results = [refine_border_faces(self._detect_one, img,
                                           add_large_faces(self._detect_one, img, faces))
                       for img, faces in zip(arrays, results)]
            results = [sorted(fs, key=lambda f: -f.score)[:self.max_faces or None]
                       for fs in results]
        return results

    def _detect_one(self, image: np.ndarray, min_size: float = 0.0) -> List[Face]:
        """One image, faces of at least `min_size` pixels (the context passes know how large
        the face they look for is: a shorter pyramid)."""
        batch = torch.from_numpy(image).to(self.device)[None].permute(0, 3, 1, 2).float()
        return self._detect_batch(batch, max(self.min_face_size, min_size))[0]

    def _detect_batch(self, imgs: Tensor, min_face_size: Optional[float] = None
                      ) -> List[List[Face]]:
        """The cascade on (N,3,H,W) float images of one size."""
        boxes, inds = self.propose(imgs, min_face_size)
        boxes, inds = self.refine(imgs, boxes, inds)
        boxes, points, inds = self._output(imgs, boxes, inds)
        boxes, points, inds = boxes.cpu(), points.cpu(), inds.cpu()
        out = []
        for b in range(imgs.shape[0]):
            mine = torch.nonzero(inds == b)[:, 0]
            keep = mine[_nms_min(boxes[mine, :4], boxes[mine, 4], 0.7)]  # best first
            faces = [Face.from_xyxy(*box[:4].tolist(), score=float(box[4]),
                                    landmarks=[tuple(p) for p in pts.tolist()])
                     for box, pts in zip(boxes[keep], points[keep])]
            out.append(faces[:self.max_faces] if self.max_faces else faces)
        return out

    def propose(self, imgs: Tensor, min_face_size: Optional[float] = None
                ) -> Tuple[Tensor, Tensor]:
        """P-Net over the pyramid: squared candidate boxes (K,5: x1,y1,x2,y2,score) + image ids.
        Public, like `refine`: R-/O-Net training mines its examples with these very stages."""
        h, w = imgs.shape[2:]
        boxes = [torch.zeros(0, 9, device=imgs.device)]
        inds = [torch.zeros(0, dtype=torch.long, device=imgs.device)]
        for scale in _pyramid(h, w, min_face_size or self.min_face_size, self.factor):
            level = F.interpolate(imgs, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            reg, prob = self.pnet(_normalise(level))
            b, i = _cell_boxes(reg, prob[:, 1], scale, self.thresholds[0])
            keep = batched_nms(b[:, :4], b[:, 4], i, 0.5)
            boxes.append(b[keep])
            inds.append(i[keep])
        boxes, inds = torch.cat(boxes), torch.cat(inds)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        # P-Net's regression uses w = x2 - x1, unlike the later stages' bbreg (+1)
        size = (boxes[:, 2:4] - boxes[:, 0:2]).repeat(1, 2)
        boxes = torch.cat([boxes[:, :4] + boxes[:, 5:9] * size, boxes[:, 4:5]], dim=1)
        return _rerec(boxes), inds

    def refine(self, imgs: Tensor, boxes: Tensor, inds: Tensor) -> Tuple[Tensor, Tensor]:
        """R-Net on 24x24 crops: rescored, NMS'd, regressed, squared boxes."""
        crops, valid = _crops(imgs, boxes, inds, 24)
        boxes, inds = boxes[valid], inds[valid]
        reg, prob = _run_chunked(self.rnet, crops)
        ok = prob[:, 1] > self.thresholds[1]
        boxes = torch.cat([boxes[ok, :4], prob[ok, 1:2]], dim=1)
        reg, inds = reg[ok], inds[ok]
        keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        return _rerec(_bbreg(boxes[keep], reg[keep])), inds[keep]

    def _output(self, imgs: Tensor, boxes: Tensor, inds: Tensor
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """O-Net on 48x48 crops: final boxes, landmarks (K,5,2) and image ids (before NMS)."""
        crops, valid = _crops(imgs, boxes, inds, 48)
        boxes, inds = boxes[valid], inds[valid]
        reg, pts, prob = _run_chunked(self.onet, crops)
        ok = prob[:, 1] > self.thresholds[2]
        boxes = torch.cat([boxes[ok, :4], prob[ok, 1:2]], dim=1)
        reg, pts, inds = reg[ok], pts[ok], inds[ok]
        # landmarks are relative to the box O-Net saw, i.e. before its own regression
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        px = w * pts[:, :5] + boxes[:, 0:1] - 1
        py = h * pts[:, 5:] + boxes[:, 1:2] - 1
        return _bbreg(boxes, reg), torch.stack([px, py], dim=2), inds


def _check_image(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {img.dtype} {img.shape}")
    return img


def _normalise(x: Tensor) -> Tensor:
    return (x - 127.5) * 0.0078125


def _pyramid(h: int, w: int, min_face_size: float, factor: float) -> List[float]:
    """Scales at which a min_face_size face becomes P-Net's 12 px window, down to 12 px images.

    The shrinking side is tracked by repeated multiplication, as the reference does, so the
    last level is the same even where rounding decides it.
    """
    scale = 12.0 / min_face_size
    side = min(h, w) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def _cell_boxes(reg: Tensor, prob: Tensor, scale: float, threshold: float
                ) -> Tuple[Tensor, Tensor]:
    """P-Net cells with prob >= threshold as image boxes (K,9: x1,y1,x2,y2,score,reg*4)."""
    mask = prob >= threshold
    img_i, yy, xx = mask.nonzero(as_tuple=True)
    origin = torch.stack([xx, yy], dim=1).to(reg.dtype)
    q1 = ((2 * origin + 1) / scale).floor()
    q2 = ((2 * origin + 12) / scale).floor()
    offsets = reg.permute(0, 2, 3, 1)[mask]
    return torch.cat([q1, q2, prob[mask][:, None], offsets], dim=1), img_i


def _bbreg(boxes: Tensor, reg: Tensor) -> Tensor:
    size = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    return torch.cat([boxes[:, :4] + reg * size, boxes[:, 4:]], dim=1)


def _rerec(boxes: Tensor) -> Tensor:
    """Square each box on its centre with side max(w, h), so crops keep the face's aspect."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(dim=1, keepdim=True).values
    x1y1 = boxes[:, 0:2] + wh * 0.5 - side * 0.5
    return torch.cat([x1y1, x1y1 + side, boxes[:, 4:]], dim=1)


def _crops(imgs: Tensor, boxes: Tensor, inds: Tensor, size: int) -> Tuple[Tensor, Tensor]:
    """Normalised size x size crops of the boxes (1-based inclusive pixel boxes, clipped to
    the image) and the mask of boxes that had a non-empty crop."""
    h, w = imgs.shape[2:]
    corners = boxes[:, :4].trunc().long().cpu()
    x = corners[:, 0].clamp(min=1).tolist()
    y = corners[:, 1].clamp(min=1).tolist()
    ex = corners[:, 2].clamp(max=w).tolist()
    ey = corners[:, 3].clamp(max=h).tolist()
    crops, valid = [], []
    for k, b in enumerate(inds.tolist()):
        ok = ey[k] > y[k] - 1 and ex[k] > x[k] - 1
        valid.append(ok)
        if ok:
            patch = imgs[b:b + 1, :, y[k] - 1:ey[k], x[k] - 1:ex[k]]
            crops.append(F.interpolate(patch, size=(size, size), mode="area"))
    crops = torch.cat(crops) if crops else imgs.new_zeros(0, 3, size, size)
    return _normalise(crops), torch.tensor(valid, dtype=torch.bool, device=boxes.device)


def _bucket(n: int) -> int:
    """The padded batch size of n crops: the next power of two up to _BUCKET, then the next
    multiple of _BUCKET; so there are few sizes (memory stays flat) and a frame with one
    candidate does not pay for 64 (padding every batch to 64 made O-Net 3x slower per frame)."""
    if n <= _BUCKET:
        return 1 << (max(n, 1) - 1).bit_length()
    return -(-n // _BUCKET) * _BUCKET


def _run_chunked(net: Callable, crops: Tensor) -> Tuple[Tensor, ...]:
    """`net` over crops in chunks of at most _CHUNK, each padded to `_bucket` crops (rows are
    independent: the padding changes no result); an empty batch still runs
    once so outputs keep their shapes."""
    outs = []
    for i in range(0, max(crops.shape[0], 1), _CHUNK):
        chunk = crops[i:i + _CHUNK]
        n = chunk.shape[0]
        padded = _bucket(n)
        if padded != n:
            chunk = torch.cat([chunk, chunk.new_zeros((padded - n, *chunk.shape[1:]))])
        outs.append([out[:n] for out in net(chunk)])
    return tuple(torch.cat(parts) for parts in zip(*outs))


def _nms_min(boxes: Tensor, scores: Tensor, threshold: float) -> Tensor:
    """Greedy NMS with overlap = intersection / smaller area (MTCNN's final "Min" criterion),
    on 1-based inclusive pixel boxes; returns kept indices, best first."""
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        i, rest = order[0], order[1:]
        keep.append(int(i))
        lo = torch.maximum(boxes[i, :2], boxes[rest, :2])
        hi = torch.minimum(boxes[i, 2:4], boxes[rest, 2:4])
        inter = (hi - lo + 1).clamp(min=0).prod(dim=1)
        order = rest[inter / torch.minimum(area[i], area[rest]) <= threshold]
    return torch.tensor(keep, dtype=torch.long)
