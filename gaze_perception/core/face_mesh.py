"""Dense face landmarks (MediaPipe Face Mesh topology) and what follows from them, without torch:
the crop geometry the mesh and iris models need, head pose from the rigid part of the mesh,
the eyes' gaze direction from the iris, and the probability of looking at the camera.

Conventions are the project's (`core/head_pose.py`): camera frame x right, y down, z forward;
yaw > 0 turns towards image-right, pitch > 0 looks down, roll > 0 is clockwise in the image;
a gaze direction (0, 0, -1) looks into the camera.

Mesh points are (x, y, z) in source-image pixels; z is MediaPipe's relative depth, in the same
pixel scale as x, larger = farther from the camera. The points follow MediaPipe's 468-point
canonical topology (index 33 is the outer corner of the image-left eye of a frontal face).

Head pose (`mesh_head_pose`): a scaled orthogonal Procrustes fit of the rigid points (forehead,
eyes, nose, cheeks: not the mouth or jaw, so a smile does not tilt the pitch) to a 3D reference
face in mesh topology, turned into the camera frame along the ray through the face (the fit is
weak-perspective). The reference, the rigid set and the three constants of the large-yaw rule
were fitted on half of the AFLW2000-3D development set (`tools/build_face_reference.py`, the
images with an even number); figures on the other half are in the README.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .gaze_direction import angle_between, angles_to_vector
from .head_pose import fill_head_pose
from .types import CameraIntrinsics, Face

NUM_POINTS = 468
#: eye corners (outer, inner) of the image-left and image-right eye of a frontal face
LEFT_EYE_CORNERS = (33, 133)
RIGHT_EYE_CORNERS = (263, 362)
#: upper and lower lid centres
LEFT_EYE_LIDS = (159, 145)
RIGHT_EYE_LIDS = (386, 374)
#: MediaPipe's crop sizes and ROI scales (face_landmark / iris_landmark graphs)
MESH_SIZE, IRIS_SIZE = 192, 64
MESH_ROI_SCALE, IRIS_ROI_SCALE = 1.5, 2.3

REFERENCE_FILE = Path(__file__).with_name("data") / "face_mesh_reference.npz"

#: eyeball model (millimetres, head frame): the eyeball centre lies EYEBALL_BEHIND behind the
#: middle of the two eye corners, the iris centre on a sphere of radius IRIS_RADIUS around it
#: (anthropometric means: eyeball radius about 12 mm, the cornea in front of the canthi);
#: MM_EYE_SPACING is the distance between the two eyes' corner midpoints
EYEBALL_BEHIND_MM, IRIS_RADIUS_MM, MM_EYE_SPACING = 6.5, 10.5, 62.0
#: looking at the camera: P = 1 / (1 + exp((angle - CONE) / SOFTNESS)), angle between the
#: gaze and the direction from the eyes to the camera
CAMERA_CONE_DEG, CAMERA_SOFTNESS_DEG = 12.0, 3.0
#: eye-in-head angles are clipped to the eyes' usual range (degrees): beyond it the iris
#: estimate is wrong, not the eye; under EYE_MIN_PRESENCE the mesh is too poor for the irises
#: and the gaze is the head's
MAX_EYE_YAW_DEG, MAX_EYE_PITCH_DEG, EYE_MIN_PRESENCE = 40.0, 30.0, 0.5


@dataclass
class FaceMesh:
    """Dense landmarks of one face: 468 mesh points (x, y, z) and, per eye, the iris centre and
    four iris contour points (x, y), image-left eye first; `presence` is the mesh model's
    probability that the crop holds a face."""

    face_index: int
    points: np.ndarray                       # (468, 3) float64, source-image pixels
    presence: float = 1.0
    iris: Optional[np.ndarray] = None        # (2, 5, 2): [eye][centre, 4 contour][x, y]
    track_id: int = 0

    def eye_corners(self, eye: int) -> Tuple[np.ndarray, np.ndarray]:
        a, b = LEFT_EYE_CORNERS if eye == 0 else RIGHT_EYE_CORNERS
        return self.points[a, :2], self.points[b, :2]


@dataclass
class EyeGaze:
    """Gaze from the eyes of one face: eye-in-head angles, the 3D direction in the camera frame
    (head pose composed with the eyes), and P(looking at the camera)."""

    face_index: int
    eye_yaw: float = math.nan
    eye_pitch: float = math.nan
    direction: Optional[Tuple[float, float, float]] = None
    looking_at_camera: float = math.nan
    head_pose_source: str = ""              # "mesh" or "five_point"
    track_id: int = 0


@dataclass
class Reference:
    """What `tools/build_face_reference.py` fits: the 3D face, its rigid points, the large-yaw
    rule (yaw beyond `yaw_knee` degrees is scaled by 1 + `yaw_gain`: the mesh flattens
    profiles), and the presence under which the five-point pose is used instead."""

    points: np.ndarray                       # (468, 3), unit RMS radius, head frame
    rigid: np.ndarray                        # indices
    yaw_knee: float
    yaw_gain: float
    min_presence: float
    fit_files: Tuple[str, ...] = field(default_factory=tuple)


@lru_cache(maxsize=1)
def reference() -> Reference:
    with np.load(REFERENCE_FILE, allow_pickle=False) as z:
        return Reference(points=z["points"].astype(np.float64), rigid=z["rigid"].astype(int),
                         yaw_knee=float(z["yaw_knee"]), yaw_gain=float(z["yaw_gain"]),
                         min_presence=float(z["min_presence"]),
                         fit_files=tuple(str(f) for f in z["fit_files"]))


# --- crops -------------------------------------------------------------------------------------

def roi_transform(cx: float, cy: float, side: float, angle: float, size: int) -> np.ndarray:
    """2x3 map from crop pixels (size x size) to image pixels: a square of `side` pixels centred
    on (cx, cy), its x axis turned by `angle` radians (the eye line's direction)."""
    c, s = math.cos(angle) * side / size, math.sin(angle) * side / size
    half = size / 2.0
    return np.array([[c, -s, cx - (c - s) * half], [s, c, cy - (s + c) * half]])


def roi_from_face(face: Face) -> np.ndarray:
    """The mesh crop from a detection: 1.5 x the box's longer side around its centre, turned
    along the eye landmarks (as MediaPipe does from its own detector)."""
    cx, cy = face.center
    angle = 0.0
    if len(face.landmarks) >= 2:
        (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
        angle = math.atan2(ry - ly, rx - lx)
    return roi_transform(cx, cy, MESH_ROI_SCALE * max(face.width, face.height), angle, MESH_SIZE)


def roi_from_mesh(points: np.ndarray) -> np.ndarray:
    """The mesh crop from a previous mesh: its bounding box in the eye-line frame, x 1.5."""
    a, b = points[LEFT_EYE_CORNERS[0], :2], points[RIGHT_EYE_CORNERS[0], :2]
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])          # image -> eye-line frame
    q = points[:, :2] @ rot.T
    lo, hi = q.min(0), q.max(0)
    centre = ((lo + hi) / 2.0) @ rot           # back to the image
    return roi_transform(centre[0], centre[1], MESH_ROI_SCALE * float(max(hi - lo)), angle,
                         MESH_SIZE)


def iris_roi(corner_a: np.ndarray, corner_b: np.ndarray) -> np.ndarray:
    """The iris crop of one eye: 2.3 x the corner distance around their middle, along them."""
    (ax, ay), (bx, by) = corner_a, corner_b
    left, right = (corner_a, corner_b) if ax <= bx else (corner_b, corner_a)
    angle = math.atan2(right[1] - left[1], right[0] - left[0])
    side = IRIS_ROI_SCALE * math.hypot(bx - ax, by - ay)
    return roi_transform((ax + bx) / 2.0, (ay + by) / 2.0, side, angle, IRIS_SIZE)


def crop_to_image(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Crop-pixel points (..., 2 or 3) to image pixels with the ROI map `m`; a third
    coordinate (depth) scales with the crop."""
    pts = np.asarray(points, np.float64)
    out = pts.copy()
    out[..., :2] = pts[..., :2] @ m[:, :2].T + m[:, 2]
    if pts.shape[-1] > 2:
        out[..., 2] = pts[..., 2] * math.hypot(m[0, 0], m[1, 0])
    return out


# --- head pose ---------------------------------------------------------------------------------

def procrustes(model: np.ndarray, observed: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray]:
    """(s, R, t) with observed ~ s R model + t, least squares, R a proper rotation."""
    mm, mo = model.mean(0), observed.mean(0)
    a, b = model - mm, observed - mo
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, float(np.sign(np.linalg.det(u @ vt)) or 1.0)])
    rot = u @ d @ vt
    s = float((sv * np.diag(d)).sum() / (a ** 2).sum())
    return s, rot, mo - s * rot @ mm


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-to-camera rotation of (yaw, pitch, roll) radians, the inverse of `angles_from_rotation`
    (R = Ry(-yaw) Rx(pitch) Rz(roll), as `core.head_pose` decomposes)."""
    a, b, c = -yaw, pitch, roll
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def angles_from_rotation(rot: np.ndarray) -> Tuple[float, float, float]:
    pitch = math.asin(max(-1.0, min(1.0, -rot[1, 2])))
    return (-math.atan2(rot[0, 2], rot[2, 2]), pitch, math.atan2(rot[1, 0], rot[1, 1]))


def ray_rotation(x: float, y: float, k: CameraIntrinsics) -> np.ndarray:
    """Rotation taking the optical axis to the viewing ray through pixel (x, y)."""
    r = np.array([(x - k.cx) / k.fx, (y - k.cy) / k.fy, 1.0])
    r /= np.linalg.norm(r)
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(z, r), float(z @ r)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def fit_mesh(points: np.ndarray, ref: Optional[Reference] = None
             ) -> Tuple[float, np.ndarray, np.ndarray]:
    """Weak-perspective fit (s, R, t) of the reference's rigid points to a mesh, in the frame of
    a camera looking along the ray through the face: image ~ s R ref + t."""
    ref = ref or reference()
    return procrustes(ref.points[ref.rigid], np.asarray(points, np.float64)[ref.rigid])


def mesh_rotation(points: np.ndarray, k: CameraIntrinsics,
                  ref: Optional[Reference] = None) -> np.ndarray:
    """Head-to-camera rotation from a mesh: the fit, the large-yaw rule, the viewing ray."""
    ref = ref or reference()
    _, rot, _ = fit_mesh(points, ref)
    yaw, pitch, roll = angles_from_rotation(rot)
    knee = math.radians(ref.yaw_knee)
    if abs(yaw) > knee:
        yaw = math.copysign(abs(yaw) + ref.yaw_gain * (abs(yaw) - knee), yaw)
    cx, cy = np.asarray(points)[ref.rigid, :2].mean(0)
    return ray_rotation(cx, cy, k) @ rotation_from_angles(yaw, pitch, roll)


def mesh_trusted(mesh: FaceMesh) -> bool:
    """Whether the mesh is good enough for head pose: finite points and presence at least the
    reference's `min_presence` (profiles and occlusions fall below)."""
    return mesh.presence >= reference().min_presence and bool(np.all(np.isfinite(mesh.points)))


def mesh_head_pose(mesh: FaceMesh, k: CameraIntrinsics) -> Optional[Tuple[float, float, float]]:
    """(yaw, pitch, roll) radians from the mesh, or None where it is not `mesh_trusted`, so the
    caller falls back to the five-point pose."""
    if not mesh_trusted(mesh):
        return None
    return angles_from_rotation(mesh_rotation(mesh.points, k, reference()))


# --- gaze from the eyes -------------------------------------------------------------------------

def _eyeball_centres(ref: Reference) -> Tuple[np.ndarray, float]:
    """Eyeball centres (2, 3) in reference units and the iris radius in those units."""
    mids = np.array([ref.points[list(LEFT_EYE_CORNERS)].mean(0),
                     ref.points[list(RIGHT_EYE_CORNERS)].mean(0)])
    mm = np.linalg.norm(mids[1] - mids[0]) / MM_EYE_SPACING   # reference units per mm
    return mids + np.array([0.0, 0.0, EYEBALL_BEHIND_MM * mm]), IRIS_RADIUS_MM * mm


def eye_gaze(mesh: FaceMesh, k: CameraIntrinsics,
             head_rotation: Optional[np.ndarray] = None) -> EyeGaze:
    """Gaze of one face from its iris centres: each eye's direction is the ray from the eyeball
    centre (placed by the mesh fit) through the iris centre on a sphere around it, seen along
    the face's viewing ray; the two eyes are averaged, weighted by how much of each is seen.
    `head_rotation` (head to camera) gives the eye-in-head angles; by default the mesh's own."""
    out = EyeGaze(face_index=mesh.face_index, track_id=mesh.track_id)
    if mesh.iris is None or not np.all(np.isfinite(mesh.iris)) or \
            not np.all(np.isfinite(mesh.points)):
        return out
    ref = reference()
    s, rot, t = fit_mesh(mesh.points, ref)
    centres, radius = _eyeball_centres(ref)
    dirs = []
    for eye in (0, 1):
        c = s * rot @ centres[eye] + t
        g = (mesh.iris[eye, 0] - c[:2]) / (s * radius)
        n = float(np.linalg.norm(g))
        if n > 1.0:
            g = g / n
        dirs.append(np.array([g[0], g[1], -math.sqrt(max(0.0, 1.0 - float(g @ g)))]))
    eyes_mid = mesh.points[list(LEFT_EYE_CORNERS + RIGHT_EYE_CORNERS), :2].mean(0)
    ray = ray_rotation(eyes_mid[0], eyes_mid[1], k)
    # each eye weighted by its visible area (squared corner distance): a turned head shows
    # the far eye foreshortened, and its iris estimate is the worse one
    w = [float(np.sum(np.subtract(*mesh.eye_corners(e)) ** 2)) for e in (0, 1)]
    d = ray @ (w[0] * dirs[0] + w[1] * dirs[1])
    d /= np.linalg.norm(d)
    head = head_rotation if head_rotation is not None else mesh_rotation(mesh.points, k, ref)
    in_head = head.T @ d     # head frame: looking straight ahead is (0, 0, -1)
    lim_yaw, lim_pitch = math.radians(MAX_EYE_YAW_DEG), math.radians(MAX_EYE_PITCH_DEG)
    out.eye_yaw = max(-lim_yaw, min(lim_yaw, math.atan2(in_head[0], -in_head[2])))
    out.eye_pitch = max(-lim_pitch, min(lim_pitch, math.asin(max(-1.0, min(1.0, in_head[1])))))
    cy, sy = math.cos(out.eye_yaw), math.sin(out.eye_yaw)
    cp, sp = math.cos(out.eye_pitch), math.sin(out.eye_pitch)
    d = head @ np.array([sy * cp, sp, -cy * cp])
    out.direction = tuple(float(v) for v in d)
    out.looking_at_camera = looking_at_camera(d, eyes_mid, k)
    return out


def camera_angle(direction: Sequence[float], eye_xy: Sequence[float],
                 k: CameraIntrinsics) -> float:
    """Angle (radians) between a gaze direction and the line from the eyes to the camera."""
    return angle_between(direction, -np.array([(eye_xy[0] - k.cx) / k.fx,
                                               (eye_xy[1] - k.cy) / k.fy, 1.0]))


def looking_at_camera_probability(angle_deg: float, cone_deg: float = CAMERA_CONE_DEG,
                                  softness_deg: float = CAMERA_SOFTNESS_DEG) -> float:
    """P(looking at the camera) of the angle between gaze and camera: 0.5 at the cone's edge,
    falling monotonically with the angle."""
    z = (angle_deg - cone_deg) / softness_deg
    return float(1.0 / (1.0 + math.exp(min(60.0, z))))


def looking_at_camera(direction: Sequence[float], eye_xy: Sequence[float],
                      k: CameraIntrinsics) -> float:
    return looking_at_camera_probability(math.degrees(camera_angle(direction, eye_xy, k)))


def mesh_eye_centres(mesh: FaceMesh) -> List[Tuple[float, float]]:
    """Image-left and image-right eye centres: the iris centres, else the corners' middles."""
    if mesh.iris is not None and np.all(np.isfinite(mesh.iris)):
        return [tuple(map(float, mesh.iris[e, 0])) for e in (0, 1)]
    return [tuple(map(float, np.mean(mesh.eye_corners(e), axis=0))) for e in (0, 1)]


def analyse_faces(faces: Sequence[Face], meshes: Sequence[FaceMesh], k: CameraIntrinsics,
                  head_pose: bool = True) -> List[EyeGaze]:
    """The landmark stage's geometry for one frame: each face's head pose from its mesh (the
    five points where the mesh is not trusted; left alone when `head_pose` is off) and its
    gaze from the eyes. Where the mesh is not trusted the gaze direction is the head's (no eye
    angles) and P(camera) follows it."""
    out = []
    for mesh in meshes:
        face = faces[mesh.face_index]
        trusted = mesh_trusted(mesh)
        if head_pose:
            fill_head_pose(face, k, mesh_head_pose(mesh, k))
        source = "mesh" if head_pose and trusted else ("five_point" if head_pose else "")
        pose = face.head_pose
        head = None if pose is None else rotation_from_angles(*pose)
        if trusted and mesh.presence >= EYE_MIN_PRESENCE:
            g = eye_gaze(mesh, k, head)
        else:
            g = EyeGaze(face_index=mesh.face_index, track_id=mesh.track_id)
            if pose is not None:
                d = angles_to_vector(pose[0], pose[1])
                g.direction = tuple(float(v) for v in d)
                g.looking_at_camera = looking_at_camera(d, np.mean(mesh_eye_centres(mesh), 0), k)
        g.head_pose_source = source
        out.append(g)
    return out
