"""What a backend is: a class with a `needs`/`gives` declaration and one batched call.

Backends take RGB uint8 numpy images and core dataclasses; torch stays inside them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, FrozenSet, List, Optional, Sequence

import numpy as np

from ..core.types import CameraIntrinsics, EyeState, Face, GazeTarget


class Backend(ABC):
    #: inputs a backend requires beyond the image, e.g. {"faces", "landmarks"}
    needs: ClassVar[FrozenSet[str]] = frozenset()
    #: what it produces, e.g. {"faces", "landmarks"}
    gives: ClassVar[FrozenSet[str]] = frozenset()

    def describe(self) -> str:
        return f"{type(self).__name__}(needs={sorted(self.needs)}, gives={sorted(self.gives)})"


class FaceDetector(Backend):
    gives = frozenset({"faces"})

    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """Faces for each image of a batch (images may differ in size)."""


def check_detector_params(score_threshold: float, nms_threshold: float, top_k: int,
                          max_faces: int) -> None:
    """The thresholds and counts every single-shot face backend takes."""
    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must lie in [0, 1], got {score_threshold}")
    if not 0.0 < nms_threshold <= 1.0:
        raise ValueError(f"nms_threshold must lie in (0, 1], got {nms_threshold}")
    if int(top_k) != top_k or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k}")
    if int(max_faces) != max_faces or max_faces < 0:
        raise ValueError(f"max_faces must be a non-negative integer, got {max_faces}")


class EyeStateEstimator(Backend):
    needs = frozenset({"faces", "landmarks"})
    gives = frozenset({"eyes"})

    @abstractmethod
    def estimate(self, images: Sequence[np.ndarray],
                 faces: Sequence[Sequence[Face]]) -> List[List[EyeState]]:
        """One EyeState per face, `face_index` aligned with `faces[i]`."""


class FaceLandmarker(Backend):
    needs = frozenset({"faces", "landmarks"})
    gives = frozenset({"dense_landmarks"})

    @abstractmethod
    def estimate(self, images: Sequence[np.ndarray],
                 faces: Sequence[Sequence[Face]]) -> List[List["FaceMesh"]]:
        """One `core.face_mesh.FaceMesh` per face, `face_index` aligned with `faces[i]`."""


class GazeTargetEstimator(Backend):
    needs = frozenset({"faces"})
    gives = frozenset({"gaze"})

    @abstractmethod
    def estimate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]],
                 intrinsics: Optional[Sequence[Optional[CameraIntrinsics]]] = None,
                 ) -> List[List[GazeTarget]]:
        """One GazeTarget per face, `face_index` aligned with `faces[i]`."""
