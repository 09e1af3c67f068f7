"""Parameter changes that need the model rebuilt: built off the executor thread, refused while a
rebuild runs, and put back when the rebuild fails (parameters and model always agree). The face
node runs in this process with its real detector; only the rebuild is made to wait or fail."""
import threading
import time

import pytest
import rclpy
from rclpy.parameter import Parameter

from gaze_perception.dds import reserve_domain_id
from gaze_perception.nodes.params import Range

pytestmark = pytest.mark.ros


@pytest.fixture
def face_node():
    from gaze_perception.nodes.face_detector import FaceDetectorNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=reserve_domain_id())  # isolated
    node = FaceDetectorNode(context=context, parameter_overrides=[
        Parameter("device", value="cpu"), Parameter("threads", value=1)])
    assert node.autostart()
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


def test_rebuild_runs_off_the_caller_and_a_second_change_waits(face_node):
    node = face_node
    old = node.detector
    release = threading.Event()
    build = node._build_detector

    def slow_build():
        release.wait(10)
        return build()
    node._build_detector = slow_build
    t0 = time.monotonic()
    result = node.set_parameters([Parameter("min_face_size", value=30)])[0]
    assert result.successful and time.monotonic() - t0 < 1.0  # the caller did not wait
    assert node.detector is old  # the old model serves meanwhile
    refused = node.set_parameters([Parameter("max_faces", value=3)])[0]
    assert not refused.successful and "reload" in refused.reason
    release.set()
    assert _wait(lambda: not node.reload.busy)
    assert node.detector is not old and node.detector.min_face_size == 30
    assert node.param("min_face_size") == 30 and node.param("max_faces") == 0


def test_a_failed_rebuild_puts_the_parameters_back(face_node):
    node = face_node
    old = node.detector

    def failing_build():
        raise RuntimeError("out of memory")
    node._build_detector = failing_build
    assert node.set_parameters([Parameter("thresholds", value=[0.5, 0.6, 0.6])])[0].successful
    assert _wait(lambda: not node.reload.busy)
    assert node.detector is old
    assert list(node.param("thresholds")) == pytest.approx([0.6, 0.7, 0.7])
    assert "reload failed" in node.stats["last_error"] and "out of memory" in \
        node.stats["last_error"]


def test_range_checks_numbers_and_arrays():
    r = Range(0.0, 1.0)
    assert r(0.5) is None and r([0.1, 1.0]) is None
    assert "[0.0, 1.0]" in r(1.5) and "each value" in r([0.2, 2.0])
    assert Range(0.0, 5.0, above=True)(0.0) == "must lie in (0.0, 5.0]"
