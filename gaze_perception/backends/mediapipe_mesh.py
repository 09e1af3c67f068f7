"""Dense face landmarks: MediaPipe Face Mesh (468 points) and Iris, run with OpenCV's TFLite
importer (no mediapipe import; the TFLite files come from the official wheel, sha256-checked).

Per face: the mesh crop (192x192, RGB in [0, 1]) is cut around the detection, turned along
the eye line; the mesh is run `passes` times, each later pass on the crop the previous mesh
gives (MediaPipe's tracking ROI), which centres profiles and close-ups better. Then each eye's
64x64 iris crop around its corners (the image-right eye flipped, as the model knows left eyes
only) gives the iris centre and contour. All faces of a batch run in one forward pass per step.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..core import weights
from ..core.face_mesh import (IRIS_SIZE, MESH_SIZE, NUM_POINTS, FaceMesh, crop_to_image,
                              iris_roi, roi_from_face, roi_from_mesh)
from ..core.image import check_rgb
from ..core.types import Face
from .base import FaceLandmarker, check_batch

_MESH_OUT = ("conv2d_31", "conv2d_21")              # presence logit, 468 x (x, y, z)
_IRIS_OUT = ("output_eyes_contours_and_brows", "output_iris")
#: OpenCV's classic DNN engine, the one this path was checked with: `ENGINE_CLASSIC` in OpenCV 5.0,
#: renamed `ENGINE_OPENCV` in 5.1 (which dropped the name; the mesh and iris outputs of 5.1's
#: `ENGINE_OPENCV` are bit-equal to 5.0's `ENGINE_CLASSIC` on real face crops).
_ENGINE_NAMES = ("ENGINE_CLASSIC", "ENGINE_OPENCV")


def tflite_engine() -> int:
    """The installed OpenCV's value for the classic engine (see `_ENGINE_NAMES`)."""
    for name in _ENGINE_NAMES:
        if hasattr(cv2.dnn, name):
            return getattr(cv2.dnn, name)
    raise weights.WeightsError(
        f"OpenCV {cv2.__version__} has none of the DNN engines {', '.join(_ENGINE_NAMES)} that "
        "read the Face Mesh / Iris TFLite files; install the OpenCV of requirements.lock "
        "(make setup)")


class MediaPipeFaceMesh(FaceLandmarker):
    """468 mesh points and both irises per face (see the module docstring).

    `passes` (>= 1): mesh runs per face, 2 = one refinement on the mesh's own crop (default;
    measured best on the AFLW2000 development set). `iris`: also run the iris model. `device`
    is accepted for the common interface; OpenCV's TFLite path runs on the CPU.
    """

    def __init__(self, *, weights_dir: Optional[Path] = None, device: str = "auto",
                 passes: int = 2, iris: bool = True,
                 mesh_weights: str = "mediapipe_face_mesh",
                 iris_weights: str = "mediapipe_iris") -> None:
        if int(passes) != passes or passes < 1:
            raise ValueError(f"passes must be a positive integer, got {passes}")
        self.passes, self.with_iris, self.device = int(passes), bool(iris), "cpu"
        self.mesh = self._load(mesh_weights, weights_dir, "Face Mesh weights")
        self.iris = self._load(iris_weights, weights_dir, "Iris weights") if iris else None

    @staticmethod
    def _load(spec: str, weights_dir: Optional[Path], what: str):
        path = weights.locate(spec, weights_dir, what)
        try:
            return cv2.dnn.readNetFromTFLite(str(path), engine=tflite_engine())
        except cv2.error as exc:
            raise weights.WeightsError(f"{what} '{path}' cannot be read as TFLite: "
                                       f"{str(exc).strip().splitlines()[-1]}") from None

    def describe(self) -> str:
        return f"MediaPipeFaceMesh(passes={self.passes}, iris={self.with_iris}, device=cpu)"

    def estimate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]],
                 ctx=None) -> List[List[FaceMesh]]:
        check_batch(images, faces)
        images = [check_rgb(im) for im in images]
        slots = [(i, j) for i, fs in enumerate(faces) for j in range(len(fs))]
        if not slots:
            return [[] for _ in images]
        rois = [roi_from_face(faces[i][j]) for i, j in slots]
        for step in range(self.passes):
            points, presence = self._mesh([images[i] for i, _ in slots], rois)
            if step + 1 < self.passes:
                rois = [roi_from_mesh(p) for p in points]
        iris = self._iris([images[i] for i, _ in slots], points) if self.iris is not None \
            else [None] * len(slots)
        out: List[List[FaceMesh]] = [[] for _ in images]
        for (i, j), p, s, ir in zip(slots, points, presence, iris):
            out[i].append(FaceMesh(face_index=j, points=p, presence=s, iris=ir,
                                   track_id=faces[i][j].track_id))
        return out

    def _mesh(self, images, rois):
        crops = [_warp(im, m, MESH_SIZE, cv2.BORDER_CONSTANT) for im, m in zip(images, rois)]
        logits, pts = _forward(self.mesh, crops, _MESH_OUT)
        pts = pts.reshape(len(crops), NUM_POINTS, 3).astype(np.float64)
        points = [crop_to_image(p, m) for p, m in zip(pts, rois)]
        presence = (1.0 / (1.0 + np.exp(-logits.reshape(-1).astype(np.float64)))).tolist()
        return points, presence

    def _iris(self, images, points) -> List[np.ndarray]:
        crops, rois = [], []
        for im, p in zip(images, points):
            for eye, (a, b) in enumerate(((33, 133), (362, 263))):
                m = iris_roi(p[a, :2], p[b, :2])
                crop = _warp(im, m, IRIS_SIZE, cv2.BORDER_REPLICATE)
                crops.append(crop[:, ::-1] if eye == 1 else crop)
                rois.append(m)
        _, iris = _forward(self.iris, crops, _IRIS_OUT)
        iris = iris.reshape(len(crops), 5, 3)[:, :, :2].astype(np.float64)
        iris[1::2, :, 0] = IRIS_SIZE - iris[1::2, :, 0]           # undo the flip
        mapped = np.stack([crop_to_image(q, m) for q, m in zip(iris, rois)])
        return list(mapped.reshape(len(images), 2, 5, 2))


def _warp(image: np.ndarray, m: np.ndarray, size: int, border: int) -> np.ndarray:
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=border)


def _forward(net, crops: Sequence[np.ndarray], names):
    """One batched forward of RGB uint8 crops (scaled to [0, 1], channels first)."""
    blob = np.ascontiguousarray(
        np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0))
    net.setInput(blob)
    first, second = net.forward(list(names))
    return first, second
