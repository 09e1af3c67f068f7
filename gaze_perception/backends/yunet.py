"""YuNet face detector (libfacedetection, Wu et al. 2023) through OpenCV's `cv2.FaceDetectorYN`.

OpenCV does the pre-processing, decoding and NMS; this backend checks the weights, sets the
input size for each image, and converts rows to `Face`s. YuNet names its points from the
subject's view (right eye, left eye, nose, right and left mouth corner), which for a frontal
face is image-left first: the same order as `Face.landmarks`, so no reordering is needed.
No torch: it runs wherever OpenCV does, on the CPU.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np

from ..core.device import DeviceError
from ..core.image import check_rgb
from ..core.types import Face
from ..core.weights import WeightsError, locate
from .base import FaceDetector, check_detector_params

log = logging.getLogger(__name__)


class YuNetDetector(FaceDetector):
    """Faces with five landmarks from one YuNet pass per image, at the image's own size.

    `weights` is a manifest name (sha256-checked) or an ONNX file path; `score_threshold` is
    the face score kept, `nms_threshold` the IoU above which the weaker of two boxes goes,
    `top_k` the candidates kept before NMS and `max_faces` the best N faces returned (0 = all).
    `device` is accepted for the common backend interface: `auto` and `cpu` run on the CPU.
    """

    gives = frozenset({"faces", "landmarks"})

    def __init__(self, *, weights: Union[str, Path] = "yunet_2023mar",
                 weights_dir: Optional[Path] = None, device: str = "auto",
                 score_threshold: float = 0.6, nms_threshold: float = 0.3, top_k: int = 5000,
                 max_faces: int = 0) -> None:
        check_detector_params(score_threshold, nms_threshold, top_k, max_faces)
        if str(device).strip().lower() not in ("auto", "cpu"):
            raise DeviceError(f"device '{device}': yunet runs in OpenCV on the CPU; use auto "
                              "or cpu")
        self.device = "cpu"
        self.weights = str(weights)
        self.score_threshold, self.nms_threshold = float(score_threshold), float(nms_threshold)
        self.top_k, self.max_faces = int(top_k), int(max_faces)
        path = locate(weights, weights_dir, "YuNet weights")
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.score_threshold,
                                                 self.nms_threshold, self.top_k)
        except cv2.error as exc:
            raise WeightsError(f"cannot load YuNet weights '{path}': {exc}") from exc

    def describe(self) -> str:
        return (f"YuNetDetector(weights={self.weights}, score_threshold="
                f"{self.score_threshold:g}, nms_threshold={self.nms_threshold:g}, "
                f"top_k={self.top_k}, max_faces={self.max_faces})")

    def detect(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """Faces per image, best score first."""
        return [self._detect_one(check_rgb(img)) for img in images]

    def _detect_one(self, rgb: np.ndarray) -> List[Face]:
        self.net.setInputSize((rgb.shape[1], rgb.shape[0]))
        _, rows = self.net.detect(np.ascontiguousarray(rgb[:, :, ::-1]))
        if rows is None:
            return []
        rows = rows[np.argsort(-rows[:, 14], kind="stable")]
        if self.max_faces:
            rows = rows[:self.max_faces]
        return [Face(float(r[0]), float(r[1]), float(r[2]), float(r[3]), score=float(r[14]),
                     landmarks=[(float(x), float(y)) for x, y in r[4:14].reshape(5, 2)])
                for r in rows]
