"""The face detector node as a separate process, fed over real DDS."""
import json
import time

import numpy as np
import pytest
from sensor_msgs.msg import Image

from gaze_perception.messages import msg_to_faces, rgb_to_image
from rosgraph import NodeSpec, running_graph

pytestmark = pytest.mark.ros

REF_BOX = (181.05, 62.16, 267.75, 172.05)
REF_LANDMARKS = [(205.01, 101.73), (246.76, 103.71), (224.67, 128.96), (201.72, 139.25),
                 (245.27, 141.86)]


@pytest.fixture(scope="module")
def graph():
    spec = NodeSpec("face_detector", parameters={"device": "cpu", "image_reliability": "reliable",
                                                 "threads": 2})
    with running_graph([spec], ["faces", "/diagnostics"]) as (client, procs):
        time.sleep(0.3)
        yield client, procs[0]


def _ask(client, msg, stamp_ns, timeout=30.0):
    key, _ = client.publish(msg=msg, stamp_ns=stamp_ns)
    got = client.wait("faces", key, timeout)
    return None if got is None else got[0]


def test_astronaut_face_over_dds(graph, astronaut):
    client, _ = graph
    msg = rgb_to_image(astronaut, None)
    msg.header.frame_id = "optical_frame_1"
    out = _ask(client, msg, 1_500_000_123)
    assert out is not None, "no FaceArray for the image"
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (1, 500_000_123)
    assert out.header.frame_id == "optical_frame_1"
    assert (out.image_width, out.image_height) == (512, 512)
    faces = msg_to_faces(out)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].xyxy, REF_BOX, atol=1.5)
    np.testing.assert_allclose(faces[0].landmarks, REF_LANDMARKS, atol=1.5)
    assert abs(faces[0].score - 0.99999774) < 1e-3
    assert faces[0].head_pose is not None


def test_the_node_runs_with_the_threads_it_was_given(graph):
    """`threads: 2` against OMP_NUM_THREADS=1 of the test environment: torch and OpenCV in the
    node process report 2 (read back there, published in /diagnostics)."""
    client, _ = graph
    end = time.monotonic() + 10
    values = {}
    while time.monotonic() < end and "threads_torch" not in values:
        diag = client.latest("/diagnostics")
        values = {kv.key: kv.value for kv in diag.status[0].values} if diag else {}
        time.sleep(0.1)
    assert values.get("threads_torch") == "2", values
    assert values.get("threads_opencv") == "2", values


def test_bgr8_and_rgb8_give_the_same_boxes(graph, astronaut):
    client, _ = graph
    rgb = _ask(client, rgb_to_image(astronaut, None), 2_000_000_000)
    bgr_msg = rgb_to_image(np.ascontiguousarray(astronaut[:, :, ::-1]), None)
    bgr_msg.encoding = "bgr8"
    bgr = _ask(client, bgr_msg, 2_100_000_000)
    assert rgb is not None and bgr is not None
    a, b = msg_to_faces(rgb), msg_to_faces(bgr)
    assert len(a) == len(b) == 1
    np.testing.assert_allclose(a[0].xyxy, b[0].xyxy, atol=1e-3)


def _bad_messages(astronaut):
    wrong_encoding = rgb_to_image(astronaut, None)
    wrong_encoding.encoding = "yuv422"
    empty = Image(height=0, width=0, encoding="rgb8", step=0)
    truncated = rgb_to_image(astronaut, None)
    truncated.data = truncated.data[: len(truncated.data) // 2]
    return {"unsupported encoding": wrong_encoding, "empty image": empty,
            "data length": truncated}


def test_bad_input_is_logged_and_the_node_keeps_serving(graph, astronaut):
    client, proc = graph
    for i, (expected_log, msg) in enumerate(_bad_messages(astronaut).items()):
        assert _ask(client, msg, 3_000_000_000 + i, timeout=3.0) is None
        assert proc.wait_for_output(expected_log, timeout=5), proc.output
        assert proc.alive()
    good = _ask(client, rgb_to_image(astronaut, None), 4_000_000_000)
    assert good is not None and len(good.faces) == 1


def test_other_backend_through_backend_params(shared_dir, astronaut):
    """A backend without the cascade parameters (yunet) gets its own through `backend_params`."""
    onnx = shared_dir / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"
    spec = NodeSpec("face_detector", parameters={
        "backend": "yunet", "image_reliability": "reliable",
        "backend_params": json.dumps({"weights": str(onnx), "score_threshold": 0.6})})
    with running_graph([spec], ["faces"]) as (client, _):
        time.sleep(0.3)
        out = _ask(client, rgb_to_image(astronaut, None), 5_000_000_000)
    assert out is not None and len(out.faces) == 1
    np.testing.assert_allclose(msg_to_faces(out)[0].xyxy, REF_BOX, atol=12.0)
