"""REP-155 (ROS4HRI) geometry and naming, without ROS: face ids, normalised regions and
landmarks, and the `face_<id>` / `gaze_<id>` frames.

Frames (REP-155): `face_<id>` has its origin at the sellion (between the eyes), x forward out of
the face, z up (y to the person's left); `gaze_<id>` is collocated with it, z along the gaze, x to
the person's right, y down (the optical convention). Both are given in the camera's optical frame
(x image-right, y down, z forward), the frame of the image header.

The position comes from the camera intrinsics and a nominal face size: the face's distance is
fx * FACE_WIDTH_M / box width, and the sellion is the eye midpoint seen at that distance. The
orientation is the head pose (core/head_pose.py: yaw, pitch, roll of the head in the camera
frame; its face looks along `gaze_direction.angles_to_vector(yaw, pitch)`).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .types import CameraIntrinsics, Face

#: nominal width of a face box (detector boxes span the cheeks), metres
FACE_WIDTH_M = 0.15
#: size of `/humans/faces/<id>/cropped` images (REP-155's /humans/faces/width|height default)
CROP_SIZE = 128
#: the 70 points of hri_msgs/FacialLandmarks (dlib / OpenPose 68 + the two pupils)
N_LANDMARKS = 70
#: our landmark layouts → FacialLandmarks codes, keyed by point count. The five points (image-left
#: eye, image-right eye, nose, image-left and image-right mouth corner) of a person facing the
#: camera: image-left is the person's right (dlib's RIGHT_* codes). A dense layout (e.g. the
#: 468-point MediaPipe mesh) adds its own entry: {point index in our list: code}.
LANDMARK_CODES: Dict[int, Dict[int, int]] = {
    5: {0: 68,   # RIGHT_PUPIL (eye centre)
        1: 69,   # LEFT_PUPIL
        2: 30,   # NOSE (tip)
        3: 48,   # MOUTH_OUTER_RIGHT
        4: 54},  # MOUTH_OUTER_LEFT
}


def face_id(track_id: int) -> str:
    """The REP-155 id of a track: `f00007` for track 7 (hri_face_detect's deterministic ids; a
    topic-name token cannot start with a digit). Untracked faces (track 0) have none."""
    return f"f{int(track_id):05d}"


def track_of(fid: str) -> int:
    return int(fid[1:])


def normalized_roi(face: Face, width: int, height: int) -> Tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the box, clipped to the image, in [0, 1]."""
    x1, y1, x2, y2 = face.xyxy
    return (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))


def facial_landmarks(points: Sequence[Sequence[float]], width: int, height: int,
                     confidence: float = 1.0) -> List[Tuple[float, float, float]]:
    """Our landmarks (pixels) → the 70 (x, y, c) of FacialLandmarks, normalised; a code with no
    point of ours has c = 0. An unknown layout (point count) gives all zeros."""
    out = [(0.0, 0.0, 0.0)] * N_LANDMARKS
    for i, code in LANDMARK_CODES.get(len(points), {}).items():
        x, y = float(points[i][0]), float(points[i][1])
        if math.isfinite(x) and math.isfinite(y):
            out[code] = (min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0),
                         float(confidence))
    return out


def head_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation of the head model (x image-right, y down, z away from the camera for a frontal
    face) in the camera frame: the R of `head_pose.estimate_head_pose`, R = Ry(-yaw) Rx(pitch)
    Rz(roll)."""
    cy, sy = math.cos(-yaw), math.sin(-yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def sellion_pixel(face: Face) -> Tuple[float, float]:
    """The eye midpoint, else the box point a third from the top."""
    return face.eye_midpoint() or (face.x + face.width / 2.0, face.y + face.height / 3.0)


def face_position(face: Face, k: CameraIntrinsics) -> Optional[np.ndarray]:
    """The sellion in the camera frame (metres), from the nominal face width; None without a box."""
    if not face.width > 0:
        return None
    z = k.fx * FACE_WIDTH_M / face.width
    u, v = sellion_pixel(face)
    return np.array([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z])


def face_frame(face: Face, k: CameraIntrinsics) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(position, 3x3 rotation) of `face_<id>` in the camera frame; None without a head pose."""
    pose, pos = face.head_pose, face_position(face, k)
    if pose is None or pos is None:
        return None
    r = head_rotation(*pose)
    # x forward = -z of the head model, y = the person's left = head x, z up = -head y
    return pos, np.column_stack([-r[:, 2], r[:, 0], -r[:, 1]])


def gaze_frame(face: Face, k: CameraIntrinsics, direction: Optional[Sequence[float]] = None
               ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(position, rotation) of `gaze_<id>`: at the face, z along `direction` (camera frame; the
    head's facing direction when None), x to the person's right, y down."""
    frame = face_frame(face, k)
    if frame is None:
        return None
    pos, rf = frame
    z = rf[:, 0] if direction is None else np.asarray(direction, float)
    if not np.all(np.isfinite(z)) or np.linalg.norm(z) < 1e-9:
        return None
    z = z / np.linalg.norm(z)
    x = np.cross(-rf[:, 2], z)  # (head down) x gaze: the person's right
    if np.linalg.norm(x) < 1e-9:
        x = -rf[:, 1]
    x = x / np.linalg.norm(x)
    return pos, np.column_stack([x, np.cross(z, x), z])


def quaternion(r: np.ndarray) -> Tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation matrix."""
    m = np.asarray(r, float)
    t = np.trace(m)
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    n = math.sqrt(sum(v * v for v in q))
    return tuple(v / n for v in q)


def rotation(q: Sequence[float]) -> np.ndarray:
    """The rotation matrix of a quaternion (x, y, z, w)."""
    x, y, z, w = (float(v) for v in q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def gazed_track(label: str) -> Optional[int]:
    """The track id a gaze-target label names (`person:<track>`), else None."""
    if label.startswith("person:"):
        try:
            return int(label.split(":", 1)[1])
        except ValueError:
            return None
    return None
