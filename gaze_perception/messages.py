"""Conversions between ROS messages and the core types (the only place that knows both). The
nodes, the bag tools and the analytics use it, so it sits below all three; it imports only core."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
from geometry_msgs.msg import Point, Vector3
from sensor_msgs.msg import Image

from gaze_msgs.msg import EyeState as EyeStateMsg
from gaze_msgs.msg import EyeStateArray, FaceArray, FaceLandmarksArray, GazeTargetArray
from gaze_msgs.msg import Face as FaceMsg
from gaze_msgs.msg import GazeDirection as GazeDirectionMsg
from gaze_msgs.msg import GazeCoding, GazeDirectionArray
from gaze_msgs.msg import FaceLandmarks as FaceLandmarksMsg
from gaze_msgs.msg import GazeTarget as GazeTargetMsg

from .core.face_mesh import EyeGaze, FaceMesh
from .core.gaze_coding import FrameCode
from .core.gaze_direction import GazeDirection
from .core.image import ImageError, check_raw, decode_raw
from .core.types import CLOSED, OPEN, UNKNOWN, EyeState, Face, FrameResult, GazeTarget

try:  # a real ROS 2 install has cv_bridge; the PyPI wheels do not
    from cv_bridge import CvBridge
    _BRIDGE = CvBridge()
except Exception:  # noqa: BLE001 - absent or broken (numpy ABI): use the built-in converter
    _BRIDGE = None

_EYE_CODES = {OPEN: EyeStateMsg.OPEN, CLOSED: EyeStateMsg.CLOSED, UNKNOWN: EyeStateMsg.UNKNOWN}
_EYE_NAMES = {v: k for k, v in _EYE_CODES.items()}


def image_to_rgb(msg: Image) -> np.ndarray:
    """sensor_msgs/Image → RGB uint8, converted once: by cv_bridge where a ROS install has it
    (mono16 keeps our scaling), else by the built-in converter. The same checks apply either
    way; they raise core.image.ImageError for unusable input."""
    if _BRIDGE is None or msg.encoding == "mono16":
        return decode_raw(msg.data, msg.width, msg.height, msg.step, msg.encoding,
                          bool(msg.is_bigendian))
    check_raw(len(msg.data), msg.width, msg.height, msg.step, msg.encoding)
    return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8"))


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG or PNG, as image_transport's compressed plugin and
    rosbag2 store them) → RGB uint8; ImageError if the bytes do not decode."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"compressed image (format '{msg.format}') does not decode")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def msg_to_rgb(msg) -> np.ndarray:
    """An Image or a CompressedImage message → RGB uint8."""
    return compressed_to_rgb(msg) if hasattr(msg, "format") else image_to_rgb(msg)


def rgb_to_image(rgb: np.ndarray, header) -> Image:
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", is_bigendian=0,
                step=rgb.shape[1] * 3)
    if header is not None:
        msg.header = header
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg


def faces_to_msg(faces: Sequence[Face], header, width: int, height: int) -> FaceArray:
    out = FaceArray(header=header, image_width=width, image_height=height)
    for f in faces:
        out.faces.append(FaceMsg(
            track_id=int(f.track_id), score=float(f.score), x=float(f.x), y=float(f.y),
            width=float(f.width), height=float(f.height),
            landmarks=[Point(x=float(px), y=float(py), z=0.0) for px, py in f.landmarks],
            yaw=float(f.yaw), pitch=float(f.pitch), roll=float(f.roll)))
    return out


def as_received(msg):
    """`msg` as a subscriber gets it: serialized and read back, so float32 fields hold float32
    values (rclpy keeps the Python floats they were given until it serializes), as the
    in-process hand-over of the composed graph must give what DDS would."""
    from rclpy.serialization import deserialize_message, serialize_message

    return deserialize_message(serialize_message(msg), type(msg))


def msg_to_faces(msg: FaceArray) -> List[Face]:
    return [Face(x=m.x, y=m.y, width=m.width, height=m.height, score=m.score,
                 landmarks=[(p.x, p.y) for p in m.landmarks], track_id=m.track_id,
                 yaw=m.yaw, pitch=m.pitch, roll=m.roll) for m in msg.faces]


def landmarks_to_msg(meshes: Sequence, gazes: Sequence, faces: Sequence[Face], header,
                     width: int, height: int) -> FaceLandmarksArray:
    """`core.face_mesh.FaceMesh` and `EyeGaze` lists (aligned) to a FaceLandmarksArray."""
    out = FaceLandmarksArray(header=header, image_width=width, image_height=height)
    for mesh, g in zip(meshes, gazes):
        m = FaceLandmarksMsg(
            track_id=int(faces[mesh.face_index].track_id), face_index=int(mesh.face_index),
            presence=float(mesh.presence),
            points=_points(np.asarray(mesh.points, np.float64)),
            eye_yaw=float(g.eye_yaw), eye_pitch=float(g.eye_pitch),
            looking_at_camera=float(g.looking_at_camera), head_pose_source=g.head_pose_source)
        if mesh.iris is not None:
            m.iris = _points(np.asarray(mesh.iris, np.float64).reshape(-1, 2))
        if g.direction is not None:
            m.gaze_direction = _vector3(g.direction)
        out.faces.append(m)
    return out


def _vector3(v: Sequence[float]) -> Vector3:
    return Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def _direction(v: Vector3) -> Optional[tuple]:
    """A direction field back: None where it is zero (unknown)."""
    d = (v.x, v.y, v.z)
    return d if any(d) else None


def _points(xyz: np.ndarray) -> List[Point]:
    """Rows (x, y[, z]) as geometry_msgs/Point: built empty and then set, twice as fast as
    keyword construction (468 points per face)."""
    out = []
    for row in xyz.tolist():
        p = Point()
        p.x, p.y = row[0], row[1]
        if len(row) > 2:
            p.z = row[2]
        out.append(p)
    return out


def msg_to_landmarks(msg: FaceLandmarksArray) -> Tuple[List[FaceMesh], List[EyeGaze]]:
    """A FaceLandmarksArray back to aligned `FaceMesh` and `EyeGaze` lists (the inverse of
    `landmarks_to_msg`: an empty iris is None, a zero gaze direction is None)."""
    meshes, gazes = [], []
    for m in msg.faces:
        points = np.array([(p.x, p.y, p.z) for p in m.points], np.float64).reshape(-1, 3)
        iris = (np.array([(p.x, p.y) for p in m.iris], np.float64).reshape(2, 5, 2)
                if len(m.iris) == 10 else None)
        meshes.append(FaceMesh(face_index=m.face_index, points=points, presence=m.presence,
                               iris=iris, track_id=m.track_id))
        gazes.append(EyeGaze(face_index=m.face_index, eye_yaw=m.eye_yaw, eye_pitch=m.eye_pitch,
                             direction=_direction(m.gaze_direction),
                             looking_at_camera=m.looking_at_camera,
                             head_pose_source=m.head_pose_source, track_id=m.track_id))
    return meshes, gazes


def landmark_directions(msg: FaceLandmarksArray, n_faces: int) -> List[Optional[tuple]]:
    """Per face of the FaceArray with the same stamp: the eyes' 3D gaze direction of the
    landmark message, or None (no mesh, or zero: unknown)."""
    out: List[Optional[tuple]] = [None] * n_faces
    for m in msg.faces:
        d = _direction(m.gaze_direction)
        if m.face_index < n_faces and d is not None:
            out[m.face_index] = d
    return out


def eyes_to_msg(eyes: Sequence[EyeState], faces: Sequence[Face], header) -> EyeStateArray:
    out = EyeStateArray(header=header)
    for e in eyes:
        out.eyes.append(EyeStateMsg(
            track_id=int(faces[e.face_index].track_id), face_index=int(e.face_index),
            left=_EYE_CODES[e.left], right=_EYE_CODES[e.right], state=_EYE_CODES[e.state],
            left_closed_prob=float(e.left_closed_prob), right_closed_prob=float(e.right_closed_prob),
            closed_prob=float(e.closed_prob)))
    return out


def msg_to_eyes(msg: EyeStateArray) -> List[EyeState]:
    name = lambda code: _EYE_NAMES.get(code, UNKNOWN)  # noqa: E731
    return [EyeState(face_index=m.face_index, state=name(m.state), left=name(m.left),
                     right=name(m.right), closed_prob=m.closed_prob,
                     left_closed_prob=m.left_closed_prob, right_closed_prob=m.right_closed_prob,
                     track_id=m.track_id) for m in msg.eyes]


def gaze_to_msg(targets: Sequence[GazeTarget], faces: Sequence[Face], header,
                with_heatmaps: bool = False) -> GazeTargetArray:
    out = GazeTargetArray(header=header)
    for t in targets:
        m = GazeTargetMsg(track_id=int(faces[t.face_index].track_id), face_index=int(t.face_index),
                          point=Point(x=float(t.point[0]), y=float(t.point[1]), z=0.0),
                          inout=float(t.inout), score=float(t.score), label=t.label)
        if t.direction is not None:
            m.direction = _vector3(t.direction)
        if with_heatmaps and t.heatmap is not None:
            hm = np.asarray(t.heatmap, dtype=np.float32)
            m.heatmap_height, m.heatmap_width = int(hm.shape[0]), int(hm.shape[1])
            m.heatmap = hm.ravel().tolist()
        out.targets.append(m)
    return out


def msg_to_gaze(msg: GazeTargetArray) -> List[GazeTarget]:
    out = []
    for m in msg.targets:
        heatmap = (np.asarray(m.heatmap, np.float32).reshape(m.heatmap_height, m.heatmap_width)
                   if m.heatmap_width else None)
        out.append(GazeTarget(face_index=m.face_index, point=(m.point.x, m.point.y),
                              inout=m.inout, score=m.score, label=m.label,
                              direction=_direction(m.direction), heatmap=heatmap,
                              track_id=m.track_id))
    return out


def directions_to_msg(directions: Sequence[GazeDirection], faces: Sequence[Face],
                      header) -> GazeDirectionArray:
    out = GazeDirectionArray(header=header)
    nan = float("nan")
    for d in directions:
        m = GazeDirectionMsg(track_id=int(faces[d.face_index].track_id),
                             face_index=int(d.face_index), yaw=float(d.yaw), pitch=float(d.pitch))
        if d.direction is not None:
            m.direction = _vector3(d.direction)
        m.point_cm = (Point(x=float(d.point_cm[0]), y=float(d.point_cm[1]), z=0.0)
                      if d.point_cm is not None else Point(x=nan, y=nan, z=0.0))
        out.directions.append(m)
    return out


def msg_to_directions(msg: GazeDirectionArray) -> List[GazeDirection]:
    out = []
    for m in msg.directions:
        point = (m.point_cm.x, m.point_cm.y)
        out.append(GazeDirection(face_index=m.face_index, yaw=m.yaw, pitch=m.pitch,
                                 direction=_direction(m.direction),
                                 point_cm=point if np.all(np.isfinite(point)) else None,
                                 track_id=m.track_id))
    return out


def coding_to_msg(code: FrameCode, header) -> GazeCoding:
    return GazeCoding(header=header, face_index=int(code.face_index),
                      track_id=int(code.track_id), code=int(code.code),
                      confidence=float(code.confidence), raw_code=int(code.raw_code),
                      probabilities=[float(p) for p in code.probs])


def msg_to_coding(msg: GazeCoding) -> FrameCode:
    return FrameCode(face_index=msg.face_index, probs=np.asarray(msg.probabilities, float),
                     raw_code=msg.raw_code, code=msg.code, confidence=msg.confidence,
                     track_id=msg.track_id)


def stage_msg(key: str, result: FrameResult, header, heatmaps: bool = False):
    """The message the node of stage `key` (the stage table's row) publishes for one frame's
    result; the bag tools write the same. `heatmaps`: gaze targets carry theirs."""
    if key == "faces":
        return faces_to_msg(result.faces, header, result.width, result.height)
    if key == "landmarks":
        return landmarks_to_msg(result.meshes or [], result.eye_gaze or [], result.faces, header,
                                result.width, result.height)
    if key == "eyes":
        return eyes_to_msg(result.eyes or [], result.faces, header)
    if key == "gaze":
        return gaze_to_msg(result.gaze or [], result.faces, header, with_heatmaps=heatmaps)
    if key == "direction":
        return directions_to_msg(result.directions or [], result.faces, header)
    if key == "coding":
        return coding_to_msg(result.coding or FrameCode.no_face(), header)
    raise KeyError(f"stage '{key}' has no message conversion in gaze_perception.messages")
