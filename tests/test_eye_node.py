"""The eye-state node over real DDS: image + faces in, one EyeStateArray per FaceArray."""
import math
import time

import pytest

from gaze_msgs.msg import EyeState, FaceArray
from gaze_perception.core.types import Face
from gaze_perception.messages import faces_to_msg, rgb_to_image
from rosgraph import NodeSpec, running_graph

pytestmark = pytest.mark.ros

CACHE = 5


@pytest.fixture(scope="module")
def graph():
    spec = NodeSpec("eye_state", parameters={"device": "cpu", "image_reliability": "reliable",
                                             "pair_cache_size": CACHE,
                                             "diagnostics_period": 0.2})
    with running_graph([spec], ["eye_states", "diagnostics"],
                       inputs={"faces": FaceArray}) as (client, procs):
        time.sleep(0.5)
        yield client, procs[0]


@pytest.fixture(scope="module")
def astronaut_faces(astronaut):
    from gaze_perception.core import registry
    faces = registry.create("face_detector", "mtcnn", device="cpu").detect([astronaut])[0]
    outside = Face(400, 400, 100, 100, landmarks=[(530.0, 600.0), (580.0, 600.0), (550.0, 620.0),
                                                   (530.0, 650.0), (570.0, 650.0)])
    return faces + [outside]


def _send_pair(client, rgb, faces, stamp_ns, send_image=True):
    img = rgb_to_image(rgb, None)
    img.header.frame_id = "cam"
    img.header.stamp.sec, img.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    if send_image:
        client.publish(msg=img, stamp_ns=stamp_ns)
    client.send("faces", faces_to_msg(faces, img.header, rgb.shape[1], rgb.shape[0]))
    return (img.header.stamp.sec, img.header.stamp.nanosec)


def test_one_eye_state_array_per_face_array(graph, astronaut, astronaut_faces):
    client, _ = graph
    for i in range(3):
        key = _send_pair(client, astronaut, astronaut_faces, 5_000_000_000 + i * 1000)
        got = client.wait("eye_states", key, 30.0)
        assert got is not None
        msg = got[0]
        assert msg.header.frame_id == "cam"
        assert [e.face_index for e in msg.eyes] == list(range(len(astronaut_faces)))
        real, outside = msg.eyes[0], msg.eyes[-1]
        assert real.state == EyeState.OPEN and real.closed_prob < 0.5
        # eyes outside the frame: unknown with NaN probability, and the node keeps serving
        assert outside.state == EyeState.UNKNOWN and math.isnan(outside.closed_prob)


def test_unpaired_faces_are_dropped_and_counted_never_mismatched(graph, astronaut,
                                                                 astronaut_faces):
    client, _ = graph
    keys = [_send_pair(client, astronaut, astronaut_faces, 7_000_000_000 + i, send_image=False)
            for i in range(CACHE + 3)]
    time.sleep(1.0)
    assert all(k not in client.received["eye_states"] for k in keys)
    deadline = time.monotonic() + 10
    dropped = 0
    while time.monotonic() < deadline and dropped < 3:
        diag = client.latest("diagnostics")
        values = {} if diag is None else {kv.key: kv.value for st in diag.status
                                          for kv in st.values}
        dropped = int(values.get("unpaired_dropped", 0))
        time.sleep(0.2)
    assert dropped >= 3
    key = _send_pair(client, astronaut, astronaut_faces, 9_000_000_000)
    assert client.wait("eye_states", key, 30.0) is not None
