"""Named regions of interest: polygons in image pixels, as written in a pipeline YAML."""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from .types import CAMERA_LABEL

#: target labels the analytics hand out themselves; a region may not take these names
OUT_OF_FRAME, ELSEWHERE, UNKNOWN = "out_of_frame", "elsewhere", "unknown"
CAMERA = CAMERA_LABEL   # looking at the camera (the robot)
PERSON_PREFIX = "person:"


def person_label(track_id: int) -> str:
    return f"{PERSON_PREFIX}{track_id}"


def region_polygon(name, points: Sequence[Sequence[float]]) -> np.ndarray:
    """A region's polygon as (N, 2) float32 pixels; a reserved name (the labels the analytics
    hand out themselves) or fewer than 3 finite [x, y] points is refused with a reason."""
    name = str(name)
    if name in (OUT_OF_FRAME, ELSEWHERE, UNKNOWN, CAMERA) or name.startswith(PERSON_PREFIX):
        raise ValueError(f"region name '{name}' is reserved")
    poly = np.asarray(points, dtype=np.float32)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.isfinite(poly).all():
        raise ValueError(f"region '{name}' must be a polygon of at least 3 [x, y] points, "
                         f"got {points!r}")
    return poly


class Regions:
    """`locate(point)` names the first region (in config order) that contains the point."""

    def __init__(self, polygons: Optional[Mapping[str, Sequence[Sequence[float]]]] = None):
        self.polygons: Dict[str, np.ndarray] = {}
        for name, points in (polygons or {}).items():
            self.polygons[str(name)] = region_polygon(name, points).reshape(-1, 1, 2)

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(self.polygons)

    def locate(self, point: Sequence[float]) -> Optional[str]:
        p = (float(point[0]), float(point[1]))
        for name, poly in self.polygons.items():
            if cv2.pointPolygonTest(poly, p, False) >= 0:
                return name
        return None
