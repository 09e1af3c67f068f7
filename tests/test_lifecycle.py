"""Managed nodes: with autostart:=false a node waits, unconfigured, for a lifecycle manager; the
transitions load the model, subscribe, unsubscribe and free it, driven here over real DDS
through the standard lifecycle_msgs services (what `ros2 lifecycle set` and nav2's manager call).
"""
import time

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from gaze_perception.dds import isolated_ros_env
from gaze_perception.graph import NodeSpec
from gaze_perception.processes import NodeProcess
from gaze_perception.nodes.client import GraphClient

pytestmark = pytest.mark.ros


class Managed:
    """A node process started with autostart:=false and a client that drives its states."""

    def __init__(self, params, outputs=("faces",)):
        env = isolated_ros_env()
        self.proc = NodeProcess(NodeSpec("face_detector", parameters={
            "device": "cpu", "image_reliability": "reliable", "autostart": False, **params}),
            env, echo=False)
        self.client = GraphClient(outputs=outputs, domain_id=int(env["ROS_DOMAIN_ID"]))
        node = self.client.node
        self._change = node.create_client(ChangeState, "/face_detector/change_state")
        self._get = node.create_client(GetState, "/face_detector/get_state")
        end = time.monotonic() + 60
        while not (self._change.service_is_ready() and self._get.service_is_ready()):
            assert self.proc.alive() and time.monotonic() < end, self.proc.output
            time.sleep(0.05)

    def _call(self, client, request):
        future = client.call_async(request)  # the client's executor thread completes it
        end = time.monotonic() + 60
        while not future.done():
            assert time.monotonic() < end, "no answer from the lifecycle service"
            time.sleep(0.02)
        return future.result()

    def state(self) -> str:
        return self._call(self._get, GetState.Request()).current_state.label

    def change(self, transition_id: int) -> bool:
        return self._call(self._change, ChangeState.Request(
            transition=Transition(id=transition_id))).success

    def image_subscribers(self) -> int:
        return self.client.image_pub.get_subscription_count()

    def close(self) -> int:
        """Stop the client and the node (SIGINT); the node's exit status. Idempotent."""
        if self.client is not None:
            self.client.close()
            self.client = None
        return self.proc.stop()


@pytest.fixture
def managed():
    made = []

    def start(params=None, **kw):
        made.append(Managed(params or {}, **kw))
        return made[-1]
    yield start
    for m in made:
        m.close()


def _faces_for(node, astronaut, stamp_ns, timeout):
    key, _ = node.client.publish(astronaut, stamp_ns)
    return node.client.wait("faces", key, timeout)


def _wait_subscribers(node, count):
    end = time.monotonic() + 10
    while node.image_subscribers() != count and time.monotonic() < end:
        time.sleep(0.05)
    return node.image_subscribers()


def test_transitions_load_subscribe_unsubscribe_and_free(managed, astronaut):
    node = managed()
    assert node.state() == "unconfigured"
    assert node.image_subscribers() == 0  # nothing subscribed, no model loaded
    assert node.change(Transition.TRANSITION_CONFIGURE) and node.state() == "inactive"
    assert node.proc.wait_for_output("face detector ready"), node.proc.output
    assert _wait_subscribers(node, 0) == 0  # configured, not yet listening

    assert node.change(Transition.TRANSITION_ACTIVATE) and node.state() == "active"
    assert _wait_subscribers(node, 1) == 1
    got = _faces_for(node, astronaut, 1_000_000_000, 30)
    assert got is not None and len(got[0].faces) == 1

    assert node.change(Transition.TRANSITION_DEACTIVATE) and node.state() == "inactive"
    assert _wait_subscribers(node, 0) == 0
    assert _faces_for(node, astronaut, 2_000_000_000, 2) is None

    assert node.change(Transition.TRANSITION_CLEANUP) and node.state() == "unconfigured"
    assert not node.change(Transition.TRANSITION_ACTIVATE)  # not from unconfigured
    assert node.state() == "unconfigured"
    # configured again from scratch, it serves again
    assert node.change(Transition.TRANSITION_CONFIGURE)
    assert node.change(Transition.TRANSITION_ACTIVATE)
    assert _wait_subscribers(node, 1) == 1
    got = _faces_for(node, astronaut, 3_000_000_000, 30)
    assert got is not None and len(got[0].faces) == 1
    assert node.close() == 0


def test_failed_configure_names_the_reason_and_the_node_stays(managed):
    node = managed({"backend": "no_such_detector"}, outputs=("/diagnostics",))
    assert not node.change(Transition.TRANSITION_CONFIGURE)
    assert node.state() == "unconfigured" and node.proc.alive()
    assert node.proc.wait_for_output("configure failed", "installed: "), node.proc.output
    end = time.monotonic() + 10
    status = None
    while time.monotonic() < end:
        msg = node.client.latest("/diagnostics")
        status = msg.status[0] if msg is not None else None
        if status is not None and "configure failed" in status.message:
            break
        time.sleep(0.1)
    assert status is not None and "no_such_detector" in status.message, status
    values = {kv.key: kv.value for kv in status.values}
    assert values["lifecycle_state"] == "unconfigured"


def test_autostart_failure_ends_the_process_with_the_reason():
    env = isolated_ros_env()
    proc = NodeProcess(NodeSpec("face_detector", parameters={"backend": "no_such_detector"}),
                       env, echo=False)
    proc.proc.wait(60)
    proc.stop()
    assert proc.proc.returncode == 1
    assert "configure failed" in proc.output and "no_such_detector" in proc.output
