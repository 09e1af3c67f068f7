"""Stable `track_id`s for faces across frames (ROS-free; used by the face node and `Pipeline`).

Each track runs a constant-velocity Kalman filter on its box (centre, width, height), so a
person who walks behind a pillar or across someone else is looked for where they should be
now, not where they were last seen. Detections are assigned to predicted boxes by the Hungarian
method (scipy) on a cost mixing IoU and centre distance; the centre term lets small, fast
faces that no longer overlap their prediction still match. Ids are handed out when a track is
confirmed (`min_hits` matches in a row), so one-frame false detections burn no ids; a track
keeps its id through up to `max_age` frames without a match.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Dict, List, Optional, Sequence

import numpy as np

from .boxes import iou as box_iou
from .types import Face

_UNMATCHABLE = 1e6


@dataclass
class TrackerConfig:
    """max_age: frames a track survives unseen; min_hits: matches before it gets an id;
    min_iou / max_distance: a detection may match a prediction that it overlaps by at least
    `min_iou` or whose centre lies within `max_distance` box sizes (sqrt of the area)."""

    max_age: int = 30
    min_hits: int = 2
    min_iou: float = 0.1
    max_distance: float = 1.0

    def __post_init__(self):
        self.max_age, self.min_hits = int(self.max_age), int(self.min_hits)
        self.min_iou, self.max_distance = float(self.min_iou), float(self.max_distance)
        if self.max_age < 0 or self.min_hits < 1:
            raise ValueError("tracking: max_age must be >= 0 and min_hits >= 1")
        if not 0.0 <= self.min_iou <= 1.0 or self.max_distance <= 0:
            raise ValueError("tracking: min_iou must lie in [0, 1] and max_distance be > 0")

    @classmethod
    def from_value(cls, value) -> Optional["TrackerConfig"]:
        """A YAML value: false/None = off, true = defaults, a mapping = these settings."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        known = {f.name for f in fields(cls)}
        if not isinstance(value, dict) or set(value) - known:
            raise ValueError(f"tracking must be true, false or a mapping with keys {sorted(known)}")
        return cls(**value)

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


class _KalmanBox:
    """Constant-velocity Kalman filter over (cx, cy, w, h); noise scales with the box height
    so the same settings work for near and far faces (as in DeepSORT)."""

    def __init__(self, box: np.ndarray):
        self.x = np.concatenate([box, np.zeros(4)])
        h = max(box[3], 1.0)
        self.P = np.diag(np.square([h / 10, h / 10, h / 10, h / 10, h, h, h / 2, h / 2]))
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)
        self.H = np.eye(4, 8)

    def predict(self) -> np.ndarray:
        h = max(self.x[3], 1.0)
        q = np.square([h / 20] * 4 + [h / 160] * 4)
        self.x = self.F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = self.F @ self.P @ self.F.T + np.diag(q)
        return self.x[:4]

    def update(self, box: np.ndarray) -> None:
        r = np.square([max(self.x[3], 1.0) / 20] * 4)
        s = self.H @ self.P @ self.H.T + np.diag(r)
        gain = self.P @ self.H.T @ np.linalg.inv(s)
        self.x = self.x + gain @ (box - self.H @ self.x)
        self.P = (np.eye(8) - gain @ self.H) @ self.P


class _Track:
    def __init__(self, box: np.ndarray):
        self.kf = _KalmanBox(box)
        self.hits, self.misses, self.track_id = 1, 0, 0


class Tracker:
    """Call `update(faces)` once per frame, in order; it sets `Face.track_id` in place
    (0 while a new track is not yet confirmed) and returns the faces."""

    def __init__(self, config: Optional[TrackerConfig] = None):
        self.config = config or TrackerConfig()
        self.tracks: List[_Track] = []
        self.frames = 0
        self._next_id = 1

    def update(self, faces: Sequence[Face]) -> Sequence[Face]:
        self.frames += 1
        boxes = [_cxcywh(f) for f in faces]
        predicted = [t.kf.predict() for t in self.tracks]
        owner: Dict[int, _Track] = {}
        for r, c in self._assign(predicted, boxes):
            track = owner[c] = self.tracks[r]
            track.kf.update(boxes[c])
            track.hits, track.misses = track.hits + 1, 0
        seen = {id(t) for t in owner.values()}
        for track in self.tracks:
            track.misses += id(track) not in seen
        # an unconfirmed track dies at its first miss, a confirmed one after max_age misses
        self.tracks = [t for t in self.tracks
                       if t.misses == 0 or (t.track_id and t.misses <= self.config.max_age)]
        for c, box in enumerate(boxes):
            if c not in owner:
                owner[c] = _Track(box)
                self.tracks.append(owner[c])
        for c, face in enumerate(faces):
            track = owner[c]
            if not track.track_id and (track.hits >= self.config.min_hits
                                       or self.frames <= self.config.min_hits):
                track.track_id, self._next_id = self._next_id, self._next_id + 1
            face.track_id = track.track_id
        return faces

    def _assign(self, predicted: List[np.ndarray], boxes: List[np.ndarray]):
        if not predicted or not boxes:
            return []
        from scipy.optimize import linear_sum_assignment  # here: 0.4 s of every start-up

        cost = np.array([[self._cost(t, p, b) for b in boxes]
                         for t, p in zip(self.tracks, predicted)])
        rows, cols = linear_sum_assignment(cost)
        return [(r, c) for r, c in zip(rows, cols) if cost[r, c] < _UNMATCHABLE]

    def _cost(self, track: _Track, pred: np.ndarray, box: np.ndarray) -> float:
        """1 - IoU plus the centre distance in units of the gate; the gate widens while a
        track is unseen because its predicted position grows less certain."""
        iou = box_iou(_corners(pred), _corners(box))
        size = math.sqrt(max(pred[2] * pred[3], 1.0))
        reach = self.config.max_distance * size * (1.0 + 0.1 * track.misses)
        dist = math.hypot(pred[0] - box[0], pred[1] - box[1])
        if iou < self.config.min_iou and dist > reach:
            return _UNMATCHABLE
        return (1.0 - iou) + dist / reach


def _cxcywh(face: Face) -> np.ndarray:
    cx, cy = face.center
    return np.array([cx, cy, face.width, face.height], dtype=np.float64)


def _corners(c: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    return np.array([c[0] - c[2] / 2, c[1] - c[3] / 2, c[0] + c[2] / 2, c[1] + c[3] / 2])
