"""What a backend is: a class with a `needs`/`gives` declaration and one batched call.

Every base class of the stage table (`core/stages.py`) is here. A face detector's call is
`detect(images)`; every other stage's is `estimate(images, faces, ctx=None)`, one result list
per image, `ctx` (`core.stages.Context`) carrying each image's camera intrinsics and what the
stages before it gave (the names of `core.stages.DATA`). `needs` are the names a backend
cannot work without (the pipeline refuses a configuration where no earlier stage gives one),
`uses` those it takes where a stage gives them, `gives` what it adds. Backends take RGB uint8
numpy images and core dataclasses; torch stays inside them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, FrozenSet, List, Optional, Sequence

import numpy as np

from ..core.stages import Context
from ..core.types import EyeState, Face, GazeTarget

if TYPE_CHECKING:
    from ..core.face_mesh import FaceMesh
    from ..core.gaze_coding import FrameCode
    from ..core.gaze_direction import GazeDirection


class Backend(ABC):
    #: data it requires beyond the image and the intrinsics, e.g. {"faces"}
    needs: ClassVar[FrozenSet[str]] = frozenset()
    #: data it reads from the Context where an earlier stage gives it, e.g. {"eye_directions"}
    uses: ClassVar[FrozenSet[str]] = frozenset()
    #: what it produces, e.g. {"faces"}
    gives: ClassVar[FrozenSet[str]] = frozenset()

    def describe(self) -> str:
        return f"{type(self).__name__}(needs={sorted(self.needs)}, gives={sorted(self.gives)})"

    def prepare(self, given: FrozenSet[str]) -> None:
        """Load now what the calls will need, knowing the data names every call's Context will
        carry (`given`); a backend that loads everything when built has nothing to do."""


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


class FaceStageBackend(Backend):
    """A stage after face detection: one batched `estimate` over images and their faces."""

    needs = frozenset({"faces"})

    @abstractmethod
    def estimate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]],
                 ctx: Optional[Context] = None) -> list:
        """One result list per image (one entry per face, `face_index` aligned with
        `faces[i]`; the gaze coder: one FrameCode per image)."""


def check_batch(images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]]) -> None:
    """The one check every `estimate` makes of its batch."""
    if len(images) != len(faces):
        raise ValueError(f"{len(images)} images but {len(faces)} face lists")


class FaceLandmarker(FaceStageBackend):
    gives = frozenset({"meshes"})

    @abstractmethod
    def estimate(self, images, faces, ctx=None) -> List[List["FaceMesh"]]:
        """One `core.face_mesh.FaceMesh` per face, `face_index` aligned with `faces[i]`."""


class EyeStateEstimator(FaceStageBackend):
    uses = frozenset({"landmarks"})  # the eye landmarks place the crops; without: unknown
    gives = frozenset({"eyes"})

    @abstractmethod
    def estimate(self, images, faces, ctx=None) -> List[List[EyeState]]:
        """One EyeState per face, `face_index` aligned with `faces[i]`."""


class GazeTargetEstimator(FaceStageBackend):
    gives = frozenset({"gaze"})

    @abstractmethod
    def estimate(self, images, faces, ctx=None) -> List[List[GazeTarget]]:
        """One GazeTarget per face, `face_index` aligned with `faces[i]`."""


class GazeDirectionEstimator(FaceStageBackend):
    """Gaze of every face from its appearance (entry point group gaze_perception.gaze_direction)."""

    gives = frozenset({"directions"})

    @abstractmethod
    def estimate(self, images, faces, ctx=None) -> List[List["GazeDirection"]]:
        """One `core.gaze_direction.GazeDirection` per face, `face_index` aligned with
        `faces[i]`; a face that cannot be cropped gets NaN angles and no direction or point."""


class GazeCoder(FaceStageBackend):
    """One looking code per frame (entry point group gaze_perception.gaze_coding)."""

    gives = frozenset({"coding"})

    @abstractmethod
    def estimate(self, images, faces, ctx=None) -> List["FrameCode"]:
        """The unsmoothed `core.gaze_coding.FrameCode` of each image; no_face when it has no
        usable face."""
