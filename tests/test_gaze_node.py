"""The gaze-target node over real DDS, head_pose backend, on real frames with given head boxes."""
import time

import pytest

from gaze_msgs.msg import FaceArray
from gaze_perception.core.head_boxes import read_head_boxes
from gaze_perception.core.sources import read_rgb
from gaze_perception.messages import faces_to_msg, rgb_to_image
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


def test_gazelle_backend_publishes_heatmaps(vat, shared_dir):
    """The Gaze-LLE backend in the node (fixture-sized model), with heatmaps in the message;
    the precision `auto` chose is in /diagnostics."""
    import json

    import numpy as np

    from gaze_perception.messages import msg_to_gaze

    fx = shared_dir / "fixtures" / "gazelle"
    params = {"variant": "vits14_depth2",
              "backbone_weights": str(fx / "dinov2_backbone_hub_format.pth"),
              "decoder_weights": str(fx / "gazelle_decoder_inout.pt")}
    spec = NodeSpec("gaze_target", parameters={
        "backend": "gazelle", "backend_params": json.dumps(params), "publish_heatmaps": True,
        "device": "cpu", "image_reliability": "reliable"})
    rgb, faces = vat[0]
    outputs = ["gaze_targets", "/diagnostics"]
    with running_graph([spec], outputs, inputs={"faces": FaceArray}) as (client, _):
        time.sleep(0.5)
        img = rgb_to_image(rgb, None)
        key, _ = client.publish(msg=img, stamp_ns=20_000_000_000)
        client.send("faces", faces_to_msg(faces, img.header, rgb.shape[1], rgb.shape[0]))
        got = client.wait("gaze_targets", key, 60.0)
        values, end = {}, time.monotonic() + 5.0
        while "precision" not in values and time.monotonic() < end:  # one after activation
            diag = client.latest("/diagnostics")
            values = {kv.key: kv.value for kv in diag.status[0].values} if diag else {}
            time.sleep(0.1)
    assert got is not None
    from gaze_perception.core.precision import resolve_precision
    assert values.get("precision") == resolve_precision("auto", "cpu"), values
    targets = msg_to_gaze(got[0])
    assert len(targets) == 2
    for t in targets:
        assert t.heatmap.shape == (64, 64) and 0.0 <= t.heatmap.min() <= t.heatmap.max() <= 1.0
        row, col = np.unravel_index(np.argmax(t.heatmap), t.heatmap.shape)
        assert abs(t.point[0] - col / 64 * rgb.shape[1]) < 1.0
        assert abs(t.point[1] - row / 64 * rgb.shape[0]) < 1.0
