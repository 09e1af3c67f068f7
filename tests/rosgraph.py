"""Helpers for tests that start real nodes: isolated domain, node process, client."""
import contextlib

from gaze_perception.dds import isolated_ros_env
from gaze_perception.graph import NodeSpec
from gaze_perception.processes import NodeProcess


@contextlib.contextmanager
def running_graph(specs, outputs, timeout=120.0, count=None, **client_kw):
    """Start `specs` as processes on a fresh ROS domain and a GraphClient on the same domain;
    wait until `count` (default: all) nodes subscribe to the image topic."""
    from gaze_perception.nodes.client import GraphClient

    env = isolated_ros_env()
    procs = [NodeProcess(s, env, echo=False) for s in specs]
    client = GraphClient(outputs=outputs, domain_id=int(env["ROS_DOMAIN_ID"]), **client_kw)
    try:
        client.wait_for_subscribers(timeout, count=len(specs) if count is None else count,
                                    alive=lambda: all(p.alive() for p in procs))
        yield client, procs
    finally:
        client.close()
        for p in procs:
            p.stop()


__all__ = ["running_graph", "NodeSpec"]
