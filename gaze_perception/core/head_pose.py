"""Head pose from the five MTCNN landmarks with cv2.solvePnP and a generic 3D face, or the pose
of the dense mesh where there is one (computed by `core.face_mesh`, which builds on this module)."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import cv2
import numpy as np

from .types import CameraIntrinsics, Face

# Generic face model in millimetres, head frame: x to image-right, y down, z away from the camera
# (camera optical convention), origin at the nose tip. Order: left eye, right eye, nose,
# left mouth corner, right mouth corner (image-left first for a frontal face). x and y are the
# standard 5-point face-alignment template (ArcFace, 112x112) scaled to a 63 mm inter-ocular
# distance, so a frontal template face gives a pose near zero; depths are anthropometric means.
FACE_MODEL_3D = np.array([
    [-31.5, -36.0, 27.0],
    [31.5, -36.0, 27.0],
    [0.0, 0.0, 0.0],
    [-26.0, 37.0, 25.0],
    [26.0, 37.0, 25.0],
], dtype=np.float64)


def estimate_head_pose(landmarks, intrinsics: CameraIntrinsics
                       ) -> Optional[Tuple[float, float, float]]:
    """(yaw, pitch, roll) in radians, camera frame; None when PnP fails.

    yaw > 0: the face turns towards image-right; pitch > 0: it looks down; roll > 0:
    clockwise in the image. Zero for a face looking straight into the camera.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] != 5 or not np.all(np.isfinite(pts)):
        return None
    k = np.array([[intrinsics.fx, 0, intrinsics.cx], [0, intrinsics.fy, intrinsics.cy],
                  [0, 0, 1]], dtype=np.float64)
    ok, rvec, _ = cv2.solvePnP(FACE_MODEL_3D, pts, k, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return None
    ok, rvec, tvec = cv2.solvePnP(FACE_MODEL_3D, pts, k, None, rvec, np.array([[0.], [0.], [600.]]),
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or tvec[2, 0] <= 0:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    # Intrinsic Y (yaw) - X (pitch) - Z (roll) decomposition of R = Ry * Rx * Rz. The face looks
    # along the head's -z: a positive turn about the camera's y (down) axis swings it towards
    # image-left, hence the minus on yaw; a positive turn about x (image-right) tips it down
    # and one about z (forward) is clockwise on screen, so pitch and roll keep their sign.
    pitch = math.asin(max(-1.0, min(1.0, -rot[1, 2])))
    yaw = math.atan2(rot[0, 2], rot[2, 2])
    roll = math.atan2(rot[1, 0], rot[1, 1])
    return (-yaw, pitch, roll)


def fill_head_pose(face: Face, intrinsics: CameraIntrinsics,
                   mesh_pose: Optional[Tuple[float, float, float]] = None) -> Face:
    """Set the face's yaw/pitch/roll: `mesh_pose`, the pose of its dense mesh
    (`core.face_mesh.mesh_head_pose`), where one is given (None: no mesh, or not trusted), else
    from the five landmarks; left NaN when neither works."""
    pose = mesh_pose
    if pose is None and face.landmarks:
        pose = estimate_head_pose(face.landmarks, intrinsics)
    if pose is not None:
        face.yaw, face.pitch, face.roll = pose
    return face
