"""MTCNN face detector: our own port of facenet-pytorch's `detect_face` cascade.

The steps, constants and rounding follow facenet-pytorch 2.5 (see
`references/model_lines.md` section 1.3) so that its published weights give the same boxes,
scores and landmarks; facenet-pytorch itself is never imported (it pins an old torch).
Differences, both deliberate: results are sorted by score, not by area, and a box whose crop is
empty (entirely outside the image) is dropped, where the reference misaligns crops and boxes.

Speed (`benchmarks/mtcnn_floor.py` measures it against the FLOP floor): the pyramid levels and
the R-/O-Net crops are gathered from one summed-area table per image (`_integral`), equal bit
for bit to the reference's F.interpolate(mode="area") without a call per crop; the torch
networks run channels_last, P-Net's first convolution and pooling in a phase form
(`_PhasePNet`); R-/O-Net batches are padded to a few sizes only (`_bucket`); and glibc is told
to keep freed activations mapped (`_keep_freed_memory`).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
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
#: R-/O-Net batches are padded to one of a few sizes (`_bucket`): a new batch size makes oneDNN
#: build (and cache) new kernels, and a camera stream brings a new size nearly every frame, so
#: the detector's memory grew by tens of MB a minute at 1080p. The sizes: 1, 2, 4, 8, then
#: multiples of 8 up to 64, of 16 up to 128, of 32 up to 256 and of 64 up to _CHUNK: 23 sizes
#: in all, and a batch is padded by at most 7 crops or a quarter of its size (powers of two up
#: to 64 padded 34 crops to 64, nearly twice the work)
_BUCKET_STEPS = ((64, 8), (128, 16), (256, 32), (_CHUNK, 64))
_CL = torch.channels_last


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
        #: P-Net in its phase form (`_PhasePNet`), the torch runtime's fast path
        self._pnet_phases: Optional[_PhasePNet] = None
        if runtime == "torch":  # oneDNN's NHWC kernels: 2-2.5x faster on these small nets
            for net in (self.pnet, self.rnet, self.onet):
                net.to(memory_format=_CL)
            self._pnet_phases = _PhasePNet(self.pnet)
        _keep_freed_memory()
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
            if min(arrays[idx[0]].shape[:2]) < 12:  # no pyramid level: nothing to find
                continue
            sat = _integral([arrays[i] for i in idx])
            for i, faces in zip(idx, self._detect_batch(sat)):
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
        if min(image.shape[:2]) < 12:
            return []
        return self._detect_batch(_integral([image]),
                                  max(self.min_face_size, min_size))[0]

    def _detect_batch(self, sat: np.ndarray, min_face_size: Optional[float] = None
                      ) -> List[List[Face]]:
        """The cascade on images of one size, given as their summed-area tables (`_integral`)."""
        boxes, inds = self._propose(sat, min_face_size)
        boxes, inds = self._refine(sat, boxes, inds)
        boxes, points, inds = self._output(sat, boxes, inds)
        boxes, points, inds = boxes.cpu(), points.cpu(), inds.cpu()
        out = []
        for b in range(sat.shape[0]):
            mine = torch.nonzero(inds == b)[:, 0]
            keep = mine[_nms_min(boxes[mine, :4], boxes[mine, 4], 0.7)]  # best first
            faces = [Face.from_xyxy(*box[:4].tolist(), score=float(box[4]),
                                    landmarks=[tuple(p) for p in pts.tolist()])
                     for box, pts in zip(boxes[keep], points[keep])]
            out.append(faces[:self.max_faces] if self.max_faces else faces)
        return out

    def propose(self, imgs: Tensor, min_face_size: Optional[float] = None
                ) -> Tuple[Tensor, Tensor]:
        """P-Net over the pyramid of (N,3,H,W) float images holding uint8 values: squared
        candidate boxes (K,5: x1,y1,x2,y2,score) + image ids. Public, like `refine`: R-/O-Net
        training mines its examples with these very stages."""
        return self._propose(_as_integral(imgs), min_face_size)

    def refine(self, imgs: Tensor, boxes: Tensor, inds: Tensor) -> Tuple[Tensor, Tensor]:
        """R-Net on 24x24 crops of (N,3,H,W) uint8-valued images: rescored, NMS'd, regressed,
        squared boxes."""
        return self._refine(_as_integral(imgs), boxes, inds)

    def _propose(self, sat: np.ndarray, min_face_size: Optional[float] = None
                 ) -> Tuple[Tensor, Tensor]:
        h, w = sat.shape[1] - 1, sat.shape[2] - 1
        boxes = [torch.zeros(0, 9, device=self.device)]
        inds = [torch.zeros(0, dtype=torch.long, device=self.device)]
        for scale in _pyramid(h, w, min_face_size or self.min_face_size, self.factor):
            size = (int(h * scale + 1), int(w * scale + 1))
            if self._pnet_phases is not None:
                reg, prob = self._pnet_phases(_area_level(sat, size, self.device, even=True),
                                              size)
            else:
                reg, prob = self.pnet(_area_level(sat, size, self.device).permute(0, 3, 1, 2))
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

    def _refine(self, sat: np.ndarray, boxes: Tensor, inds: Tensor) -> Tuple[Tensor, Tensor]:
        crops, valid = _crops(sat, boxes, inds, 24)
        boxes, inds = boxes[valid], inds[valid]
        reg, prob = _run_chunked(self.rnet, crops)
        ok = prob[:, 1] > self.thresholds[1]
        boxes = torch.cat([boxes[ok, :4], prob[ok, 1:2]], dim=1)
        reg, inds = reg[ok], inds[ok]
        keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        return _rerec(_bbreg(boxes[keep], reg[keep])), inds[keep]

    def _output(self, sat: np.ndarray, boxes: Tensor, inds: Tensor
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """O-Net on 48x48 crops: final boxes, landmarks (K,5,2) and image ids (before NMS)."""
        crops, valid = _crops(sat, boxes, inds, 48)
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


class _PhasePNet:
    """P-Net (torch runtime, channels_last) with its first convolution and the 2x2 max-pool
    after it done on the four 2x2 phases at once: one 4x4 convolution of stride 2 with 40
    outputs (conv1's 3x3 kernel at each phase of the pooling window), PReLU, and the maximum
    over the phases. The same sums as conv1 (in another order: equal within float rounding,
    ~1e-6); on a 1080p frame's first level (1 thread) 23 ms against 35-40 ms for conv1 (10
    outputs: a poor fit for oneDNN's kernels), PReLU on the full-size map and max_pool2d.
    The two 1x1 heads run as one matmul."""

    def __init__(self, net: PNet) -> None:
        w1 = net.conv1.weight.detach()  # (10, 3, 3, 3)
        k = w1.new_zeros(2, 2, 10, 3, 4, 4)  # (py, px, out, in, ky, kx)
        for py, px in np.ndindex(2, 2):
            k[py, px, :, :, py:py + 3, px:px + 3] = w1
        self.weight = k.reshape(40, 3, 4, 4).contiguous(memory_format=_CL)
        self.bias = net.conv1.bias.detach().repeat(4)
        self.slope = net.prelu1.weight.detach().repeat(4)
        self.head = torch.cat([net.conv4_1.weight, net.conv4_2.weight]).detach() \
            .flatten(1).t().contiguous()  # (32, 6)
        self.head_bias = torch.cat([net.conv4_1.bias, net.conv4_2.bias]).detach()
        self.net = net

    def __call__(self, level: Tensor, size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """`level`: (N, h', w', 3) normalised, h' and w' the even sides `_area_level(even=True)`
        gives for size (h, w); returns P-Net's (reg, prob) for the (h, w) level."""
        x = F.prelu(F.conv2d(level.permute(0, 3, 1, 2), self.weight, self.bias, stride=2),
                    self.slope)
        p = [x[:, 10 * k:10 * k + 10] for k in range(4)]  # phases (0,0), (0,1), (1,0), (1,1)
        pooled = torch.maximum(torch.maximum(p[0], p[1]), torch.maximum(p[2], p[3]))
        # ceil_mode: an odd level side (odd conv1 output) ends in a pooling window of one
        # row or column; its second phase lies on the repeated row / column, past the level
        if size[1] % 2:
            pooled[..., -1] = torch.maximum(p[0][..., -1], p[2][..., -1])
        if size[0] % 2:
            row = torch.maximum(p[0][..., -1, :], p[1][..., -1, :])
            if size[1] % 2:
                row[..., -1] = p[0][..., -1, -1]
            pooled[..., -1, :] = row
        net = self.net
        x = net.prelu3(net.conv3(net.prelu2(net.conv2(pooled))))
        n, c, h, w = x.shape  # the 1x1 heads as one matmul on the NHWC rows (the 6-channel
        # convolution fell back to a slow NCHW path with copies)
        y = torch.addmm(self.head_bias, x.permute(0, 2, 3, 1).reshape(-1, c), self.head)
        y = y.view(n, h, w, 6).permute(0, 3, 1, 2)
        return y[:, 2:], torch.softmax(y[:, :2], dim=1)


def _keep_freed_memory() -> None:
    """Let glibc keep freed memory for the next frame: blocks up to 32 MB come from the heap
    (M_MMAP_THRESHOLD) and up to 256 MB of free heap stay mapped (M_TRIM_THRESHOLD). The
    cascade allocates and frees tens of MB of activations per frame, and with the defaults
    each frame faulted them in anew: 14,000 page faults and ~50 ms of system time per 640x480
    frame on a 2-core CPU, a third of the detector's time. Process-wide, set once; a no-op
    where the C library is not glibc."""
    global _MALLOC_SET
    if _MALLOC_SET:
        return
    _MALLOC_SET = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)   # M_MMAP_THRESHOLD
    mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD


_MALLOC_SET = False


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


def _integral(images: Sequence[np.ndarray]) -> np.ndarray:
    """Summed-area tables (N, H+1, W+1, 3) of same-size RGB uint8 images (cv2.integral; int32
    while 255 H W fits, else float64: exact either way). The pyramid levels and the crops are
    gathered from them (`_area_level`, `_crops`): numpy on the CPU, whatever the device."""
    h, w = images[0].shape[:2]
    depth = cv2.CV_32S if 255 * h * w < 2 ** 31 else cv2.CV_64F
    return np.stack([cv2.integral(np.ascontiguousarray(img), sdepth=depth) for img in images])


def _as_integral(imgs: Tensor) -> np.ndarray:
    """`_integral` of (N,3,H,W) float images holding uint8 values (the stage methods' input)."""
    return _integral(list(imgs.detach().permute(0, 2, 3, 1).to("cpu", torch.uint8).numpy()))


def _bins(start: np.ndarray, length: np.ndarray, out: int) -> Tuple[np.ndarray, np.ndarray]:
    """First and one-past-last input index of each of `out` area-resize bins over
    [start, start + length): adaptive average pooling's floor(i L / out) .. ceil((i+1) L / out),
    as F.interpolate(mode="area") takes them; (..., out) int64 arrays."""
    i = np.arange(out, dtype=np.int64)
    start, length = np.asarray(start, np.int64)[..., None], np.asarray(length, np.int64)[..., None]
    return start + i * length // out, start - (-(i + 1) * length // out)


def _mean(sums: np.ndarray, rows: np.ndarray, cols: np.ndarray, device: torch.device) -> Tensor:
    """Bin sums (..., R, C, 3) averaged as F.interpolate(mode="area") does (float32 sum / rows
    / cols: the same bits) and normalised for the networks, in place, on `device`; `rows`
    (..., R) and `cols` (..., C) are the bins' heights and widths."""
    f32 = np.float32
    mean = torch.from_numpy(sums.astype(f32)).to(device)
    flat = mean.view(*mean.shape[:-2], mean.shape[-2] * 3)  # (..., R, 3C): cheap broadcasts
    flat.div_(torch.from_numpy(rows.astype(f32)[..., None]).to(device))
    flat.div_(torch.from_numpy(np.repeat(cols.astype(f32), 3, axis=-1)[..., None, :]).to(device))
    return flat.sub_(127.5).mul_(0.0078125).view(mean.shape)  # _normalise, in place


def _area_level(sat: np.ndarray, size: Tuple[int, int], device: torch.device,
                even: bool = False) -> Tensor:
    """The images of `sat` area-resized to size (h, w) and normalised: (N, h, w, 3) float32,
    equal to F.interpolate(imgs, size, mode="area"). `even` repeats the last row / column of
    an odd h / w (P-Net's phase form wants even sides; the copy is never looked at)."""
    (y0, y1), (x0, x1) = (_bins(0, n - 1, out) for n, out in zip(sat.shape[1:3], size))
    if even:
        y0, y1 = (np.append(v, v[-1]) if size[0] % 2 else v for v in (y0, y1))
        x0, x1 = (np.append(v, v[-1]) if size[1] % 2 else v for v in (x0, x1))
    rows = np.take(sat, y1, axis=1)
    rows -= np.take(sat, y0, axis=1)
    rows = rows.reshape(*rows.shape[:2], -1)  # (N, h, 3 (W+1)): gather whole pixels
    three = np.arange(3)
    sums = np.take(rows, (3 * x1[:, None] + three).ravel(), axis=2)
    sums -= np.take(rows, (3 * x0[:, None] + three).ravel(), axis=2)
    sums = sums.reshape(*sums.shape[:2], -1, 3)
    return _mean(sums, y1 - y0, x1 - x0, device)


def _crops(sat: np.ndarray, boxes: Tensor, inds: Tensor, size: int) -> Tuple[Tensor, Tensor]:
    """Normalised size x size crops (K, 3, size, size, channels_last) of the boxes (1-based
    inclusive pixel boxes, clipped to the image), area-resized as F.interpolate(mode="area")
    does, gathered from the images' summed-area tables (no per-crop call); and the mask of
    boxes that had a non-empty crop."""
    n, h, w = sat.shape[0], sat.shape[1] - 1, sat.shape[2] - 1
    corners = boxes[:, :4].trunc().long().cpu().numpy()
    x, y = corners[:, 0].clip(min=1) - 1, corners[:, 1].clip(min=1) - 1
    ex, ey = corners[:, 2].clip(max=w), corners[:, 3].clip(max=h)
    valid = (ey > y) & (ex > x)
    x, y, ex, ey = x[valid], y[valid], ex[valid], ey[valid]
    b = inds.cpu().numpy()[valid]
    y0, y1 = _bins(y, ey - y, size)
    x0, x1 = _bins(x, ex - x, size)
    flat = sat.reshape(n * (h + 1) * (w + 1), 3)
    base = (b * (h + 1))[:, None, None]

    def at(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return np.take(flat, ((base + ys[:, :, None]) * (w + 1) + xs[:, None, :]).ravel(), axis=0)

    sums = (at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)).reshape(-1, size, size, 3)
    crops = _mean(sums, y1 - y0, x1 - x0, boxes.device)
    return crops.permute(0, 3, 1, 2), torch.from_numpy(valid).to(boxes.device)


def _bucket(n: int) -> int:
    """The padded batch size of n crops (see _BUCKET_STEPS): powers of two up to 8, then the
    next multiple of the step of n's range."""
    if n <= 8:
        return 1 << (max(n, 1) - 1).bit_length()
    step = next(step for top, step in _BUCKET_STEPS if n <= top)
    return -(-n // step) * step


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
            chunk = torch.cat([chunk, chunk.new_zeros((padded - n, *chunk.shape[1:]))
                               .contiguous(memory_format=_CL)])
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
