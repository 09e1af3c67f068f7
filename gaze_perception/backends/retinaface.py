"""RetinaFace MobileNet-0.25 face detector on our own module definitions (models/retinaface.py).

Pre- and post-processing follow the reference `detect.py` of biubug6/Face-Detector-1MB-with-
landmark: BGR float pixels minus (104, 117, 123) at the image's own size, softmax face score,
SSD-style decoding against the priors, score threshold, top-k, then NMS. The model's five
points come image-left first, the order of `Face.landmarks`.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from ..core.device import resolve_device
from ..core.image import check_rgb
from ..core.types import Face
from ..core.weights import load_state_dict, locate
from ..models.retinaface import (BGR_MEAN, RetinaFace, decode_boxes, decode_landmarks, priors,
                                 strip_module_prefix)
from ..models.state_dict import load_strict
from .base import FaceDetector, check_detector_params
from .nms import nms


class RetinaFaceDetector(FaceDetector):
    """Faces with five landmarks from RetinaFace; same-size images share one forward pass.

    `weights` is a manifest name (sha256-checked) or a state-dict file path. `score_threshold`
    is the face probability kept, `nms_threshold` the IoU above which the weaker box goes,
    `top_k` the candidates kept before NMS, `max_faces` the best N faces returned (0 = all).
    `max_side` > 0 shrinks images whose longer side exceeds it before the pass (faster on
    large frames, at the cost of the smallest faces); 0 keeps the image size, as the
    reference evaluation does.
    """

    gives = frozenset({"faces", "landmarks"})

    def __init__(self, *, weights: Union[str, Path] = "retinaface_mnet025",
                 weights_dir: Optional[Path] = None, device: str = "auto",
                 score_threshold: float = 0.8, nms_threshold: float = 0.4, top_k: int = 5000,
                 max_faces: int = 0, max_side: int = 0) -> None:
        check_detector_params(score_threshold, nms_threshold, top_k, max_faces)
        if int(max_side) != max_side or max_side < 0:
            raise ValueError(f"max_side must be a non-negative integer, got {max_side}")
        self.score_threshold, self.nms_threshold = float(score_threshold), float(nms_threshold)
        self.top_k, self.max_faces, self.max_side = int(top_k), int(max_faces), int(max_side)
        self.device = resolve_device(device)
        self.weights = str(weights)
        path = locate(weights, weights_dir, "RetinaFace weights")
        self.net = RetinaFace()
        load_strict(self.net, strip_module_prefix(load_state_dict(path)),
                    f"weights file '{path}'")
        self.net.to(self.device).eval()
        self._priors: Dict[Tuple[int, int], torch.Tensor] = {}

    def describe(self) -> str:
        return (f"RetinaFaceDetector(weights={self.weights}, device={self.device}, "
                f"score_threshold={self.score_threshold:g}, nms_threshold="
                f"{self.nms_threshold:g}, top_k={self.top_k}, max_faces={self.max_faces}, "
                f"max_side={self.max_side})")

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """Faces per image, best score first."""
        inputs = [self._prepare(check_rgb(img)) for img in images]
        groups: Dict[Tuple[int, int], List[int]] = defaultdict(list)
        for i, (bgr, _) in enumerate(inputs):
            groups[bgr.shape[:2]].append(i)
        results: List[List[Face]] = [[] for _ in inputs]
        for size, idx in groups.items():
            batch = torch.from_numpy(np.stack([inputs[i][0] for i in idx])).to(self.device)
            loc, conf, landm = self.net(batch.permute(0, 3, 1, 2))
            anchors = self._anchors(size)
            boxes, points = decode_boxes(loc, anchors), decode_landmarks(landm, anchors)
            scores = conf.softmax(dim=-1)[..., 1]
            for k, i in enumerate(idx):
                results[i] = self._faces(boxes[k], scores[k], points[k], inputs[i][1])
        return results

    def _prepare(self, rgb: np.ndarray) -> Tuple[np.ndarray, float]:
        """(BGR float32 minus the mean, scale applied to the image)."""
        scale = 1.0
        if self.max_side and max(rgb.shape[:2]) > self.max_side:
            scale = self.max_side / max(rgb.shape[:2])
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        return rgb[:, :, ::-1].astype(np.float32) - np.float32(BGR_MEAN), scale

    def _anchors(self, size: Tuple[int, int]) -> torch.Tensor:
        if size not in self._priors:  # a camera keeps one frame size: compute once
            self._priors[size] = priors(*size).to(self.device)
        return self._priors[size]

    def _faces(self, boxes: torch.Tensor, scores: torch.Tensor, points: torch.Tensor,
               scale: float) -> List[Face]:
        keep = torch.nonzero(scores > self.score_threshold)[:, 0]
        keep = keep[scores[keep].argsort(descending=True)[:self.top_k]]
        keep = keep[nms(boxes[keep], scores[keep], self.nms_threshold)]  # best first
        if self.max_faces:
            keep = keep[:self.max_faces]
        boxes, points = (boxes[keep] / scale).tolist(), (points[keep] / scale).tolist()
        return [Face.from_xyxy(*box, score=float(s), landmarks=[tuple(p) for p in pts])
                for box, s, pts in zip(boxes, scores[keep].tolist(), points)]
