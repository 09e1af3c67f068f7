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


class EyeStateEstimator(Backend):
    needs = frozenset({"faces", "landmarks"})
    gives = frozenset({"eyes"})

    @abstractmethod
    def estimate(self, images: Sequence[np.ndarray],
                 faces: Sequence[Sequence[Face]]) -> List[List[EyeState]]:
        """One EyeState per face, `face_index` aligned with `faces[i]`."""


class GazeTargetEstimator(Backend):
    needs = frozenset({"faces"})
    gives = frozenset({"gaze"})

    @abstractmethod
    def estimate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]],
                 intrinsics: Optional[Sequence[Optional[CameraIntrinsics]]] = None,
                 ) -> List[List[GazeTarget]]:
        """One GazeTarget per face, `face_index` aligned with `faces[i]`."""
