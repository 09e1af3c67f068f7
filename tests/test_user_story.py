"""The README's story end to end: the classroom graph on a video file (`up`), recorded with
`bag record`, replayed with `bag play`, and turned into the attention report."""
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest
from gaze_msgs.msg import GazeTargetArray
from rclpy.serialization import deserialize_message

from gaze_perception.bags.bagfile import BagReader
from gaze_perception.dds import isolated_ros_env
from gaze_perception.nodes.client import GraphClient
from gaze_perception.samples import demo_sequence

pytestmark = pytest.mark.ros

OUTPUTS = ["/classroom/faces", "/classroom/eye_states", "/classroom/gaze_targets"]
FRAMES = 8


def _cli(*args, env):
    return subprocess.Popen([sys.executable, "-m", "gaze_perception.cli.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _stop(proc, timeout=30):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _wait_until_quiet(client, topic, at_least, timeout, procs, quiet=4.0):
    """Until `at_least` messages came and then none for `quiet` s (the clip has ended). The nodes
    work on the newest frame, so on a busy machine some frames are skipped: that is by design."""
    end = time.monotonic() + timeout
    seen, last_change = 0, time.monotonic()
    while True:
        n = len(client.received[topic])
        if n != seen:
            seen, last_change = n, time.monotonic()
        if n >= at_least and time.monotonic() - last_change > quiet:
            return n
        assert time.monotonic() < end, f"only {n} on {topic}"
        assert all(p.poll() is None for p in procs), "a process died"
        time.sleep(0.2)


def test_classroom_on_a_video_recorded_replayed_and_reported(tmp_path):
    video = tmp_path / "lesson.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 480))
    for _, rgb in demo_sequence(FRAMES):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    env = isolated_ros_env()
    client = GraphClient(outputs=["/classroom/gaze_targets"], domain_id=int(env["ROS_DOMAIN_ID"]))
    bag = tmp_path / "session"
    recorder = _cli("bag", "record", str(bag), "--topics", *OUTPUTS, env=env)
    graph = _cli("up", "classroom", "--source", str(video), "--rate", "2", "--device", "cpu",
                 env=env)
    try:
        _wait_until_quiet(client, "/classroom/gaze_targets", 3, 300, [recorder, graph])
    finally:
        rec_code, rec_out = _stop(recorder)
        up_code, up_out = _stop(graph, timeout=60)
    assert rec_code == 0, rec_out[-2000:]
    assert up_code == 0, up_out[-3000:]

    # replay: the subscriber sees every gaze-target message of the bag again, same stamps
    in_bag = [deserialize_message(m.data, GazeTargetArray)
              for m in BagReader(bag).messages(["/classroom/gaze_targets"])]
    recorded = {GraphClient.key(m.header) for m in in_bag}
    assert len(recorded) >= 3 and recorded <= set(client.received["/classroom/gaze_targets"])
    client.received["/classroom/gaze_targets"].clear()
    player = _cli("bag", "play", str(bag), "--topics", "/classroom/gaze_targets",
                  "--wait-for-subscribers", "10", env=env)
    out, _ = player.communicate(timeout=120)
    assert player.returncode == 0, out[-2000:]
    assert set(client.received["/classroom/gaze_targets"]) == recorded
    client.close()

    report = subprocess.run([sys.executable, "-m", "gaze_perception.cli.main", "report", str(bag),
                             "--config", "classroom", "--out", str(tmp_path / "report")],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    rows = (tmp_path / "report" / "attention.csv").read_text().splitlines()
    assert rows[0].startswith("track_id,") and len(rows) >= 5  # four people in the grid
    assert (tmp_path / "report" / "index.html").is_file()
