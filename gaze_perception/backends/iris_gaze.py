"""Gaze direction from the eyes, with no gaze training data: MediaPipe Face Mesh + Iris, the
iris centre against the eyeball the mesh places, composed with the head pose
(`core.face_mesh.eye_gaze`). A `gaze_direction` backend, so the `head_pose` gaze backend can
aim its ray along it (`direction_backend: iris`)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..core.face_mesh import analyse_faces
from ..core.gaze_direction import GazeDirection, vector_to_angles
from ..core.stages import Context, context_of
from ..core.types import Face
from .base import GazeDirectionEstimator
from .mediapipe_mesh import MediaPipeFaceMesh


class IrisGazeDirection(GazeDirectionEstimator):
    """Per face: yaw, pitch and unit direction (camera frame) of the eyes' gaze; NaN where the
    face has no usable mesh. Head pose comes from the mesh as in the landmark stage; the
    faces' own yaw/pitch/roll are left as they are."""

    def __init__(self, *, weights_dir: Optional[Path] = None, device: str = "auto",
                 passes: int = 3) -> None:
        self.mesh = MediaPipeFaceMesh(weights_dir=weights_dir, device=device, passes=passes)
        self.device = self.mesh.device

    def describe(self) -> str:
        return f"IrisGazeDirection({self.mesh.describe()})"

    def estimate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]],
                 ctx: Optional[Context] = None) -> List[List[GazeDirection]]:
        ctx = context_of(images, ctx)
        out = []
        for cam, frame_faces, meshes in zip(ctx.intrinsics, faces,
                                            self.mesh.estimate(images, faces)):
            copies = [Face(**vars(f)) for f in frame_faces]     # head pose stays the caller's
            gazes = analyse_faces(copies, meshes, cam)
            out.append([_direction(g, f.track_id) for g, f in zip(gazes, frame_faces)])
        return out


def _direction(g, track_id: int) -> GazeDirection:
    if g.direction is None:
        return GazeDirection(face_index=g.face_index, track_id=track_id)
    yaw, pitch = vector_to_angles(np.asarray(g.direction))
    yaw, pitch = float(yaw), float(pitch)
    return GazeDirection(face_index=g.face_index, yaw=yaw, pitch=pitch,
                         direction=tuple(g.direction), track_id=track_id)

