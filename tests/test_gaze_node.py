"""The gaze-target node over real DDS, head_pose backend, on real frames with given head boxes."""
import time

import pytest

from gaze_msgs.msg import FaceArray
from gaze_perception.core.head_boxes import read_head_boxes
from gaze_perception.core.sources import read_rgb
from gaze_perception.nodes.convert import faces_to_msg, rgb_to_image
from rosgraph import NodeSpec, running_graph

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def vat(shared_dir):
    root = shared_dir / "data" / "vat_demo_two_people"
    boxes = read_head_boxes([root / "person1.txt", root / "person2.txt"])
    names = sorted(p.name for p in (root / "frames").iterdir())[:4]
    return [(read_rgb(root / "frames" / n), boxes.faces_for(n, i)) for i, n in enumerate(names)]


def test_one_target_per_face_with_equal_stamps(vat):
    spec = NodeSpec("gaze_target", parameters={"device": "cpu", "image_reliability": "reliable"})
    with running_graph([spec], ["gaze_targets"], inputs={"faces": FaceArray}) as (client, _):
        time.sleep(0.5)
        for i, (rgb, faces) in enumerate(vat):
            img = rgb_to_image(rgb, None)
            img.header.frame_id = "vat"
            key, _ = client.publish(msg=img, stamp_ns=10_000_000_000 + i * 40_000_000)
            client.send("faces", faces_to_msg(faces, img.header, rgb.shape[1], rgb.shape[0]))
            got = client.wait("gaze_targets", key, 30.0)
            assert got is not None, f"no gaze targets for frame {i}"
            msg = got[0]
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == key
            assert msg.header.frame_id == "vat"
            assert len(msg.targets) == len(faces) == 2
            assert [t.face_index for t in msg.targets] == [0, 1]
