"""Recording topics into a bag as serialized bytes, as `ros2 bag record` does.

Messages are taken raw (no deserialization, so any type is recorded at the cost of a copy) and
written as they arrive, stamped with the time the middleware received them, so the recorder's
own scheduling does not blur the timing (its clock where the middleware gives no time). Only a
closed bag has its index, so stopping is explicit: `spin` returns when asked to stop, and
`close` first takes what DDS has already delivered, then closes the bag.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Dict, List, Optional, Sequence

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import MessageInfo

from . import STORAGE_NAMES
from .bagfile import BagWriter
from .errors import BagError
from .qos import RECORD_DEPTH, adapted_qos, to_bag
from .typesys import check_known, message_class

log = logging.getLogger(__name__)

#: How often to look for topics that have not appeared yet, and the longest wait for a message.
POLL_S = 0.1
#: Longest time spent taking already delivered messages when stopping.
DRAIN_S = 2.0


class Recorder:
    """Records `topics` into a new bag at `out`; each is subscribed once a publisher appears."""

    def __init__(self, out, topics: Sequence[str], storage: str = STORAGE_NAMES[0],
                 domain_id: Optional[int] = None, node_name: str = "gaze_bag_recorder"):
        if not topics:
            raise ValueError("no topics to record")
        self.writer = BagWriter(out, storage)
        self.context = rclpy.Context()
        try:
            # The caller owns SIGINT/SIGTERM: rclpy's handlers would shut the context down
            # before the bag is closed.
            rclpy.init(context=self.context, domain_id=domain_id,
                       signal_handler_options=SignalHandlerOptions.NO)
            self.node = rclpy.create_node(node_name, context=self.context)
        except BaseException:
            self.writer.close()
            raise
        self.topics = [self.node.resolve_topic_name(t) for t in topics]
        self.counts: Dict[str, int] = {}
        self._subscriptions: Dict[str, object] = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def pending(self) -> List[str]:
        """Topics not subscribed yet (no publisher seen so far)."""
        return [t for t in self.topics if t not in self._subscriptions]

    def discover(self) -> None:
        """Subscribe to each pending topic that has a publisher, with the type the graph reports
        and a QoS compatible with every publisher."""
        types = dict(self.node.get_topic_names_and_types())
        for topic in self.pending():
            offered = [i.qos_profile for i in self.node.get_publishers_info_by_topic(topic)]
            if not offered or topic not in types:
                continue
            if len(types[topic]) != 1:
                raise BagError(f"topic '{topic}' is published with several types {types[topic]}")
            msgtype = types[topic][0]
            check_known(msgtype)
            self.writer.add_topic(topic, msgtype, [to_bag(p) for p in offered])
            self.counts[topic] = 0
            self._subscriptions[topic] = self.node.create_subscription(
                message_class(msgtype), topic, functools.partial(self._write, topic),
                adapted_qos(offered, RECORD_DEPTH), raw=True)
            log.info("recording %s (%s)", topic, msgtype)

    def _write(self, topic: str, data: bytes, info: MessageInfo) -> None:
        stamp = info["received_timestamp"] or self.node.get_clock().now().nanoseconds
        self.writer.write(topic, stamp, data)
        self.counts[topic] += 1

    def spin(self, stop: threading.Event, duration: float = 0.0) -> None:
        """Record until `stop` is set or `duration` seconds (0: no limit) have passed."""
        end = time.monotonic() + duration if duration > 0 else float("inf")
        next_look = 0.0
        while not stop.is_set() and time.monotonic() < end:
            if self.pending() and time.monotonic() >= next_look:
                self.discover()
                next_look = time.monotonic() + POLL_S
            self.executor.spin_once(timeout_sec=POLL_S)

    def close(self) -> Dict[str, int]:
        """Write what has already arrived, close the bag; returns messages per topic."""
        try:
            self._drain()
        finally:
            self.writer.close()
            self.executor.shutdown()
            self.node.destroy_node()
            rclpy.shutdown(context=self.context)
        return dict(self.counts)

    def _drain(self) -> None:
        """Take the messages DDS has already delivered: until none is ready (bounded, since
        publishers may go on publishing)."""
        end = time.monotonic() + DRAIN_S
        while time.monotonic() < end:
            before = sum(self.counts.values())
            self.executor.spin_once(timeout_sec=0.0)
            if sum(self.counts.values()) == before:
                return
