"""Our nodes among a robot's ROS 2 parts, over real DDS: a best-effort camera driver's
camera_info, image_transport's compressed topic, REP-155 (ROS4HRI) faces and TF frames, RViz
markers. One graph for the module: a raw-image face node (tracking, REP-155), a compressed-image
face node and a gaze-target node, all on the same camera."""
import math
import threading
import time

import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage

from gaze_perception.core import rep155
from gaze_perception.core.gaze_direction import angles_to_vector
from gaze_perception.core.head_pose import estimate_head_pose
from gaze_perception.core.types import CameraIntrinsics
from gaze_perception.dds import isolated_ros_env
from gaze_perception.graph import NodeSpec
from gaze_perception.processes import NodeProcess
from gaze_perception.messages import msg_to_faces

pytestmark = pytest.mark.ros

K = CameraIntrinsics(fx=900.0, fy=900.0, cx=200.0, cy=300.0)  # far from the 512x512 guess
CAM = {"image": "/cam/image_raw", "camera_info": "/cam/camera_info"}
COMMON = {"device": "cpu", "image_reliability": "reliable", "threads": 1}
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class Graph:
    def __init__(self):
        from gaze_perception.nodes.client import GraphClient

        env = isolated_ros_env()
        self.procs = [
            NodeProcess(NodeSpec("face_detector", name="face_raw", parameters={
                **COMMON, "tracking": True}, remappings={**CAM, "faces": "/raw/faces"}),
                env, echo=False),
            NodeProcess(NodeSpec("face_detector", name="face_compressed", parameters={
                **COMMON, "image_transport": "compressed", "rep155": False},
                remappings={**CAM, "faces": "/compressed/faces"}), env, echo=False),
            NodeProcess(NodeSpec("gaze_target", parameters=COMMON, remappings={
                **CAM, "faces": "/raw/faces", "gaze_targets": "/raw/gaze_targets"}),
                env, echo=False)]
        self.client = GraphClient(outputs=["/raw/faces", "/compressed/faces",
                                           "/raw/gaze_targets", "/diagnostics"],
                                  image_topic="/cam/image_raw",
                                  domain_id=int(env["ROS_DOMAIN_ID"]), name="ecosystem_client")
        node = self.client.node
        self.compressed_pub = node.create_publisher(CompressedImage, "/cam/image_raw/compressed",
                                                    RELIABLE)
        # a camera driver publishing camera_info best effort (the old reliable-only
        # subscription never matched it)
        self.info_pub = node.create_publisher(
            CameraInfo, "/cam/camera_info",
            QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.got = {}
        self._lock = threading.Lock()

    def alive(self):
        return all(p.alive() for p in self.procs)

    def output(self):
        return "\n".join(p.output for p in self.procs)

    def listen(self, msg_type, topic, qos=RELIABLE):
        """Keep every message on `topic` (a list under self.got[topic])."""
        self.got.setdefault(topic, [])

        def keep(m):
            with self._lock:
                self.got[topic].append(m)
        return self.client.node.create_subscription(msg_type, topic, keep, qos)

    def messages(self, topic):
        with self._lock:
            return list(self.got.get(topic, []))

    def send_info(self):
        self.info_pub.publish(CameraInfo(width=512, height=512, k=[
            K.fx, 0.0, K.cx, 0.0, K.fy, K.cy, 0.0, 0.0, 1.0]))

    def close(self):
        self.client.close()
        for p in self.procs:
            p.stop()


def _wait(cond, timeout, what, graph=None):
    end = time.monotonic() + timeout
    while not cond():
        if graph is not None:
            assert graph.alive(), graph.output()
        assert time.monotonic() < end, f"timed out waiting for {what}" + (
            f"\n{graph.output()}" if graph is not None else "")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def graph():
    g = Graph()
    try:
        _wait(lambda: g.client.image_pub.get_subscription_count() == 2
              and g.compressed_pub.get_subscription_count() == 1, 180, "the image inputs", g)
        yield g
    finally:
        g.close()


def _frame(graph, rgb, second, outputs=("/raw/faces",), compressed=None, timeout=3.0):
    """Publish one frame (raw, and compressed when given) until every output answers."""
    for attempt in range(20):
        stamp = (second * 100 + attempt) * 1_000_000_000
        graph.send_info()
        key, _ = graph.client.publish(rgb, stamp)
        if compressed is not None:
            msg = CompressedImage(format=compressed[0], data=compressed[1].tobytes())
            msg.header.frame_id = "camera"
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            graph.compressed_pub.publish(msg)
        got = {t: graph.client.wait(t, key, timeout) for t in outputs}
        if all(v is not None for v in got.values()):
            return key, {t: v[0] for t, v in got.items()}
    raise AssertionError(f"no answer on {outputs}\n{graph.output()}")


def test_best_effort_camera_info_is_matched_and_its_intrinsics_used(graph, astronaut):
    _wait(lambda: graph.info_pub.get_subscription_count() == 3, 10,
          "all three nodes to match the best-effort camera_info")
    graph.send_info()
    time.sleep(0.3)
    _, got = _frame(graph, astronaut, 1)
    face = msg_to_faces(got["/raw/faces"])[0]
    expected = estimate_head_pose(face.landmarks, K)
    guessed = estimate_head_pose(face.landmarks, CameraIntrinsics.guess(512, 512))
    assert np.allclose(face.head_pose, expected, atol=1e-4), (face.head_pose, expected)
    assert max(abs(a - b) for a, b in zip(expected, guessed)) > 1e-3  # K made a difference


def test_compressed_png_and_jpeg_give_the_raw_faces(graph, astronaut):
    bgr = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    for second, (fmt, ext) in enumerate([("png", ".png"), ("jpeg", ".jpg")], start=2):
        ok, data = cv2.imencode(ext, bgr)
        assert ok
        _, got = _frame(graph, astronaut, second, ("/raw/faces", "/compressed/faces"),
                        compressed=(fmt, data))
        raw, comp = (msg_to_faces(got[t]) for t in ("/raw/faces", "/compressed/faces"))
        assert len(raw) == len(comp) == 1
        tol = 1e-3 if fmt == "png" else 3.0  # PNG is lossless; JPEG moves a box by pixels
        assert np.allclose(raw[0].xyxy, comp[0].xyxy, atol=tol), (fmt, raw[0], comp[0])
        assert np.allclose(raw[0].landmarks, comp[0].landmarks, atol=tol), fmt
        assert got["/compressed/faces"].header.frame_id == "camera"


def test_rep155_tracked_ids_roi_and_tf_frames_agree_with_the_faces(graph, astronaut):
    for module in ("hri_msgs", "tf2_msgs"):
        pytest.importorskip(module, reason=f"{module} is not installed (`make test` builds it "
                            "from ../shared/ros_interfaces; a ROS install has ros-<distro>-"
                            f"{module.replace('_', '-')})")
    from hri_msgs.msg import FacialLandmarks, Gaze, IdsList, NormalizedRegionOfInterest2D
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage

    graph.listen(IdsList, "/humans/faces/tracked", 10)
    graph.listen(TFMessage, "/tf", 100)
    graph.listen(Gaze, "/humans/interactions/gazing", 10)
    time.sleep(0.5)
    face = None
    for second in range(10, 20):  # the tracker gives an id after min_hits frames
        key, got = _frame(graph, astronaut, second, ("/raw/faces", "/raw/gaze_targets"))
        faces = msg_to_faces(got["/raw/faces"])
        if faces and faces[0].track_id:
            face, targets = faces[0], got["/raw/gaze_targets"].targets
            break
    assert face is not None, "no track id"
    fid = rep155.face_id(face.track_id)
    assert fid == f"f{face.track_id:05d}"
    roi_topic = f"/humans/faces/{fid}/roi"
    graph.listen(NormalizedRegionOfInterest2D, roi_topic, 1)
    graph.listen(FacialLandmarks, f"/humans/faces/{fid}/landmarks", 1)
    graph.listen(Image, f"/humans/faces/{fid}/cropped", 1)
    _wait(lambda: graph.client.node.count_publishers(roi_topic) == 1, 10, "the roi publisher")
    time.sleep(0.3)
    key, got = _frame(graph, astronaut, 30, ("/raw/faces", "/raw/gaze_targets"))
    face = msg_to_faces(got["/raw/faces"])[0]
    target = got["/raw/gaze_targets"].targets[0]

    def stamped(msgs):
        return [m for m in msgs if (m.header.stamp.sec, m.header.stamp.nanosec) == key]

    _wait(lambda: stamped(graph.messages(roi_topic)) and stamped(
        graph.messages("/humans/faces/tracked")), 10, "REP-155 messages of the frame")
    assert stamped(graph.messages("/humans/faces/tracked"))[0].ids == [fid]
    roi = stamped(graph.messages(roi_topic))[0]
    x1, y1, x2, y2 = face.xyxy
    assert np.allclose([roi.xmin, roi.ymin, roi.xmax, roi.ymax],
                       [x1 / 512, y1 / 512, x2 / 512, y2 / 512], atol=1e-5)
    _wait(lambda: stamped(graph.messages(f"/humans/faces/{fid}/landmarks")), 10, "landmarks")
    points = stamped(graph.messages(f"/humans/faces/{fid}/landmarks"))[0].landmarks
    assert len(points) == 70 and sum(p.c > 0 for p in points) == 5
    # image-left eye = the person's right pupil, image-right mouth corner = MOUTH_OUTER_LEFT
    for ours, code in ((0, FacialLandmarks.RIGHT_PUPIL), (1, FacialLandmarks.LEFT_PUPIL),
                       (2, FacialLandmarks.NOSE), (4, FacialLandmarks.MOUTH_OUTER_LEFT)):
        assert np.allclose([points[code].x * 512, points[code].y * 512], face.landmarks[ours],
                           atol=1e-3)
    _wait(lambda: stamped(graph.messages(f"/humans/faces/{fid}/cropped")), 10, "cropped")
    crop = stamped(graph.messages(f"/humans/faces/{fid}/cropped"))[0]
    assert (crop.width, crop.height, crop.encoding) == (128, 128, "rgb8")

    def transform(child):
        for m in graph.messages("/tf"):
            for t in m.transforms:
                if t.child_frame_id == child and \
                        (t.header.stamp.sec, t.header.stamp.nanosec) == key:
                    return t
        return None

    _wait(lambda: transform(f"face_{fid}") and transform(f"gaze_{fid}"), 10, "the TF frames")
    tf_face, tf_gaze = transform(f"face_{fid}"), transform(f"gaze_{fid}")
    assert tf_face.header.frame_id == "camera"
    p = tf_face.transform.translation
    # position: the eye midpoint seen at the distance of a nominal face (camera_info's K)
    (lx, ly), (rx, ry) = face.landmarks[:2]
    assert math.isclose(p.z, K.fx * rep155.FACE_WIDTH_M / face.width, rel_tol=1e-4)
    assert np.allclose([K.fx * p.x / p.z + K.cx, K.fy * p.y / p.z + K.cy],
                       [(lx + rx) / 2, (ly + ry) / 2], atol=1e-2)
    # orientation: x out of the face along the head pose, z up (image-up for the astronaut)
    q = tf_face.transform.rotation
    r = rep155.rotation((q.x, q.y, q.z, q.w))
    assert np.allclose(r[:, 0], angles_to_vector(face.yaw, face.pitch), atol=1e-4)
    assert r[1, 2] < -0.5  # z points up in the image (camera y is down)
    # gaze frame: same origin, z along the gaze target's direction
    g = tf_gaze.transform
    assert np.allclose([g.translation.x, g.translation.y, g.translation.z], [p.x, p.y, p.z])
    rg = rep155.rotation((g.rotation.x, g.rotation.y, g.rotation.z, g.rotation.w))
    d = np.array([target.direction.x, target.direction.y, target.direction.z])
    assert np.allclose(rg[:, 2], d / np.linalg.norm(d), atol=1e-4)
    if target.label == "camera":  # looking at the robot: a Gaze with an empty receiver
        _wait(lambda: any(m.sender == fid and m.receiver == ""
                          for m in graph.messages("/humans/interactions/gazing")), 10,
              "hri_msgs/Gaze")


def test_markers_are_made_only_while_someone_subscribes(graph, astronaut):
    from visualization_msgs.msg import Marker, MarkerArray

    def markers_published():
        diag = graph.client.latest("/diagnostics")
        for m in [diag] if diag else []:
            for s in m.status:
                if s.name.endswith("/gaze_target"):
                    return int({kv.key: kv.value for kv in s.values}["markers_published"])
        return None

    _frame(graph, astronaut, 40, ("/raw/gaze_targets",))
    time.sleep(1.2)  # a diagnostics period
    _wait(lambda: markers_published() is not None, 10, "gaze_target diagnostics")
    assert markers_published() == 0  # nobody listened: nothing was made
    graph.listen(MarkerArray, "/gaze_markers")
    _wait(lambda: graph.client.node.count_publishers("/gaze_markers") == 1, 10, "markers")
    time.sleep(0.3)
    _frame(graph, astronaut, 50, ("/raw/gaze_targets",))
    _wait(lambda: graph.messages("/gaze_markers"), 10, "a MarkerArray")
    arr = graph.messages("/gaze_markers")[-1]
    kinds = sorted(m.type for m in arr.markers)
    assert kinds == sorted([Marker.LINE_STRIP, Marker.ARROW]), arr
    assert all(m.header.frame_id == "camera" for m in arr.markers)
