"""Gaze direction without torch: the result type, angle conventions, the angular error and the
iTracker inputs (eye boxes, face grid) computed from a face.

Convention (the same as head pose, `core.head_pose`): yaw and pitch in radians in the camera
frame (x right, y down, z forward). yaw > 0 looks towards image-right, pitch > 0 looks down;
the unit vector is ``(sin(yaw) cos(pitch), sin(pitch), -cos(yaw) cos(pitch))``, so a face that
looks into the camera has direction (0, 0, -1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .types import Face

#: iTracker's face grid: the frame as a GRID x GRID raster, 1 where the face box lies
GRID = 25
#: side of an eye crop / inter-ocular distance; about the size of GazeCapture's Apple eye boxes
EYE_SCALE = 0.7


@dataclass
class GazeDirection:
    """Appearance-based gaze of one face: angles and unit direction (L2CS-style models) or a
    point on the screen plane in cm relative to the camera (iTracker-style models)."""

    face_index: int
    yaw: float = math.nan
    pitch: float = math.nan
    direction: Optional[Tuple[float, float, float]] = None
    point_cm: Optional[Tuple[float, float]] = None
    track_id: int = 0


def angles_to_vector(yaw, pitch) -> np.ndarray:
    """Unit gaze vectors (..., 3) of yaw and pitch in radians (module convention)."""
    yaw, pitch = np.asarray(yaw, float), np.asarray(pitch, float)
    return np.stack([np.sin(yaw) * np.cos(pitch), np.sin(pitch),
                     -np.cos(yaw) * np.cos(pitch)], axis=-1)


def vector_to_angles(v) -> Tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) in radians of gaze vectors (..., 3); the vectors need not be unit."""
    v = np.asarray(v, float)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.arctan2(v[..., 0], -v[..., 2]), np.arcsin(np.clip(v[..., 1], -1.0, 1.0))


def angle_between(a: Sequence[float], b: Sequence[float]) -> float:
    """Angle (radians) between two 3D vectors, which need not be unit."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.acos(max(-1.0, min(1.0, cos)))


def angular_error_deg(a, b) -> np.ndarray:
    """Angle in degrees between gaze vectors a and b (..., 3), which need not be unit."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def face_grid(box: Sequence[float], width: int, height: int, size: int = GRID) -> np.ndarray:
    """(size, size) uint8 raster of the frame with 1 where the face box (x, y, w, h) lies."""
    x, y, w, h = box
    grid = np.zeros((size, size), np.uint8)
    x0, x1 = (int(np.clip(math.floor(v / width * size), 0, size - 1)) for v in (x, x + w))
    y0, y1 = (int(np.clip(math.floor(v / height * size), 0, size - 1)) for v in (y, y + h))
    grid[y0:y1 + 1, x0:x1 + 1] = 1
    return grid


def eye_boxes(face: Face) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Square (x, y, w, h) boxes of the subject's left and right eye, as GazeCapture names them.

    The subject's left eye appears on image-right: landmark 1. Side = EYE_SCALE x inter-ocular
    distance. Raises ValueError without two distinct eye landmarks.
    """
    if len(face.landmarks) < 2:
        raise ValueError("iTracker needs the two eye landmarks")
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    side = EYE_SCALE * math.hypot(rx - lx, ry - ly)
    if not side > 1.0:
        raise ValueError("eye landmarks coincide")
    square = lambda cx, cy: (cx - side / 2, cy - side / 2, side, side)  # noqa: E731
    return square(rx, ry), square(lx, ly)
