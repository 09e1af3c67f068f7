"""A small rclpy client that feeds images into a running graph and collects its outputs by
stamp. The demo, `bag` tools and the tests use it; it is a real node over DDS."""
from __future__ import annotations

import threading
import time
from typing import Dict, Optional, Sequence

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from diagnostic_msgs.msg import DiagnosticArray

from gaze_msgs.msg import (AttentionSummary, EyeStateArray, FaceArray, FaceLandmarksArray,
                           GazeCoding, GazeDirectionArray, GazeTargetArray)

from ..messages import rgb_to_image

#: message type of each output topic, by the topic's last name ("faces/landmarks" -> "landmarks")
OUTPUT_TYPES = {"faces": FaceArray, "eye_states": EyeStateArray, "gaze_targets": GazeTargetArray,
                "landmarks": FaceLandmarksArray,
                "attention": AttentionSummary, "gaze_coding": GazeCoding,
                "gaze_directions": GazeDirectionArray,
                "diagnostics": DiagnosticArray}
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class GraphClient:
    """Publishes `image` (and other `inputs`, e.g. {"faces": FaceArray}) and waits for outputs
    with the same stamp on the given topics."""

    def __init__(self, outputs: Sequence[str] = ("faces",), image_topic: str = "image",
                 name: str = "gaze_client", domain_id: Optional[int] = None,
                 inputs: Optional[Dict[str, type]] = None):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.image_pub = self.node.create_publisher(Image, image_topic, RELIABLE)
        self.input_pubs = {topic: self.node.create_publisher(t, topic, RELIABLE)
                           for topic, t in (inputs or {}).items()}
        self.received: Dict[str, Dict[tuple, tuple]] = {t: {} for t in outputs}
        self._lock = threading.Condition()
        for topic in outputs:
            self.node.create_subscription(OUTPUT_TYPES[topic.rsplit("/", 1)[-1]], topic,
                                          lambda m, t=topic: self._on_output(t, m), 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    @staticmethod
    def key(header) -> tuple:
        return (header.stamp.sec, header.stamp.nanosec)

    def _on_output(self, topic: str, msg) -> None:
        with self._lock:
            self.received[topic][self.key(msg.header)] = (msg, time.perf_counter())
            self._lock.notify_all()

    def wait_for_subscribers(self, timeout: float = 120.0, count: int = 1, alive=None) -> None:
        """Block until `count` nodes subscribe to the image topic (models are loaded then)."""
        end = time.monotonic() + timeout
        while self.image_pub.get_subscription_count() < count:
            if alive is not None and not alive():
                raise RuntimeError("a node exited before subscribing to the image topic")
            if time.monotonic() > end:
                raise TimeoutError(f"no subscriber on '{self.image_pub.topic_name}' after {timeout} s")
            time.sleep(0.05)

    def publish(self, rgb: Optional[np.ndarray] = None, stamp_ns: int = 0, frame_id: str = "camera",
                msg: Optional[Image] = None) -> tuple:
        """Publish an RGB frame (or a prepared Image); returns (stamp key, send time)."""
        if msg is None:
            msg = rgb_to_image(rgb, None)
        msg.header.frame_id = msg.header.frame_id or frame_id
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        sent = time.perf_counter()
        self.image_pub.publish(msg)
        return self.key(msg.header), sent

    def send(self, topic: str, msg) -> None:
        """Publish `msg` on one of the `inputs` topics."""
        self.input_pubs[topic].publish(msg)

    def latest(self, topic: str):
        """The most recently received message on `topic`, or None."""
        with self._lock:
            items = self.received[topic].values()
            return max(items, key=lambda v: v[1])[0] if items else None

    def wait(self, topic: str, key: tuple, timeout: float = 30.0):
        """The output on `topic` with stamp `key`, as (msg, receive time); None on timeout."""
        end = time.monotonic() + timeout
        with self._lock:
            while key not in self.received[topic]:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(left)
            return self.received[topic][key]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
