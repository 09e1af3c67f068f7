"""Per-person attention over time: label each frame's gaze target, then add up dwell times.

Time is counted per frame: a frame stands for the interval since the previous frame of the
stream (at most `max_frame_gap` seconds, so a stalled camera does not credit minutes to a
frozen frame). The first frame counts zero, so totals may fall short by one frame. Faces without
a track id (tracking off) cannot be followed over time and are not counted.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Sequence, Tuple

from ..core.regions import CAMERA, ELSEWHERE, OUT_OF_FRAME, UNKNOWN, Regions, person_label
from ..core.types import CLOSED, OPEN, EyeState, Face, GazeTarget


@dataclass(frozen=True)
class Observation:
    """One tracked person in one frame."""

    track_id: int
    target: str
    eyes_closed: Optional[bool]  # None: eye state unknown or not estimated


def gaze_label(index: int, faces: Sequence[Face], gaze: Optional[GazeTarget], regions: Regions,
               min_inout: float = 0.5) -> str:
    """What face `index` looks at. Another person's face box wins over a region (a student in
    front of the board is looked at, not the board); in/out 0 with score 0 is how backends
    say they had nothing to go on (e.g. no head pose), which is `unknown`, not out of frame."""
    if gaze is None or not all(math.isfinite(v) for v in (*gaze.point, gaze.inout)):
        return UNKNOWN
    if gaze.inout == 0.0 and gaze.score == 0.0:
        return UNKNOWN
    if gaze.label == CAMERA:  # eye contact with the camera (the robot) is a target of its own
        return CAMERA
    if gaze.inout < min_inout:
        return OUT_OF_FRAME
    px, py = gaze.point
    for j, other in enumerate(faces):
        x0, y0, x1, y1 = other.xyxy
        if j != index and other.track_id and x0 <= px <= x1 and y0 <= py <= y1:
            return person_label(other.track_id)
    return regions.locate(gaze.point) or ELSEWHERE


def frame_observations(faces: Sequence[Face], eyes: Optional[Sequence[EyeState]],
                       gaze: Optional[Sequence[GazeTarget]], regions: Regions,
                       min_inout: float = 0.5) -> List[Observation]:
    """Observations of the tracked faces of one frame (eyes / gaze matched by face index)."""
    eye_of = {e.face_index: e for e in eyes or []}
    gaze_of = {g.face_index: g for g in gaze or []}
    out = []
    for i, face in enumerate(faces):
        if not face.track_id:
            continue
        state = eye_of[i].state if i in eye_of else None
        closed = True if state == CLOSED else False if state == OPEN else None
        out.append(Observation(face.track_id, gaze_label(i, faces, gaze_of.get(i), regions,
                                                         min_inout), closed))
    return out


@dataclass
class Totals:
    """Seconds seen, per target, and with eyes closed / with a known eye state."""

    observed: float = 0.0
    dwell: Dict[str, float] = field(default_factory=dict)
    eyes_closed: float = 0.0
    eyes_known: float = 0.0

    def add(self, obs: Observation, dt: float) -> None:
        self.observed += dt
        self.dwell[obs.target] = self.dwell.get(obs.target, 0.0) + dt
        if obs.eyes_closed is not None:
            self.eyes_known += dt
            self.eyes_closed += dt if obs.eyes_closed else 0.0

    @property
    def closed_ratio(self) -> float:
        return self.eyes_closed / self.eyes_known if self.eyes_known > 0 else math.nan


@dataclass
class TrackAttention:
    track_id: int
    target: str  # in the newest frame; "" when the person is not in it
    window: Totals
    session: Totals
    first_seen: float
    last_seen: float


class AttentionAccumulator:
    """Feed frames in stamp order with `add_frame`; `summary()` gives per-person totals over
    the last `window` seconds and over the whole session."""

    def __init__(self, window: float = 60.0, max_frame_gap: float = 1.0):
        if window <= 0 or max_frame_gap <= 0:
            raise ValueError("window and max_frame_gap must be > 0 seconds")
        self.window, self.max_frame_gap = float(window), float(max_frame_gap)
        self.first: Optional[float] = None
        self.newest: Optional[float] = None
        self.session: Dict[int, Totals] = {}
        self.seen: Dict[int, Tuple[float, float]] = {}
        self.current: Dict[int, str] = {}
        self._recent: Deque[Tuple[float, Observation, float]] = deque()

    def add_frame(self, stamp: float, observations: Sequence[Observation]) -> float:
        """Count one frame; returns the seconds it was credited with (0 for an old stamp)."""
        if self.newest is not None and stamp < self.newest:
            return 0.0
        dt = 0.0 if self.newest is None else min(stamp - self.newest, self.max_frame_gap)
        if self.first is None:
            self.first = stamp
        self.newest = stamp
        self.current = {o.track_id: o.target for o in observations}
        for obs in observations:
            self.session.setdefault(obs.track_id, Totals()).add(obs, dt)
            first, _ = self.seen.get(obs.track_id, (stamp, stamp))
            self.seen[obs.track_id] = (first, stamp)
            self._recent.append((stamp, obs, dt))
        while self._recent and self._recent[0][0] <= stamp - self.window:
            self._recent.popleft()
        return dt

    @property
    def session_length(self) -> float:
        return 0.0 if self.first is None else self.newest - self.first

    def summary(self) -> List[TrackAttention]:
        window: Dict[int, Totals] = {}
        for _, obs, dt in self._recent:
            window.setdefault(obs.track_id, Totals()).add(obs, dt)
        return [TrackAttention(tid, self.current.get(tid, ""), window.get(tid, Totals()), totals,
                               *self.seen[tid])
                for tid, totals in sorted(self.session.items())]
