"""Geometric gaze targets from head pose: the default when no Gaze-LLE weights are installed.

The gaze is taken to be where the head faces: a 3D ray from between the eyes along the head's
yaw and pitch, projected into the image with the camera intrinsics (a guess from the image
size when none are given). Walking along the projected ray, the first named region or other
person's face that lies within `cone_deg` of it is the target; otherwise the target is where
the ray leaves the frame, with a low in/out.

Limits, honestly: eye movements are ignored (people often look 10-30 degrees away from where
their head points), so the cone must be generous; a head-pose error of a few degrees moves a
distant target a lot; regions are flat image polygons, so a person "looks at" whatever lies in
that image direction, in front of or behind the real target; in/out and scores are fixed
levels, not calibrated probabilities.

The projected ray does not depend on how far the person is from the camera (scaling the eye
position along its line of sight leaves the image of the ray unchanged), so no depth estimate
is needed. Roll turns the head about the gaze axis and leaves the ray unchanged.
"""
from __future__ import annotations

import math
from typing import List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..core import registry
from ..core.regions import region_polygon
from ..core.gaze_direction import angle_between, angles_to_vector, vector_to_angles
from ..core.stages import Context, context_of
from ..core.types import CAMERA_LABEL, CameraIntrinsics, Face, GazeTarget
from .base import GazeTargetEstimator, check_batch

#: in/out levels: a named target was met; the ray leaves the frame or meets the camera;
#: the ray ends inside the frame (its vanishing point) with nothing named on the way.
IN_FRAME, OUT_OF_FRAME, OPEN_ENDED = 0.9, 0.2, 0.5

Point = Tuple[float, float]


class HeadPoseGaze(GazeTargetEstimator):
    """Targets from faces with head pose (yaw/pitch radians, camera frame) and landmarks.

    `regions`: name -> polygon [[x, y], ...] in image pixels. `cone_deg`: how far from the ray
    a target may lie, seen from the eyes. `max_distance_px`: ignore targets farther along the
    ray. `direction_backend` (e.g. `l2cs`, with `direction_params` such as its `weights`) casts
    the ray along the eyes' gaze direction instead of the head's, and fills `direction` with it;
    `device` goes to that backend (the geometry itself needs no accelerator). A face with
    neither angles gets in/out 0 and score 0, pointing at itself.
    """

    #: the faces' head pose, the eye landmarks (where the ray starts; else the box centre), and
    #: the eyes' directions the landmark stage computed (then no direction backend is needed)
    uses = frozenset({"head_pose", "landmarks", "eye_directions"})

    def __init__(self, regions: Optional[Mapping[str, Sequence[Sequence[float]]]] = None,
                 cone_deg: float = 15.0, max_distance_px: Optional[float] = None,
                 device: str = "auto", direction_backend: Optional[str] = None,
                 direction_params: Optional[Mapping] = None) -> None:
        if not 0.0 < cone_deg < 90.0:
            raise ValueError(f"cone_deg must lie in (0, 90), got {cone_deg}")
        if max_distance_px is not None and max_distance_px <= 0:
            raise ValueError(f"max_distance_px must be positive, got {max_distance_px}")
        self.regions = {str(name): region_polygon(name, pts)
                        for name, pts in (regions or {}).items()}
        self.cone = math.radians(cone_deg)
        self.max_distance = float(max_distance_px) if max_distance_px else math.inf
        # An appearance-based gaze direction (e.g. l2cs) replaces the head pose where it has
        # one; built by `prepare` or when first needed (not at all where the Context carries the
        # eyes' directions)
        self._direction = None if not direction_backend else registry.deferred(
            "gaze_direction", direction_backend, device=device, **dict(direction_params or {}))

    def prepare(self, given) -> None:
        if self._direction and "eye_directions" not in given:  # the ray needs its directions
            self._direction()                                    # load the backend now

    @property
    def direction(self):
        """The direction backend (None without `direction_backend`)."""
        return self._direction() if self._direction else None

    def describe(self) -> str:
        return (f"HeadPoseGaze(regions={sorted(self.regions)}, "
                f"cone_deg={math.degrees(self.cone):g}, "
                f"max_distance_px={self.max_distance:g})")

    def estimate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]],
                 ctx: Optional[Context] = None) -> List[List[GazeTarget]]:
        """`ctx`'s `eye_directions` (per frame, per face: a 3D gaze vector or None) replace
        the direction backend, e.g. the eyes' gaze the landmark stage already computed."""
        check_batch(images, faces)
        ctx = context_of(images, ctx)
        results, angles = [], self._angles(images, faces, ctx)
        for k, (image, frame_faces) in enumerate(zip(images, faces)):
            height, width = image.shape[:2]
            cam = ctx.intrinsics[k]
            others = FaceIndex(frame_faces)
            results.append([self._target(i, frame_faces, cam, width, height, angles[k][i],
                                         others) for i in range(len(frame_faces))])
        return results

    def _angles(self, images, faces, ctx: Context) -> List[List[Tuple[float, float]]]:
        """(yaw, pitch) per face: the given directions or the direction backend's where they
        are finite, else the head pose (NaN when unknown)."""
        head = [[(f.yaw, f.pitch) for f in fs] for fs in faces]
        directions = ctx.get("eye_directions")
        if directions is not None:
            for k, frame in enumerate(directions):
                for i, d in enumerate(frame):
                    if d is not None and np.all(np.isfinite(d)) and np.linalg.norm(d) > 0:
                        yaw, pitch = vector_to_angles(np.asarray(d, float))
                        head[k][i] = (float(yaw), float(pitch))
            return head
        if self.direction is None:
            return head
        for k, estimates in enumerate(self.direction.estimate(images, faces, ctx)):
            for d in estimates:
                if math.isfinite(d.yaw) and math.isfinite(d.pitch):
                    head[k][d.face_index] = (d.yaw, d.pitch)
        return head

    def _target(self, index: int, faces: Sequence[Face], cam: CameraIntrinsics,
                width: int, height: int, angles: Tuple[float, float],
                others: Optional["FaceIndex"] = None) -> GazeTarget:
        face = faces[index]
        if not all(math.isfinite(a) for a in angles):
            return GazeTarget(index, face.center, inout=0.0, score=0.0, track_id=face.track_id)
        d = angles_to_vector(*angles)  # the convention of head pose and gaze direction
        eye = eye_point(face)
        result = dict(face_index=index, track_id=face.track_id, direction=tuple(d.tolist()))
        ray = np.array([(eye[0] - cam.cx) / cam.fx, (eye[1] - cam.cy) / cam.fy, 1.0])
        to_camera = angle_between(d, -ray)
        if to_camera <= self.cone:
            return GazeTarget(point=eye, inout=OUT_OF_FRAME, score=1.0 - to_camera / self.cone,
                              label=CAMERA_LABEL, **result)
        # Image direction of the ray at the eyes (derivative of the projection).
        step = np.array([cam.fx * (d[0] - ray[0] * d[2]), cam.fy * (d[1] - ray[1] * d[2])])
        if np.linalg.norm(step) < 1e-9:  # looking straight away from the camera
            return GazeTarget(point=eye, inout=OPEN_ENDED, score=0.0, **result)
        u = step / np.linalg.norm(step)
        # Looking away from the camera, the ray's image ends at its vanishing point.
        reach = (math.hypot(cam.fx * d[0] / d[2] + cam.cx - eye[0],
                            cam.fy * d[1] / d[2] + cam.cy - eye[1]) if d[2] > 0 else math.inf)
        hit = self._first_hit(np.array(eye), u, min(reach, self.max_distance), faces, index,
                              others or FaceIndex(faces))
        if hit is not None:
            label, point, angle = hit
            return GazeTarget(point=point, inout=IN_FRAME, score=1.0 - angle / self.cone,
                              label=label, **result)
        start = np.clip(eye, (0.0, 0.0), (width, height))
        leave = _exit_distance(start, u, width, height)
        end = start + min(leave, reach) * u
        return GazeTarget(point=(float(end[0]), float(end[1])), score=0.0,
                          inout=OUT_OF_FRAME if leave <= reach else OPEN_ENDED, **result)

    def _first_hit(self, eye: np.ndarray, u: np.ndarray, limit: float, faces: Sequence[Face],
                   index: int, others: "FaceIndex") -> Optional[Tuple[str, Point, float]]:
        """(label, point, angle) of the nearest target within the cone, or None: the regions,
        then the other faces (those `others` offers, all at once), nearer ones first and on a
        tie the first in order."""
        best = None
        for label, poly in self.regions.items():
            seen = _sighting(eye, u, limit, poly)
            if seen is None or seen[1] > self.cone or (best is not None and seen[0] >= best[0]):
                continue
            distance, angle, chord_mid = seen
            best = (distance, label, chord_mid or _centroid(poly), angle)
        near = others.near(eye, index)
        if near.size:
            distance, angle = _box_sightings(eye, u, limit, others.boxes[near])
            distance[angle > self.cone] = np.inf
            k = int(np.argmin(distance))  # the first of the nearest: `near` is in face order
            if np.isfinite(distance[k]) and (best is None or distance[k] < best[0]):
                j = int(near[k])
                best = (float(distance[k]), f"person:{faces[j].track_id or j}", faces[j].center,
                        float(angle[k]))
        return None if best is None else best[1:]


class FaceIndex:
    """The faces of one frame as targets: boxes as arrays and, for crowds, a k-d tree of their
    centres, so each face's ray is tested against at most NEAREST faces (those nearest its
    eyes) and a frame costs O(n log n) instead of O(n^2). With more than NEAREST + 1 faces a
    face farther than its NEAREST nearest is not a candidate target: in such a crowd one of
    those nearer ones is nearly always within the cone first."""

    NEAREST = 64

    def __init__(self, faces: Sequence[Face]):
        # float32 as the polygons of the regions, so a box and a region of the same corners
        # are seen alike
        self.boxes = np.array([f.xyxy for f in faces], dtype=np.float32).reshape(-1, 4) \
            .astype(np.float64)
        self.tree = None
        if len(faces) > self.NEAREST + 1:
            from scipy.spatial import cKDTree
            self.tree = cKDTree((self.boxes[:, :2] + self.boxes[:, 2:]) / 2.0)

    def near(self, point: np.ndarray, index: int) -> np.ndarray:
        """Indices (ascending) of the candidate faces for face `index` looking from `point`."""
        if self.tree is None:
            return np.delete(np.arange(len(self.boxes)), index)
        _, idx = self.tree.query(point, k=self.NEAREST + 1)
        return np.sort(idx[idx != index][:self.NEAREST])


def _box_sightings(eye: np.ndarray, u: np.ndarray, limit: float, boxes: np.ndarray):
    """`_sighting` of many axis-aligned boxes (x0, y0, x1, y1) at once: (distance, angle)
    arrays, inf where a box is not seen (behind, beyond reach, or around the eyes)."""
    n = len(boxes)
    x0, y0, x1, y1 = boxes.T
    inside = (x0 <= eye[0]) & (eye[0] <= x1) & (y0 <= eye[1]) & (eye[1] <= y1)
    t_near, t_far = np.full(n, -np.inf), np.full(n, np.inf)
    for lo, hi, e, v in ((x0, x1, eye[0], u[0]), (y0, y1, eye[1], u[1])):
        if abs(v) < 1e-12:  # parallel to these edges: crossed only from between them
            between = (lo <= e) & (e <= hi)
            t_near = np.where(between, t_near, np.inf)
            t_far = np.where(between, t_far, -np.inf)
            continue
        a, b = (lo - e) / v, (hi - e) / v
        t_near, t_far = np.maximum(t_near, np.minimum(a, b)), np.minimum(t_far, np.maximum(a, b))
    crossed = (t_near <= t_far) & (t_far >= 0) & (t_near <= limit) & ~inside
    distance = np.where(crossed, np.maximum(t_near, 0.0), np.inf)
    angle = np.where(crossed, 0.0, np.inf)
    # not crossed: the corner nearest the ray's direction, in front and within reach
    corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                        np.stack([x0, y1], 1)], 1) - eye  # (n, 4, 2)
    along = corners @ u
    dist = np.hypot(corners[..., 0], corners[..., 1])
    ok = (along > 0) & (dist <= limit)
    with np.errstate(divide="ignore", invalid="ignore"):
        angles = np.where(ok, np.arccos(np.clip(along / dist, -1.0, 1.0)), np.inf)
    k = np.argmin(angles, axis=1)
    rows = np.arange(n)
    seen = ~crossed & ~inside & ok.any(axis=1)
    distance = np.where(seen, dist[rows, k], distance)
    angle = np.where(seen, angles[rows, k], angle)
    return distance, angle


def eye_point(face: Face) -> Point:
    """Midpoint between the eyes (landmarks 0 and 1), else the box centre."""
    return face.eye_midpoint() or face.center


def _sighting(eye: np.ndarray, u: np.ndarray, limit: float, poly: np.ndarray
              ) -> Optional[Tuple[float, float, Optional[Point]]]:
    """How the ray from `eye` along `u` (up to `limit` px) sees a polygon:
    (distance, angle off the ray, middle of the ray's chord through it or None), or None when
    the polygon is behind, beyond reach, or contains the eyes (one's own region)."""
    if cv2.pointPolygonTest(poly.reshape(-1, 1, 2), (float(eye[0]), float(eye[1])), False) >= 0:
        return None
    crossings = _ray_crossings(eye, u, poly)
    crossings = crossings[crossings <= limit]
    if crossings.size:
        near = crossings[0]
        # One crossing: the ray ends inside the polygon (or grazes a corner).
        far = crossings[1] if crossings.size > 1 else (limit if math.isfinite(limit) else near)
        mid = eye + (near + far) / 2.0 * u
        return float(near), 0.0, (float(mid[0]), float(mid[1]))
    rel = poly.astype(np.float64) - eye
    along = rel @ u
    dist = np.hypot(rel[:, 0], rel[:, 1])
    ok = (along > 0) & (dist <= limit)
    if not ok.any():
        return None
    angles = np.arccos(np.clip(along[ok] / dist[ok], -1.0, 1.0))
    k = int(np.argmin(angles))
    return float(dist[ok][k]), float(angles[k]), None


def _ray_crossings(eye: np.ndarray, u: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Sorted distances along the ray at which it crosses the polygon's edges."""
    a = poly.astype(np.float64)
    edge = np.roll(a, -1, axis=0) - a
    rel = a - eye
    denom = u[0] * edge[:, 1] - u[1] * edge[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (rel[:, 0] * edge[:, 1] - rel[:, 1] * edge[:, 0]) / denom
        r = (rel[:, 0] * u[1] - rel[:, 1] * u[0]) / denom
    valid = (np.abs(denom) > 1e-12) & (s >= 0) & (r >= 0) & (r <= 1)
    return np.sort(s[valid])


def _exit_distance(start: np.ndarray, u: np.ndarray, width: int, height: int) -> float:
    """Distance along `u` from `start` (inside the frame) to the frame border."""
    size = (width, height)
    steps = [((size[k] if u[k] > 0 else 0.0) - start[k]) / u[k]
             for k in (0, 1) if abs(u[k]) > 1e-12]
    return max(0.0, min(steps))


def _centroid(poly: np.ndarray) -> Point:
    m = cv2.moments(poly.reshape(-1, 1, 2))
    if abs(m["m00"]) < 1e-9:
        cx, cy = poly.mean(axis=0)
        return (float(cx), float(cy))
    return (m["m10"] / m["m00"], m["m01"] / m["m00"])
