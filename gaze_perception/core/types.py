"""Plain result types shared by backends, the pipeline, nodes and evaluators (no ROS, no torch)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

Point = Tuple[float, float]

OPEN, CLOSED, UNKNOWN = "open", "closed", "unknown"
#: the gaze target label of a person looking at the camera (for a robot: "looking at me")
CAMERA_LABEL = "camera"
EYE_STATES = (OPEN, CLOSED, UNKNOWN)
#: infant gaze codes (`FrameResult.coding`; `core.gaze_coding` works with them), equal to the
#: constants of gaze_msgs/GazeCoding; CODES names them in that order
AWAY, LEFT, RIGHT, NO_FACE = 0, 1, 2, 3
CODES = ("away", "left", "right", "no_face")


@dataclass
class Face:
    """One detected face. Box is (x, y, width, height) in source-image pixels.

    Landmarks follow MTCNN order: left eye, right eye, nose, left mouth corner, right mouth corner,
    where "left" means image-left.
    """

    x: float
    y: float
    width: float
    height: float
    score: float = 1.0
    landmarks: List[Point] = field(default_factory=list)
    track_id: int = 0
    yaw: float = math.nan
    pitch: float = math.nan
    roll: float = math.nan

    @classmethod
    def from_xyxy(cls, x1: float, y1: float, x2: float, y2: float, **kw) -> "Face":
        return cls(float(x1), float(y1), float(x2 - x1), float(y2 - y1), **kw)

    @property
    def xyxy(self) -> Tuple[float, float, float, float]:
        return (self.x, self.y, self.x + self.width, self.y + self.height)

    @property
    def center(self) -> Point:
        return (self.x + self.width / 2.0, self.y + self.height / 2.0)

    def eye_midpoint(self) -> Optional[Point]:
        """Midpoint between the eyes (landmarks 0 and 1); None without two finite ones."""
        if len(self.landmarks) < 2:
            return None
        (lx, ly), (rx, ry) = self.landmarks[0], self.landmarks[1]
        if not all(math.isfinite(v) for v in (lx, ly, rx, ry)):
            return None
        return ((lx + rx) / 2.0, (ly + ry) / 2.0)

    @property
    def head_pose(self) -> Optional[Tuple[float, float, float]]:
        if any(math.isnan(v) for v in (self.yaw, self.pitch, self.roll)):
            return None
        return (self.yaw, self.pitch, self.roll)


@dataclass
class EyeState:
    """Eye state of one face; probabilities are P(closed), NaN when not estimated."""

    face_index: int
    state: str = UNKNOWN
    left: str = UNKNOWN
    right: str = UNKNOWN
    closed_prob: float = math.nan
    left_closed_prob: float = math.nan
    right_closed_prob: float = math.nan
    track_id: int = 0


@dataclass
class GazeTarget:
    """Where one face looks: a point in image pixels plus in-frame probability."""

    face_index: int
    point: Point
    inout: float = 1.0
    score: float = 0.0
    label: str = ""
    direction: Optional[Tuple[float, float, float]] = None
    heatmap: Optional["object"] = None  # numpy float32 (H, W) in 0..1, when requested
    track_id: int = 0


@dataclass
class CameraIntrinsics:
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def guess(cls, width: int, height: int) -> "CameraIntrinsics":
        """Pinhole guess used when no CameraInfo is known: focal length = image width."""
        f = float(max(width, height))
        return cls(f, f, width / 2.0, height / 2.0)

    @classmethod
    def from_k(cls, k: Sequence[float]) -> "CameraIntrinsics":
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]))


@dataclass
class FrameResult:
    """Everything the pipeline computed for one frame."""

    width: int
    height: int
    faces: List[Face] = field(default_factory=list)
    eyes: Optional[List[EyeState]] = None
    gaze: Optional[List[GazeTarget]] = None
    directions: Optional[List["GazeDirection"]] = None  # core.gaze_direction
    coding: Optional["FrameCode"] = None                # core.gaze_coding: the infant's code
    meshes: Optional[List["FaceMesh"]] = None           # core.face_mesh: dense landmarks
    eye_gaze: Optional[List["EyeGaze"]] = None          # core.face_mesh: gaze from the eyes
    frame: int = 0
    source: str = ""
    stamp: float = 0.0
    #: what stages without a field here gave (a plugin's stage), by its result name
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON Lines schema of DESIGN.md section 4."""
        eyes = {e.face_index: e for e in (self.eyes or [])}
        gaze = {g.face_index: g for g in (self.gaze or [])}
        directions = {d.face_index: d for d in (self.directions or [])}
        meshes = {m.face_index: m for m in (self.meshes or [])}
        eye_gaze = {g.face_index: g for g in (self.eye_gaze or [])}
        faces = []
        for i, f in enumerate(self.faces):
            e, g = eyes.get(i), gaze.get(i)
            faces.append({
                "box": [round(f.x, 2), round(f.y, 2), round(f.width, 2), round(f.height, 2)],
                "score": round(float(f.score), 6),
                "landmarks": [[round(px, 2), round(py, 2)] for px, py in f.landmarks],
                "track_id": int(f.track_id),
                "head_pose": None if f.head_pose is None else [round(v, 4) for v in f.head_pose],
                "eyes": None if e is None else {
                    "state": e.state, "closed_prob": _num(e.closed_prob),
                    "left": e.left, "right": e.right},
                "gaze": None if g is None else {
                    "point": [round(g.point[0], 2), round(g.point[1], 2)],
                    "inout": _num(g.inout), "score": _num(g.score), "label": g.label,
                    "direction": None if g.direction is None else [round(v, 4) for v in g.direction]},
            })
            if self.directions is not None:
                faces[-1]["direction"] = _direction_json(directions.get(i))
            if self.meshes is not None:
                faces[-1]["mesh"] = _mesh_json(meshes.get(i))
                faces[-1]["eye_gaze"] = _eye_gaze_json(eye_gaze.get(i))
        out = {"frame": self.frame, "source": self.source, "stamp": self.stamp,
               "width": self.width, "height": self.height, "faces": faces}
        if self.coding is not None:
            out["coding"] = _coding_json(self.coding)
        return out


def _direction_json(d) -> Optional[dict]:
    if d is None:
        return None
    return {"yaw": _num(d.yaw), "pitch": _num(d.pitch), "vector": _rounded(d.direction),
            "point_cm": _rounded(d.point_cm)}


def _mesh_json(m) -> Optional[dict]:
    if m is None:
        return None
    return {"presence": _num(m.presence),
            "points": [[round(float(v), 1) for v in p] for p in m.points],
            "iris": None if m.iris is None else [[round(float(v), 2) for v in eye[0]]
                                                 for eye in m.iris]}


def _eye_gaze_json(g) -> Optional[dict]:
    if g is None:
        return None
    return {"eye_yaw": _num(g.eye_yaw), "eye_pitch": _num(g.eye_pitch),
            "direction": _rounded(g.direction), "looking_at_camera": _num(g.looking_at_camera),
            "head_pose_source": g.head_pose_source}


def _rounded(values) -> Optional[list]:
    return None if values is None else [round(float(v), 4) for v in values]


def _coding_json(c) -> dict:
    return {"face_index": int(c.face_index), "code": CODES[c.code],
            "confidence": _num(c.confidence),
            "probs": {CODES[k]: round(float(p), 4) for k, p in enumerate(c.probs)}}


def _num(v: float) -> Optional[float]:
    return None if v is None or math.isnan(v) else round(float(v), 6)
