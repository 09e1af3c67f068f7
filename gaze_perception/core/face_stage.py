"""The face stage, written once: detect, track, the dense mesh, head pose. `Pipeline` and the
face node both run it, so `run` and the ROS graph see the same faces.

Order per frame: the detector's faces (boxes, five landmarks, scores); the tracker gives them
ids (frames in order); the landmark backend's meshes (which carry the track ids); head pose
from each trusted mesh, from the five points elsewhere (`core.face_mesh.analyse_faces`), or
from the five points alone where no landmark stage is configured (`head_pose` off: none).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .face_mesh import analyse_faces
from .head_pose import fill_head_pose
from .stages import Context
from .types import Face


@dataclass
class FaceStage:
    """The backends of the face stage (the face node swaps `detector` and `tracker` when its
    parameters change); `landmarker` and `tracker` may be None."""

    detector: Any = None
    landmarker: Any = None
    tracker: Any = None
    head_pose: bool = True

    def detect(self, frames: Sequence[np.ndarray]) -> List[List[Face]]:
        if self.detector is None:
            raise ValueError("no face stage configured and no faces given")
        return [list(fs) for fs in self.detector.detect(frames)]

    def finish(self, frames: Sequence[np.ndarray], faces: List[List[Face]], ctx: Context
               ) -> Tuple[Optional[list], Optional[list]]:
        """Track, mesh and head pose for faces already detected (in place); returns the meshes
        and the eyes' gaze per frame (None without a landmark stage)."""
        if self.tracker is not None:  # frames arrive in order, batch after batch
            for fs in faces:
                self.tracker.update(fs)
        if self.landmarker is not None:  # head pose from the meshes, five points where untrusted
            meshes = self.landmarker.estimate(frames, faces, ctx)
            return meshes, [analyse_faces(fs, ms, k, self.head_pose)
                            for fs, ms, k in zip(faces, meshes, ctx.intrinsics)]
        if self.head_pose:
            for fs, k in zip(faces, ctx.intrinsics):
                for face in fs:
                    fill_head_pose(face, k)
        return None, None
