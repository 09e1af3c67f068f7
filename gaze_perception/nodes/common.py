"""What every perception node shares: parameters with descriptors and validation, the newest-frame
worker, bad-input handling, image/faces pairing by exact stamp, and /diagnostics."""
from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from ..core.image import ImageError
from ..core.types import CameraIntrinsics
from .convert import image_to_rgb, rgb_to_image

RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
DEBUG_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)  # rviz-compatible
OUTPUT_QOS = 10


def mapping_ok(text):
    """Validator of JSON-object parameters such as `backend_params`."""
    try:
        value = json.loads(text or "{}")
    except ValueError as exc:
        return f"must be a JSON object: {exc}"
    return None if isinstance(value, dict) else "must be a JSON object"


def image_qos(reliability: str) -> QoSProfile:
    """Sensor-data style QoS with depth 1 so a slow model always works on the newest frame."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=RELIABILITY[reliability])


class PerceptionNode(Node):
    """Base node: subclasses declare parameters, build their backend and implement `process`."""

    #: name -> (default, description, validator returning an error string or None)
    PARAMS: Dict[str, tuple] = {}
    COMMON_PARAMS: Dict[str, tuple] = {
        "device": ("auto", "auto | cpu | cuda[:N]", lambda v: None if v == "auto" or v == "cpu"
                   or v.startswith("cuda") else "device must be auto, cpu or cuda[:N]"),
        "image_reliability": ("best_effort", "image subscription reliability: best_effort | "
                              "reliable (use reliable for bag replay)",
                              lambda v: None if v in RELIABILITY else
                              f"must be one of {sorted(RELIABILITY)}"),
        "publish_debug_image": (False, "publish an annotated image (computed only while someone "
                                "subscribes)", None),
        "diagnostics_period": (1.0, "seconds between /diagnostics messages",
                               lambda v: None if v > 0 else "must be > 0"),
    }
    #: restart-only parameters: changing them at run time is refused with a reason
    READ_ONLY = ("device", "image_reliability")

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self._validators: Dict[str, Callable[[Any], Optional[str]]] = {}
        for pname, (default, desc, validator) in {**self.COMMON_PARAMS, **self.PARAMS}.items():
            self.declare_parameter(pname, default, ParameterDescriptor(
                description=desc, read_only=pname in self.READ_ONLY))
            if validator:
                self._validators[pname] = validator
        self.add_on_set_parameters_callback(self._validate_params)
        self.stats = {"received": 0, "processed": 0, "dropped": 0, "rejected": 0,
                      "last_ms": 0.0, "last_error": ""}
        self._latest: Optional[tuple] = None
        self._last_logged: Dict[str, float] = {}
        self._cv = threading.Condition()
        self._running = True
        self.intrinsics: Optional[CameraIntrinsics] = None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.param("diagnostics_period"), self._publish_diagnostics)
        self.debug_pub = None

    # -- parameters -------------------------------------------------------------------------
    def param(self, name: str):
        return self.get_parameter(name).value

    def _validate_params(self, params) -> SetParametersResult:
        for p in params:
            check = self._validators.get(p.name)
            err = check(p.value) if check else None
            if err:
                return SetParametersResult(successful=False, reason=f"{p.name}: {err}")
        return SetParametersResult(successful=True)

    # -- wiring -----------------------------------------------------------------------------
    def start(self, debug_topic: Optional[str] = None) -> None:
        """Subscribe to `image` (+ `camera_info`) and start the worker thread."""
        events = SubscriptionEventCallbacks(incompatible_qos=lambda e: self.get_logger().error(
            f"image subscription: incompatible QoS with a publisher (policy {e.last_policy_kind}); "
            "set image_reliability to match the camera", throttle_duration_sec=5.0))
        self.create_subscription(Image, "image", self._on_image,
                                 image_qos(self.param("image_reliability")),
                                 event_callbacks=events)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, 1)
        if debug_topic:
            self.debug_pub = self.create_publisher(Image, debug_topic, DEBUG_QOS)
        self._worker = threading.Thread(target=self._work, name=f"{self.get_name()}-worker",
                                        daemon=True)
        self._worker.start()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if msg.k[0] > 0 and msg.k[4] > 0:
            self.intrinsics = CameraIntrinsics.from_k(msg.k)

    def _on_image(self, msg: Image) -> None:
        self.submit(msg)

    def submit(self, *item) -> None:
        """Hand a unit of work to the worker; an unprocessed older one counts as dropped."""
        with self._cv:
            self.stats["received"] += 1
            if self._latest is not None:
                self.stats["dropped"] += 1
            self._latest = item
            self._cv.notify()

    def _work(self) -> None:
        while self._running and rclpy.ok(context=self.context):
            with self._cv:
                self._cv.wait_for(lambda: self._latest is not None or not self._running, 0.2)
                item, self._latest = self._latest, None
            if item is None:
                continue
            t0 = time.perf_counter()
            try:
                self.process(*item)
                self.stats["processed"] += 1
            except ImageError as exc:
                self.reject(str(exc))
            except Exception as exc:  # noqa: BLE001 - a node logs, reports and keeps serving
                self.reject(f"{type(exc).__name__}: {exc}")
            self.stats["last_ms"] = (time.perf_counter() - t0) * 1000.0

    def reject(self, reason: str) -> None:
        """Count, report and log a bad input: once per kind of problem every 5 s."""
        self.stats["rejected"] += 1
        self.stats["last_error"] = reason
        kind = re.sub(r"[0-9.]+", "#", reason)
        now = time.monotonic()
        if now - self._last_logged.get(kind, -1e9) >= 5.0:
            self._last_logged[kind] = now
            self.get_logger().error(f"input rejected: {reason}")

    def process(self, *item) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers for subclasses ---------------------------------------------------------------
    def to_rgb(self, msg: Image):
        return image_to_rgb(msg)

    def debug_wanted(self) -> bool:
        return bool(self.debug_pub and self.param("publish_debug_image")
                    and self.debug_pub.get_subscription_count() > 0)

    def publish_debug(self, rgb, header) -> None:
        self.debug_pub.publish(rgb_to_image(rgb, header))

    def diagnostic_values(self) -> Dict[str, str]:
        return {}

    def _publish_diagnostics(self) -> None:
        s = self.stats
        level, message = DiagnosticStatus.OK, "ok"
        if s["rejected"]:
            level, message = DiagnosticStatus.WARN, f"rejected input: {s['last_error']}"
        if s["last_ms"] > 1000.0:
            level, message = DiagnosticStatus.WARN, f"slow: {s['last_ms']:.0f} ms per frame"
        values = {k: str(v) for k, v in s.items()}
        values.update(self.diagnostic_values())
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status.append(DiagnosticStatus(
            level=level, name=f"gaze_perception: {self.get_fully_qualified_name()}",
            message=message, hardware_id=values.get("device", ""),
            values=[KeyValue(key=k, value=v) for k, v in values.items()]))
        self.diag_pub.publish(arr)

    def destroy_node(self):
        self._running = False
        with self._cv:
            self._cv.notify_all()
        return super().destroy_node()


class StampPairer:
    """Pairs images with the FaceArray of the same stamp (exact match, bounded caches)."""

    def __init__(self, on_pair: Callable, size: int = 30):
        self.on_pair, self.size = on_pair, size
        self.images: "OrderedDict[tuple, Any]" = OrderedDict()
        self.faces: "OrderedDict[tuple, Any]" = OrderedDict()
        self.dropped = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(header) -> tuple:
        return (header.stamp.sec, header.stamp.nanosec, header.frame_id)

    def add_image(self, msg) -> None:
        self._add(msg, self.images, self.faces, image_first=True)

    def add_faces(self, msg) -> None:
        self._add(msg, self.faces, self.images, image_first=False)

    def _add(self, msg, mine: OrderedDict, other: OrderedDict, image_first: bool) -> None:
        k = self.key(msg.header)
        with self._lock:
            match = other.pop(k, None)
            if match is None:
                mine[k] = msg
                while len(mine) > self.size:
                    mine.popitem(last=False)
                    self.dropped += 1
                return
        self.on_pair(*((msg, match) if image_first else (match, msg)))


def spin(node_cls, args=None) -> None:
    """Standard main(): init, spin until Ctrl-C / shutdown, clean up."""
    rclpy.init(args=args)
    node = node_cls()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
