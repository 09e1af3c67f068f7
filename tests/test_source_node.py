"""The source node publishes a folder's frames at the set rate with increasing stamps, and
CameraInfo from a calibration file with the same header."""
import time

import cv2
import numpy as np
import pytest
import yaml

from gaze_perception.core.calibration import load_calibration
from gaze_perception.dds import isolated_ros_env
from gaze_perception.graph import NodeSpec
from gaze_perception.processes import NodeProcess

pytestmark = pytest.mark.ros

RATE = 20.0
K = [500.0, 0.0, 128.0, 0.0, 500.0, 128.0, 0.0, 0.0, 1.0]


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory, astronaut):
    d = tmp_path_factory.mktemp("frames")
    small = cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR), (256, 256))
    for i in range(3):
        cv2.imwrite(str(d / f"f{i}.png"), np.roll(small, 20 * i, axis=1))
    return d


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "camera.yaml"
    path.write_text(yaml.safe_dump({
        "image_width": 256, "image_height": 256, "camera_name": "test",
        "camera_matrix": {"rows": 3, "cols": 3, "data": K},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.1, 0, 0, 0, 0]}}))
    return path


def _collect(params, count, timeout=30.0):
    """Start a source node; return (images, camera_infos, node process) once `count` images
    arrived (or the timeout passed)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image

    env = isolated_ros_env()
    proc = NodeProcess(NodeSpec("source", parameters=params), env, echo=False)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("source_test", context=ctx)
    images, infos = [], []
    node.create_subscription(Image, "image", lambda m: images.append((m, time.monotonic())), 10)
    node.create_subscription(CameraInfo, "camera_info", infos.append, 10)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    try:
        end = time.monotonic() + timeout
        while len(images) < count and time.monotonic() < end and proc.alive():
            executor.spin_once(timeout_sec=0.05)
        return images, infos, proc
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_frames_at_the_set_rate_with_increasing_stamps(frames_dir, calibration):
    images, infos, proc = _collect({"source": str(frames_dir), "rate": RATE, "loop": True,
                                    "frame_id": "cam_optical", "camera_info": str(calibration)},
                                   count=12)
    try:
        assert len(images) >= 12, proc.output
        msgs = [m for m, _ in images]
        assert {(m.encoding, m.width, m.height) for m in msgs} == {("rgb8", 256, 256)}
        assert {m.header.frame_id for m in msgs} == {"cam_optical"}
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))  # across the loop too
        period = np.median(np.diff(stamps))
        assert abs(period - 1.0 / RATE) < 0.25 / RATE, period
        arrivals = np.diff([t for _, t in images])
        assert abs(np.median(arrivals) - 1.0 / RATE) < 0.25 / RATE
        stamp_of = {(i.header.stamp.sec, i.header.stamp.nanosec) for i in infos}
        assert {(m.header.stamp.sec, m.header.stamp.nanosec) for m in msgs[1:-1]} <= stamp_of
        assert list(infos[0].k) == K and infos[0].header.frame_id == "cam_optical"
    finally:
        assert proc.stop() == 0, proc.output


def test_end_of_a_folder_without_loop_leaves_the_node_idle(frames_dir):
    images, _, proc = _collect({"source": str(frames_dir), "rate": 50.0,
                                "wait_for_subscribers": 1}, count=3)
    try:
        assert len(images) == 3  # none lost: the node waited for this subscriber
        proc.wait_for_output("source ended", timeout=10)
        assert "source ended after 3 frames" in proc.output
        time.sleep(0.3)
        assert proc.alive()
    finally:
        assert proc.stop() == 0, proc.output


def test_a_missing_source_fails_with_its_name(tmp_path):
    proc = NodeProcess(NodeSpec("source", parameters={"source": str(tmp_path / "nope.mp4")}),
                       isolated_ros_env(), echo=False)
    proc.proc.wait(30)
    assert proc.stop() != 0  # stop() also waits for the output reader to take the last lines
    assert "nope.mp4' does not exist" in proc.output


def test_opencv_calibration_files(tmp_path):
    path = tmp_path / "cv.yaml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 640)
    fs.write("image_height", 480)
    fs.write("camera_matrix", np.array(K, float).reshape(3, 3))
    fs.write("distortion_coefficients", np.zeros((1, 5)))
    fs.release()
    cal = load_calibration(path)
    assert (cal.width, cal.height, cal.k, len(cal.d)) == (640, 480, K, 5)
    assert cal.p[:3] == [500.0, 0.0, 128.0] and cal.p[3] == 0.0
