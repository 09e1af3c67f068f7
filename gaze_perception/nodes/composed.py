"""The one-process graph (`compose: true`): every node of a pipeline's graph in one process and
one executor, as a component container holds components.

The nodes are the same classes with the same names, namespaces, parameters, lifecycle services,
topics and headers as in the separate-process graph (`graph.node_specs` builds both). What
changes is the hand-over: the face node passes each frame's decoded image and what it has just
published (faces, and the landmarks where it runs them; as a subscriber would receive them)
straight to the eye and gaze nodes of this process (`PairedNode.feed`), which process the
frame at once in the face node's worker thread, one after the other with all of the
process's threads. So the image is not serialized, copied and decoded again for every stage,
nothing waits for a stamp partner, and no two models run side by side on the same few cores
(each would start its own intra-op threads). An eye or gaze node whose `image`, `faces` or
`camera_info` resolves to other topics than the face node's, or that reads a topic the face
node does not publish, keeps its subscriptions. The source and attention nodes, when the graph
has them, run here too and talk over DDS (small messages; the source's image goes through Fast
DDS's in-process delivery).

    python -m gaze_perception.nodes.composed --graph '<JSON list of NodeSpec fields>'
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import List, Optional

from ..core import stages
from ..graph import NodeSpec

WIRED_TOPICS = ("image", "faces", "camera_info")


def build_node(spec: NodeSpec):
    """The node of `spec`, with its own `--ros-args` (the process's are not applied to it)."""
    module, _, name = stages.nodes()[spec.executable].partition(":")
    cls = getattr(importlib.import_module(module), name)
    return cls(cli_args=spec.command()[3:], use_global_arguments=False)


def wire(nodes: list) -> List[tuple]:
    """Let each face node feed the eye and gaze nodes that read its topics; returns the
    (face node, fed node) pairs."""
    from .face_detector import FaceDetectorNode
    from .paired import PairedNode

    pairs = []
    for face in (n for n in nodes if isinstance(n, FaceDetectorNode)):
        wanted = [face.resolve_topic_name(t) for t in WIRED_TOPICS]
        published = set(face.published_topics())
        for node in nodes:
            if (isinstance(node, PairedNode) and node.fed_by is None
                    and [node.resolve_topic_name(t) for t in WIRED_TOPICS] == wanted
                    and set(node.fed_topics()) <= published):
                node.fed_by = face
                face.downstream.append(node)
                pairs.append((face, node))
    return pairs


def main(argv: Optional[list] = None) -> None:
    from rclpy.utilities import remove_ros_args

    from .common import spin_nodes

    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(prog="composed", description=__doc__.splitlines()[0])
    parser.add_argument("--graph", required=True, help="JSON list of node specs "
                        "(graph.composed_spec writes it)")
    args = parser.parse_args(remove_ros_args(argv)[1:])
    try:
        specs = [NodeSpec(**s) for s in json.loads(args.graph)]
    except (ValueError, TypeError) as exc:
        parser.error(f"--graph must be a JSON list of node specs: {exc}")

    def make_nodes():
        nodes = [build_node(s) for s in specs]
        for face, node in wire(nodes):
            face.get_logger().info(f"composed: feeds {node.get_fully_qualified_name()} in "
                                   "this process")
        return nodes

    spin_nodes(make_nodes, argv)


if __name__ == "__main__":
    main()
