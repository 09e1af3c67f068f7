"""REP-155 (ROS4HRI) output and RViz markers, hooked into the face and gaze-target nodes.

Face node (`FaceHri`): `/humans/faces/tracked` (hri_msgs/IdsList) with the ids of the tracked
faces (`core.rep155.face_id`: track 7 is `f00007`), per face `/humans/faces/<id>/roi`
(NormalizedRegionOfInterest2D), `/humans/faces/<id>/landmarks` (FacialLandmarks, our points
mapped onto its codes), `/humans/faces/<id>/cropped` (sensor_msgs/Image, 128x128, made only while
someone subscribes), and the TF frame `face_<id>` on `/tf`.
Gaze-target node (`GazeHri`): the TF frame `gaze_<id>` (z along the gaze direction) and
hri_msgs/Gaze on `/humans/interactions/gazing` (sender looks at receiver; an empty receiver is
the robot, i.e. the camera), and `GazeMarkers`: visualization_msgs/MarkerArray on
`gaze_markers` (face boxes and a gaze arrow per person), computed only while someone subscribes.

On when `hri_msgs` and `tf2_msgs` are importable (a ROS install's `ros-<distro>-hri-msgs`, or
built from ../shared/ros_interfaces by `make test`) and the node's `rep155` parameter is true.
Faces without a track id (tracking off) have no REP-155 id and are left out.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence

import cv2
import numpy as np
from geometry_msgs.msg import Point, Quaternion, TransformStamped, Vector3
from rclpy.event_handler import PublisherEventCallbacks
from sensor_msgs.msg import Image

from ..core import rep155
from ..core.types import CAMERA_LABEL, CameraIntrinsics, Face, GazeTarget
from ..messages import rgb_to_image

try:
    from hri_msgs.msg import FacialLandmarks, Gaze, IdsList, NormalizedPointOfInterest2D
    from hri_msgs.msg import NormalizedRegionOfInterest2D
    from tf2_msgs.msg import TFMessage
    AVAILABLE, WHY_NOT = True, ""
except ImportError as exc:  # optional: a plain install has neither
    AVAILABLE, WHY_NOT = False, f"{exc.name or exc} is not installed"

FACES_NS = "/humans/faces"
GAZING_TOPIC = "/humans/interactions/gazing"
PER_FACE_QOS = 1  # as hri_face_detect
REP155_PARAM = (True, "publish REP-155 (ROS4HRI) topics and the face_<id> / gaze_<id> TF "
                      "frames when hri_msgs is installed (ids come from tracking)", None)


def wanted(node) -> bool:
    """REP-155 output on? Logs once why not when asked for but hri_msgs is missing."""
    if not node.param("rep155"):
        return False
    if not AVAILABLE:
        node.get_logger().info(f"REP-155 output off: {WHY_NOT} (install ros-<distro>-hri-msgs "
                               "or run `make test`)", once=True)
    return AVAILABLE


def _transform(header, child: str, pos: np.ndarray, rot: np.ndarray) -> TransformStamped:
    qx, qy, qz, qw = rep155.quaternion(rot)
    t = TransformStamped(header=header, child_frame_id=child)
    t.transform.translation = Vector3(x=float(pos[0]), y=float(pos[1]), z=float(pos[2]))
    t.transform.rotation = Quaternion(x=qx, y=qy, z=qz, w=qw)
    return t


class FaceHri:
    """The face node's REP-155 publishers; per-face topics appear with a track and go with it.

    `publish` runs on the node's work thread, and a publisher's QoS event handlers are
    waitables of the executor: destroying such a publisher off the executor's thread races the
    executor's wait set (rclpy raised InvalidHandle "destruction was requested" in a 5-minute
    soak; ros2/rclpy#1284). So the per-face publishers, which come and go with tracks, are made
    without event handlers: nothing of theirs is in the wait set."""

    def __init__(self, node):
        self.node = node
        self.tracked_pub = node.create_publisher(IdsList, f"{FACES_NS}/tracked", 1)
        self.tf_pub = node.create_publisher(TFMessage, "/tf", 100)
        self.per_face: Dict[str, tuple] = {}  # id -> (roi, landmarks, cropped) publishers

    def _publishers(self, fid: str) -> tuple:
        if fid not in self.per_face:
            n, base = self.node, f"{FACES_NS}/{fid}"
            quiet = dict(event_callbacks=PublisherEventCallbacks(use_default_callbacks=False))
            self.per_face[fid] = (
                n.create_publisher(NormalizedRegionOfInterest2D, f"{base}/roi", PER_FACE_QOS,
                                   **quiet),
                n.create_publisher(FacialLandmarks, f"{base}/landmarks", PER_FACE_QOS, **quiet),
                n.create_publisher(Image, f"{base}/cropped", PER_FACE_QOS, **quiet))
        return self.per_face[fid]

    def publish(self, faces: Sequence[Face], rgb: np.ndarray, header,
                k: CameraIntrinsics) -> None:
        h, w = rgb.shape[:2]
        tracked = [f for f in faces if f.track_id]
        ids = [rep155.face_id(f.track_id) for f in tracked]
        self.tracked_pub.publish(IdsList(header=header, ids=ids))
        transforms = []
        for fid, face in zip(ids, tracked):
            roi_pub, lm_pub, crop_pub = self._publishers(fid)
            x1, y1, x2, y2 = rep155.normalized_roi(face, w, h)
            roi_pub.publish(NormalizedRegionOfInterest2D(header=header, xmin=x1, ymin=y1,
                                                         xmax=x2, ymax=y2, c=float(face.score)))
            points = rep155.facial_landmarks(face.landmarks, w, h, face.score)
            lm_pub.publish(FacialLandmarks(header=header, height=h, width=w, landmarks=[
                NormalizedPointOfInterest2D(x=x, y=y, c=c) for x, y, c in points]))
            if crop_pub.get_subscription_count() > 0:
                crop_pub.publish(rgb_to_image(_crop(rgb, face), header))
            frame = rep155.face_frame(face, k)
            if frame is not None:
                transforms.append(_transform(header, f"face_{fid}", *frame))
        if transforms:
            self.tf_pub.publish(TFMessage(transforms=transforms))
        for gone in set(self.per_face) - set(ids):  # the track ended: its topics go
            for pub in self.per_face.pop(gone):
                self.node.destroy_publisher(pub)

    def close(self, header=None) -> None:
        """Say no face is tracked any more, then remove every publisher."""
        if header is not None:
            self.tracked_pub.publish(IdsList(header=header, ids=[]))
        for pubs in self.per_face.values():
            for pub in pubs:
                self.node.destroy_publisher(pub)
        self.per_face.clear()
        for pub in (self.tracked_pub, self.tf_pub):
            self.node.destroy_publisher(pub)


def _crop(rgb: np.ndarray, face: Face) -> np.ndarray:
    h, w = rgb.shape[:2]
    x1, y1 = max(int(face.x), 0), max(int(face.y), 0)
    x2, y2 = min(int(math.ceil(face.x + face.width)), w), min(int(math.ceil(face.y + face.height)), h)
    if x2 <= x1 or y2 <= y1:
        return np.zeros((rep155.CROP_SIZE, rep155.CROP_SIZE, 3), np.uint8)
    return cv2.resize(rgb[y1:y2, x1:x2], (rep155.CROP_SIZE, rep155.CROP_SIZE),
                      interpolation=cv2.INTER_AREA)


class GazeHri:
    """The gaze-target node's REP-155 output: `gaze_<id>` frames and who-looks-at-whom."""

    def __init__(self, node):
        self.node = node
        self.tf_pub = node.create_publisher(TFMessage, "/tf", 100)
        self.gazing_pub = node.create_publisher(Gaze, GAZING_TOPIC, 10)

    def publish(self, faces: Sequence[Face], targets: Sequence[GazeTarget], header,
                k: CameraIntrinsics) -> None:
        transforms = []
        for t in targets:
            face = faces[t.face_index]
            if not face.track_id:
                continue
            fid = rep155.face_id(face.track_id)
            frame = rep155.gaze_frame(face, k, t.direction)
            if frame is not None:
                transforms.append(_transform(header, f"gaze_{fid}", *frame))
            other = rep155.gazed_track(t.label)
            if other:
                self.gazing_pub.publish(Gaze(header=header, sender=fid,
                                             receiver=rep155.face_id(other)))
            elif t.label == CAMERA_LABEL:  # looking at the camera: at the robot
                self.gazing_pub.publish(Gaze(header=header, sender=fid, receiver=""))
        if transforms:
            self.tf_pub.publish(TFMessage(transforms=transforms))

    def close(self) -> None:
        for pub in (self.tf_pub, self.gazing_pub):
            self.node.destroy_publisher(pub)


class GazeMarkers:
    """RViz MarkerArray on `gaze_markers`: per person the face box (a line strip at the face's
    distance) and an arrow from the face along the gaze, in the image's frame. Made only while
    someone subscribes (as yolo_ros does for its debug topics); markers last 0.5 s unless
    refreshed, so a person who left disappears."""

    ARROW_M = 0.5  # arrow length, metres

    def __init__(self, node, qos):
        from visualization_msgs.msg import MarkerArray

        self.pub = node.create_output(MarkerArray, "gaze_markers", qos)
        self.published = 0  # in /diagnostics: stays 0 while nobody subscribes

    def wanted(self) -> bool:
        return self.pub.get_subscription_count() > 0

    def publish(self, faces: Sequence[Face], targets: Sequence[GazeTarget], header,
                k: CameraIntrinsics) -> None:
        from builtin_interfaces.msg import Duration
        from visualization_msgs.msg import Marker, MarkerArray

        out = MarkerArray()
        life = Duration(sec=0, nanosec=500_000_000)
        for t in targets:
            face = faces[t.face_index]
            pos = rep155.face_position(face, k)
            if pos is None:
                continue
            z = pos[2]
            corners = [(face.x, face.y), (face.x + face.width, face.y),
                       (face.x + face.width, face.y + face.height), (face.x, face.y + face.height),
                       (face.x, face.y)]
            box = Marker(header=header, ns="faces", id=t.face_index, type=Marker.LINE_STRIP,
                         action=Marker.ADD, lifetime=life)
            box.scale.x = 0.01
            box.color.g = box.color.a = 1.0
            box.pose.orientation.w = 1.0
            box.points = [Point(x=(u - k.cx) * z / k.fx, y=(v - k.cy) * z / k.fy, z=z)
                          for u, v in corners]
            out.markers.append(box)
            frame = rep155.gaze_frame(face, k, t.direction)
            if frame is None:
                continue
            start, rot = frame
            end = start + self.ARROW_M * rot[:, 2]
            arrow = Marker(header=header, ns="gaze", id=t.face_index, type=Marker.ARROW,
                           action=Marker.ADD, lifetime=life)
            arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.02, 0.04, 0.06
            arrow.color.r = arrow.color.a = 1.0
            arrow.pose.orientation.w = 1.0
            arrow.points = [Point(x=float(a), y=float(b), z=float(c)) for a, b, c in (start, end)]
            out.markers.append(arrow)
        self.pub.publish(out)
        self.published += 1
