"""The landmark stage inside the face node (`landmarks:=mediapipe`) as a separate process, fed
over real DDS: `faces/landmarks` with the image's header, the mesh, the irises, the eyes' gaze
and P(looking at the camera); `faces` with the head pose from the mesh."""
import math
import time

import numpy as np
import pytest

from gaze_perception.core.types import FrameResult
from gaze_perception.messages import msg_to_faces, msg_to_landmarks, rgb_to_image
from rosgraph import NodeSpec, running_graph

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def graph():
    spec = NodeSpec("face_detector", parameters={
        "device": "cpu", "image_reliability": "reliable", "threads": 2,
        "landmarks": "mediapipe", "tracking": True, "tracking_min_hits": 1})
    with running_graph([spec], ["faces", "faces/landmarks"]) as (client, procs):
        time.sleep(0.3)
        yield client, procs[0]


def _ask(client, msg, stamp_ns, timeout=30.0):
    key, _ = client.publish(msg=msg, stamp_ns=stamp_ns)
    faces, marks = client.wait("faces", key, timeout), client.wait("faces/landmarks", key, timeout)
    return (None if faces is None else faces[0]), (None if marks is None else marks[0])


def _inside(points, face, margin):
    """Fraction of (x, y) points inside the face box grown by `margin` of its size each side."""
    x0, y0, x1, y1 = face.xyxy
    mx, my = margin * face.width, margin * face.height
    p = np.asarray(points)[:, :2]
    ok = (p[:, 0] >= x0 - mx) & (p[:, 0] <= x1 + mx) & (p[:, 1] >= y0 - my) & (p[:, 1] <= y1 + my)
    return float(ok.mean())


def test_landmarks_over_dds_with_the_image_header(graph, astronaut):
    client, _ = graph
    msg = rgb_to_image(astronaut, None)
    msg.header.frame_id = "optical_frame_7"
    faces_msg, out = _ask(client, msg, 7_250_000_042)
    assert faces_msg is not None, "no FaceArray for the image"
    assert out is not None, "no FaceLandmarksArray on faces/landmarks for the image"
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (7, 250_000_042)
    assert out.header.frame_id == "optical_frame_7"
    assert (out.image_width, out.image_height) == (512, 512)

    faces = msg_to_faces(faces_msg)
    assert len(faces) == 1 and len(out.faces) == 1  # one FaceLandmarks per face
    face, m = faces[0], out.faces[0]
    assert m.face_index == 0 and m.track_id == face.track_id != 0
    assert 0.5 < m.presence <= 1.0
    assert len(m.points) == 468
    pts = [(p.x, p.y) for p in m.points]
    assert _inside(pts, face, 0.1) == 1.0       # the whole mesh on the face
    assert _inside(pts, face, 0.0) > 0.9
    assert len(m.iris) == 10
    assert _inside([(p.x, p.y) for p in m.iris], face, 0.0) == 1.0
    iris = np.array([(p.x, p.y) for p in m.iris]).reshape(2, 5, 2)
    assert iris[0, 0, 0] < iris[1, 0, 0]        # image-left eye first
    for eye, (lx, ly) in zip(iris, face.landmarks[:2]):   # iris centres on MTCNN's eyes
        assert math.hypot(eye[0, 0] - lx, eye[0, 1] - ly) < 0.1 * face.width

    d = np.array([m.gaze_direction.x, m.gaze_direction.y, m.gaze_direction.z])
    assert abs(np.linalg.norm(d) - 1.0) < 1e-4
    assert d[2] < -0.8                           # towards the camera
    assert math.isfinite(m.eye_yaw) and math.isfinite(m.eye_pitch)
    assert 0.0 <= m.looking_at_camera <= 1.0
    assert m.looking_at_camera > 0.5             # the astronaut looks into the camera
    assert m.head_pose_source == "mesh"

    assert face.head_pose is not None and all(map(math.isfinite, face.head_pose))
    assert abs(math.degrees(face.yaw)) < 15 and abs(math.degrees(face.pitch)) < 35  # frontal


def test_the_message_converts_back_to_the_json_lines_fields(graph, astronaut):
    """`msg_to_landmarks` gives what `run`'s JSON Lines write per face: "mesh", "eye_gaze"."""
    client, _ = graph
    faces_msg, out = _ask(client, rgb_to_image(astronaut, None), 8_000_000_000)
    assert out is not None
    meshes, gazes = msg_to_landmarks(out)
    assert meshes[0].points.shape == (468, 3) and meshes[0].iris.shape == (2, 5, 2)
    np.testing.assert_allclose(meshes[0].points[10], (out.faces[0].points[10].x,
                                                      out.faces[0].points[10].y,
                                                      out.faces[0].points[10].z))
    result = FrameResult(512, 512, msg_to_faces(faces_msg), meshes=meshes, eye_gaze=gazes)
    row = result.to_json()["faces"][0]
    assert len(row["mesh"]["points"]) == 468 and len(row["mesh"]["iris"]) == 2
    g = row["eye_gaze"]
    assert g["head_pose_source"] == "mesh"
    assert g["looking_at_camera"] == pytest.approx(out.faces[0].looking_at_camera, abs=1e-5)
    assert g["direction"] == pytest.approx([out.faces[0].gaze_direction.x,
                                            out.faces[0].gaze_direction.y,
                                            out.faces[0].gaze_direction.z], abs=1e-4)


def test_an_image_without_faces_gives_an_empty_landmark_array(graph):
    client, _ = graph
    _, out = _ask(client, rgb_to_image(np.full((240, 320, 3), 90, np.uint8), None),
                  9_000_000_000)
    assert out is not None and len(out.faces) == 0
    assert (out.image_width, out.image_height) == (320, 240)
