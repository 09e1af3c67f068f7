"""What every perception node shares: the managed (lifecycle) states, parameters with descriptors
and validation, the newest-frame worker, bad-input handling and /diagnostics (joining inputs by
stamp: inputs.py)."""
from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Dict, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..core.image import ImageError
from ..core.threads import STANDARD_MODEL_PROCESSES, apply_threads, current_threads
from ..core.types import CameraIntrinsics
from ..lifetime import die_with_parent
from ..messages import msg_to_rgb, rgb_to_image
from .params import Range, descriptor

CONFIGURE_FAILED = "configure failed"
RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
DEBUG_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)  # rviz-compatible
#: best effort matches reliable and best-effort publishers (camera drivers differ)
CAMERA_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
TRANSPORTS = ("raw", "compressed")
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


class PerceptionNode(LifecycleNode):
    """Base node, managed the ROS 2 way (as yolo_ros does): `configure` loads the model and makes
    the outputs, `activate` subscribes to the inputs, `deactivate` unsubscribes, `cleanup`
    frees the model. With `autostart` (the default) a node configures and activates itself at
    start-up; with autostart:=false it waits for a lifecycle manager.

    Subclasses declare PARAMS and implement `configure` (raise to fail with the reason),
    `process`, and where they differ from the image node, `open_inputs` / `close_inputs` /
    `release`. Outputs are made with `create_output` (lifecycle publishers: silent unless
    active) and inputs with `create_input`, so the base can undo both."""

    #: name -> (default, description, check: a validator returning an error string or None,
    #: or a params.Range, which also gives `ros2 param describe` the bounds)
    PARAMS: Dict[str, tuple] = {}
    COMMON_PARAMS: Dict[str, tuple] = {
        "device": ("auto", "auto | cpu | cuda[:N]", lambda v: None if v == "auto" or v == "cpu"
                   or v.startswith("cuda") else "device must be auto, cpu or cuda[:N]"),
        "image_reliability": ("best_effort", "image subscription reliability: best_effort | "
                              "reliable (use reliable for bag replay)",
                              lambda v: None if v in RELIABILITY else
                              f"must be one of {sorted(RELIABILITY)}"),
        "image_transport": ("raw", "raw: sensor_msgs/Image on `image`; compressed: "
                            "sensor_msgs/CompressedImage (JPEG or PNG) on `<image>/compressed`, "
                            "the topic image_transport's compressed plugin publishes",
                            lambda v: None if v in TRANSPORTS else f"must be one of {TRANSPORTS}"),
        "publish_debug_image": (False, "publish an annotated image (computed only while someone "
                                "subscribes)", None),
        "diagnostics_period": (1.0, "seconds between /diagnostics messages",
                               Range(0.0, 3600.0, above=True)),
        "autostart": (True, "configure and activate at start-up; false: stay unconfigured "
                      "until a lifecycle manager (or `ros2 lifecycle set`) drives the node",
                      None),
        "threads": (0, "torch and OpenCV intra-op threads; 0 = auto: OMP_NUM_THREADS if set, "
                    "else the cores divided among the graph's model nodes (core/threads.py)",
                    Range(0, 1024)),
    }
    #: restart-only parameters: changing them at run time is refused with a reason
    READ_ONLY = ("device", "image_reliability", "autostart", "threads", "image_transport")
    #: whether the node runs a model: `threads: 0` then shares the cores with the standard
    #: graph's other stage nodes; other nodes (source, attention) take one thread
    MODEL_NODE = True

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self._validators: Dict[str, Callable[[Any], Optional[str]]] = {}
        for pname, (default, desc, validator) in {**self.COMMON_PARAMS, **self.PARAMS}.items():
            self.declare_parameter(pname, default, descriptor(default, desc, validator,
                                                              pname in self.READ_ONLY))
            if validator:
                self._validators[pname] = validator
        self.add_on_set_parameters_callback(self._validate_params)
        self.threads = apply_threads(self.param("threads") or (0 if self.MODEL_NODE else 1),
                                     STANDARD_MODEL_PROCESSES)
        self.stats = {"received": 0, "processed": 0, "dropped": 0, "rejected": 0,
                      "last_ms": 0.0, "busy_ms": 0.0, "last_error": ""}
        self._queue: deque = deque()  # work waiting for the worker, at most WORK_QUEUE
        self._last_logged: Dict[str, float] = {}
        self._cv = threading.Condition()
        self._processing = threading.Lock()  # held while the worker runs `process`
        self._running = True
        self.exit_code = 0  # set by `stop_with_error`
        self.intrinsics: Optional[CameraIntrinsics] = None
        self.debug_pub = None
        self._inputs: list = []   # subscriptions and timers of the active state
        self._outputs: list = []  # lifecycle publishers of the configured states
        # diagnostics in every state: a manager sees why a node failed to configure
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.param("diagnostics_period"), self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name=f"{self.get_name()}-worker",
                                        daemon=True)
        self._worker.start()

    # -- parameters -------------------------------------------------------------------------
    def param(self, name: str):
        return self.get_parameter(name).value

    def _validate_params(self, params) -> SetParametersResult:
        for p in params:
            check = self._validators.get(p.name)
            try:
                err = check(p.value) if check else None
            except Exception as exc:  # noqa: BLE001 - a value the check cannot read: refused
                err = f"cannot check {p.value!r}: {exc}"
            if err:
                return SetParametersResult(successful=False, reason=f"{p.name}: {err}")
        return SetParametersResult(successful=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.configure()
        except Exception as exc:  # noqa: BLE001 - the reason goes to the log and diagnostics
            self.release()
            self.stats["last_error"] = f"{CONFIGURE_FAILED}: {type(exc).__name__}: {exc}"
            self.get_logger().error(self.stats["last_error"])
            return TransitionCallbackReturn.FAILURE
        if self.stats["last_error"].startswith(CONFIGURE_FAILED):
            self.stats["last_error"] = ""
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.open_inputs()
        return super().on_activate(state)  # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close_inputs()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close_inputs()
        self.release()
        return super().on_shutdown(state)

    def autostart(self) -> bool:
        """Configure and activate now if `autostart` is set; False if that failed."""
        if not self.param("autostart"):
            self.get_logger().info("autostart is off: unconfigured until a lifecycle manager "
                                   "configures and activates this node")
            return True
        return (self.trigger_configure() == TransitionCallbackReturn.SUCCESS
                and self.trigger_activate() == TransitionCallbackReturn.SUCCESS)

    @property
    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]

    # -- what subclasses build ---------------------------------------------------------------
    def configure(self) -> None:
        """Load the model and make the outputs (`create_output`); raise to fail."""

    def release(self) -> None:
        """Undo `configure`: the base drops the outputs; subclasses also free their model."""
        for pub in self._outputs:
            self.destroy_lifecycle_publisher(pub)
        self._outputs.clear()
        self.debug_pub = None
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()  # the freed model's GPU memory goes back, as yolo_ros does

    def open_inputs(self) -> None:
        """Subscribe to `image` (`<image>/compressed` with image_transport:=compressed) and
        `camera_info` (best effort: matches reliable and best-effort camera drivers alike).
        Subclasses add or replace inputs."""
        compressed = self.param("image_transport") == "compressed"
        topic = self.resolve_topic_name("image") + "/compressed" if compressed else "image"
        self.create_input(CompressedImage if compressed else Image, topic, self._on_image,
                          image_qos(self.param("image_reliability")),
                          qos_hint="set image_reliability to match the camera")
        self.create_input(CameraInfo, "camera_info", self._on_camera_info, CAMERA_INFO_QOS)

    def close_inputs(self) -> None:
        """Undo `open_inputs`; a frame waiting for the worker is dropped, one in work finished."""
        for entity in self._inputs:
            destroy = self.destroy_timer if isinstance(entity, Timer) else self.destroy_subscription
            destroy(entity)
        self._inputs.clear()
        with self._cv:
            self._queue.clear()
        with self._processing:
            pass

    def create_output(self, msg_type, topic: str, qos):
        pub = self.create_lifecycle_publisher(msg_type, topic, qos)
        self._outputs.append(pub)
        return pub

    def create_debug_output(self, topic: str) -> None:
        self.debug_pub = self.create_output(Image, topic, DEBUG_QOS)

    def create_input(self, msg_type, topic: str, callback, qos, qos_hint: str = "", **kwargs):
        """A subscription of the active state; an incompatible publisher is logged (what
        differs, and `qos_hint`) instead of silently never matching."""
        if "event_callbacks" not in kwargs:
            kwargs["event_callbacks"] = SubscriptionEventCallbacks(
                incompatible_qos=lambda e, t=topic: self.get_logger().error(
                    f"{t} subscription: incompatible QoS with a publisher (policy "
                    f"{e.last_policy_kind})" + (f"; {qos_hint}" if qos_hint else ""),
                    throttle_duration_sec=5.0))
        sub = self.create_subscription(msg_type, topic, callback, qos, **kwargs)
        self._inputs.append(sub)
        return sub

    def create_input_timer(self, period: float, callback):
        timer = self.create_timer(period, callback)
        self._inputs.append(timer)
        return timer

    # -- wiring -----------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        if msg.k[0] > 0 and msg.k[4] > 0:
            self.intrinsics = CameraIntrinsics.from_k(msg.k)

    def _on_image(self, msg: Image) -> None:
        self.submit(msg)

    #: units of work that may wait for the worker: 1 = the newest frame only (image nodes);
    #: paired nodes keep a few so a burst of face results is answered, not dropped
    WORK_QUEUE = 1

    def submit(self, *item) -> None:
        """Hand a unit of work to the worker; past WORK_QUEUE waiting, the oldest is dropped
        (counted)."""
        with self._cv:
            self.stats["received"] += 1
            if len(self._queue) >= self.WORK_QUEUE:
                self._queue.popleft()
                self.stats["dropped"] += 1
            self._queue.append(item)
            self._cv.notify()

    def _work(self) -> None:
        while self._running and rclpy.ok(context=self.context):
            with self._cv:
                self._cv.wait_for(lambda: self._queue or not self._running, 0.2)
                item = self._queue.popleft() if self._queue else None
            if item is not None:
                self.run_item(item)

    def run_item(self, item: tuple) -> None:
        """`process(*item)` now, in the calling thread (the worker's; in a composed graph the
        face node's, which runs its eye and gaze nodes in turn: threads running models side
        by side on few cores each start their own intra-op threads and thrash), timed and
        counted; a failure is rejected, and the node keeps serving."""
        t0 = time.perf_counter()
        with self._processing:
            try:
                self.process(*item)
                self.stats["processed"] += 1
            except ImageError as exc:
                self.reject(str(exc))
            except Exception as exc:  # noqa: BLE001 - a node logs, reports, keeps serving
                if not rclpy.ok(context=self.context):
                    return  # stopping: the context went away under a publish
                self.reject(f"{type(exc).__name__}: {exc}")
        self.stats["last_ms"] = (time.perf_counter() - t0) * 1000.0
        self.stats["busy_ms"] += self.stats["last_ms"]  # / processed: mean time per item

    #: the log throttle of `reject`: one line per kind of problem per period, at most
    #: REJECT_KINDS_PER_PERIOD kinds per period, a table of at most REJECT_TABLE kinds
    REJECT_PERIOD, REJECT_KINDS_PER_PERIOD, REJECT_TABLE = 5.0, 8, 64

    def reject(self, reason: str) -> None:
        """Count, report and log a bad input: once per kind of problem every 5 s. The kind is
        the reason without its values (quoted text, numbers) and past its first 48
        characters, so 'unsupported encoding 'x1'' and '... 'y2'' are one kind; the table of
        kinds is bounded (the oldest go) and a flood of new kinds still logs a bounded count."""
        self.stats["rejected"] += 1
        self.stats["last_error"] = reason
        kind = re.sub(r"'[^']*'|\"[^\"]*\"|[-+]?\.?[0-9][0-9a-fA-FxX.eE+-]*", "#",
                      reason)[:48]
        now = time.monotonic()
        logged, period = self._last_logged, self.REJECT_PERIOD
        if now - logged.get(kind, -1e9) < period:
            return
        if sum(now - t < period for t in list(logged.values())) >= self.REJECT_KINDS_PER_PERIOD:
            return  # counted in stats and /diagnostics, not logged
        logged.pop(kind, None)
        logged[kind] = now  # dicts keep insertion order: the first key is the oldest
        while len(logged) > self.REJECT_TABLE:
            del logged[next(iter(logged))]
        self.get_logger().error(f"input rejected: {reason}")

    def process(self, *item) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop_with_error(self, reason: str, code: int = 1) -> None:
        """End the node (from any thread): log `reason`, stop spinning, exit with `code`."""
        self.stats["last_error"] = reason
        self.get_logger().error(reason)
        self.exit_code = code
        if rclpy.ok(context=self.context):
            rclpy.shutdown(context=self.context)

    # -- helpers for subclasses ---------------------------------------------------------------
    def to_rgb(self, msg):
        return msg_to_rgb(msg)

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
        state = self.lifecycle_state
        if state != "active":
            failed = s["last_error"].startswith(CONFIGURE_FAILED)
            level = DiagnosticStatus.ERROR if failed else DiagnosticStatus.WARN
            message = f"{state}: " + (s["last_error"] if failed else "not processing")
        values = {k: str(v) for k, v in s.items()}
        values["lifecycle_state"] = state
        values.update({f"threads_{k}": str(v) for k, v in current_threads().items()})
        if state in ("inactive", "active"):
            values.update(self.diagnostic_values())
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status.append(DiagnosticStatus(
            level=level, name=f"gaze_perception: {self.get_fully_qualified_name()}",
            message=message, hardware_id=values.get("device", ""),
            values=[KeyValue(key=k, value=v) for k, v in values.items()]))
        self.diag_pub.publish(arr)

    def destroy_node(self):
        if self.lifecycle_state == "active":
            self.close_inputs()
        self._running = False
        with self._cv:
            self._cv.notify_all()
        return super().destroy_node()


def spin(node_cls, args=None) -> None:
    """Standard main(): init, autostart, spin until Ctrl-C / SIGTERM / shutdown, clean up. The
    process ends with its parent (lifetime.py). A node that fails to autostart exits with
    status 1 (its reason is in the log), as does one that called `stop_with_error`."""
    spin_nodes(lambda: [node_cls()], args)


def spin_nodes(make_nodes: Callable[[], list], args=None) -> None:
    """`spin` for the nodes `make_nodes()` builds after rclpy.init (several: one executor with
    a thread per node, nodes/composed.py); the process fails when any of them does."""
    die_with_parent()
    try:
        rclpy.init(args=args)
        nodes = make_nodes()
    except KeyboardInterrupt:  # stopped while starting (its graph stopped first): no traceback
        if rclpy.ok():
            rclpy.shutdown()
        return
    started = False
    # one node: rclpy's global executor, as before the composed graph existed
    executor = (None if len(nodes) == 1 else
                rclpy.executors.MultiThreadedExecutor(num_threads=len(nodes) + 1))
    try:
        started = all([node.autostart() for node in nodes])  # every one, even after a failure
        if started and executor is None:
            rclpy.spin(nodes[0])
        elif started:
            for node in nodes:
                executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        started = True
    except Exception:  # noqa: BLE001
        if rclpy.ok():
            raise
        started = True  # SIGTERM shut the context down under the executor's wait: a stop
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=0)
        for node in nodes:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    code = next((n.exit_code for n in nodes if n.exit_code), 0)
    if not started or code:
        sys.exit(code or 1)
