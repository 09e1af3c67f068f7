"""Replaying a bag: each message is published as recorded bytes (no deserialization) at its
recorded time offset, scaled by the rate, optionally with /clock for nodes on `use_sim_time`."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, Iterable, Optional

import rclpy
from rclpy.duration import Duration
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock

from .bagfile import BagReader
from .errors import UnknownTypeError
from .qos import playback_qos
from .typesys import message_class

log = logging.getLogger(__name__)

CLOCK_TOPIC = "/clock"
#: DDS matches the two sides of a topic independently: when the player sees a subscriber, that
#: subscriber may not have matched the player yet and would drop what comes first.
MATCH_SETTLE_S = 0.5
#: Longest wait at the end for reliable subscribers to acknowledge the last messages (a
#: process that leaves at once may take unsent data with it).
ACK_TIMEOUT_S = 3.0
#: Reliable depth 1: compatible with rclpy's best-effort /clock subscription and reliable ones.
CLOCK_QOS = QoSProfile(depth=1)


class Player:
    """Publishes the messages of `reader` (on `topics`, default all) with their original timing.
    A topic whose type is not installed here is skipped (`skipped`: topic → type) with one
    warning, as `ros2 bag play` does; the others play."""

    def __init__(self, reader: BagReader, topics: Optional[Iterable[str]] = None,
                 rate: float = 1.0, clock_hz: float = 0.0, domain_id: Optional[int] = None,
                 node_name: str = "gaze_bag_player"):
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if clock_hz < 0:
            raise ValueError(f"clock rate must be >= 0 Hz, got {clock_hz}")
        self.reader, self.rate, self.clock_hz = reader, rate, clock_hz
        self.topics, self.skipped, classes = [], {}, {}
        for t in reader.select(topics):
            msgtype = reader.topics[t].msgtype
            try:
                classes[t] = message_class(msgtype)
            except UnknownTypeError:
                self.skipped[t] = msgtype
                log.warning("not playing %s (%s, %d messages): that type is not installed here",
                            t, msgtype or "type unknown", reader.topics[t].count)
                continue
            self.topics.append(t)
        #: Messages published so far (also when play() ends by an exception).
        self.published = 0
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(node_name, context=self.context)
        self.publishers: Dict[str, object] = {
            t: self.node.create_publisher(classes[t], t, playback_qos(reader.topics[t].qos))
            for t in self.topics}
        self.clock_pub = (self.node.create_publisher(Clock, CLOCK_TOPIC, CLOCK_QOS)
                          if clock_hz > 0 else None)
        self._next_clock = 0.0

    def wait_for_subscribers(self, timeout: float, stop: threading.Event) -> bool:
        """Wait until every played topic has a subscriber that has had time to match the
        player; False on timeout or stop."""
        end = time.monotonic() + timeout
        while any(p.get_subscription_count() == 0 for p in self.publishers.values()):
            if time.monotonic() >= end or stop.wait(0.05):
                return False
        return not stop.wait(MATCH_SETTLE_S)

    def play(self, stop: threading.Event, loop: bool = False) -> int:
        """Publish until the bag ends (with `loop`: until `stop`); returns messages published.
        Of a damaged bag, the intact messages are played (the reader names the damage)."""
        published = 0
        while not stop.is_set() and self.topics:
            once = self._play_once(stop)
            published += once
            if not loop or once == 0:
                break
        return published

    def close(self) -> None:
        """Wait (bounded) until reliable subscribers have the last messages, then leave."""
        end = time.monotonic() + ACK_TIMEOUT_S
        for pub in self.publishers.values():
            pub.wait_for_all_acked(Duration(seconds=max(0.0, end - time.monotonic())))
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def _play_once(self, stop: threading.Event) -> int:
        published, first_stamp, start = 0, 0, 0.0

        def bag_time(now: float) -> int:
            return first_stamp + int((now - start) * self.rate * 1e9)

        for msg in self.reader.messages(self.topics):
            if published == 0:
                first_stamp, start = msg.timestamp, time.perf_counter()
            target = start + (msg.timestamp - first_stamp) / 1e9 / self.rate
            if not self._wait_until(target, stop, bag_time):
                break
            self.publishers[msg.topic].publish(msg.data)
            published += 1
            self.published += 1
        return published

    def _wait_until(self, target: float, stop: threading.Event,
                    bag_time: Callable[[float], int]) -> bool:
        """Sleep until perf_counter() reaches `target`, publishing /clock on the way; False if
        stopped first."""
        while True:
            now = time.perf_counter()
            wake = target
            if self.clock_pub is not None:
                if now >= self._next_clock:
                    self._publish_clock(bag_time(now))
                    self._next_clock = now + 1.0 / self.clock_hz
                wake = min(target, self._next_clock)
            if now >= target:
                return not stop.is_set()
            if stop.wait(wake - now):
                return False

    def _publish_clock(self, stamp_ns: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
        self.clock_pub.publish(msg)
