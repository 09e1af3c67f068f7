"""Source node: a camera, video file, image folder, image or stream URL → `image`
(sensor_msgs/Image, rgb8) and, with a calibration file, `camera_info` with the same header.

Frames are stamped with the node's clock when they are published (sim time when
`use_sim_time` is set), so stamps increase across loops and match what a camera driver sends.
At the end of a file without `loop` the node stays up and idle, like a camera with no signal,
so a graph started by `gaze-perception up` does not read it as a crash."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from ..core.calibration import load_calibration
from ..core.sources import VIDEO_EXTS, FrameSource, SourceError
from ..messages import rgb_to_image
from .common import PerceptionNode, spin
from .params import Range

#: publish rate of images and folders when `rate` is 0
STILL_RATE = 10.0
#: reliable publishing serves both best-effort and reliable subscribers; depth 1: newest frame
PUBLISH_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


def open_capture(source: str) -> cv2.VideoCapture:
    """A camera index or a URL, opened now so that a wrong one fails at start-up."""
    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise SourceError(f"cannot open camera or stream '{source}'")
    return cap


def _captured(cap: cv2.VideoCapture) -> Iterator:
    """Frames (RGB) of an open capture, as long as they come (it stays open: `release`)."""
    while True:
        ok, bgr = cap.read()
        if not ok:
            return
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _check_video(path: str) -> None:
    """A video file whose first frame decodes; SourceError with the reason otherwise."""
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened() or not cap.read()[0]:
            raise SourceError(f"video '{path}' has no readable frame (damaged, or a codec "
                              "OpenCV cannot decode)")
    finally:
        cap.release()


class SourceNode(PerceptionNode):
    MODEL_NODE = False  # `threads: 0` = one thread
    PARAMS = {
        "source": ("0", "camera index, video file, image folder, image, or a URL OpenCV opens",
                   lambda v: None if v else "must not be empty"),
        "rate": (0.0, f"frames per second; 0 = a video's own rate, as fast as a camera "
                 f"delivers, {STILL_RATE:g} for images",
                 Range(0.0, 10000.0)),
        "loop": (False, "start a file or folder again at its end", None),
        "frame_id": ("camera", "header.frame_id of the images", None),
        "camera_info": ("", "calibration YAML (ROS camera_calibration or OpenCV); empty = none",
                        None),
        "wait_for_subscribers": (0, "start once this many nodes subscribe to `image` (so no "
                                 "frame of a file is lost while models load); 0 = at once",
                                 Range(0, 1000)),
    }
    READ_ONLY = PerceptionNode.READ_ONLY + tuple(PARAMS)

    def __init__(self, **kwargs):
        super().__init__("source", **kwargs)
        self.frames = None
        self._stop = threading.Event()
        self._thread = None

    def configure(self) -> None:
        source = self.param("source")
        self.is_file = not source.isdigit() and "://" not in source
        # opened now, so that a bad path or camera fails `configure` with the reason
        self.frames = FrameSource(source) if self.is_file else open_capture(source)
        if self.is_file and self.frames.kind == "video":
            _check_video(source)
        rate = self.param("rate") or (self._native_rate(source) if self.is_file else 0.0)
        self.period = 1.0 / rate if rate > 0 else 0.0
        self.info = None
        if self.param("camera_info"):
            cal = load_calibration(self.param("camera_info"))
            self.info = CameraInfo(width=cal.width, height=cal.height, k=cal.k, d=cal.d, r=cal.r,
                                   p=cal.p, distortion_model=cal.distortion_model)
        self.image_pub = self.create_output(Image, "image", PUBLISH_QOS)
        self.info_pub = self.create_output(CameraInfo, "camera_info", PUBLISH_QOS)
        self.get_logger().info(f"source ready: {source} at "
                               f"{f'{1 / self.period:g} Hz' if self.period else 'its own rate'}")

    def open_inputs(self) -> None:
        """The frames are this node's input: a thread publishes them while active."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="source", daemon=True)
        self._thread.start()

    def close_inputs(self) -> None:
        self._stop.set()
        # from the thread itself when it ends the node (`stop_with_error`): nothing to wait for
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        super().close_inputs()

    def release(self) -> None:
        if self.frames is not None and not self.is_file:
            self.frames.release()
        self.frames = None
        super().release()

    def _native_rate(self, source: str) -> float:
        if Path(source).suffix.lower() not in VIDEO_EXTS:
            return STILL_RATE
        cap = cv2.VideoCapture(source)
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        return fps if fps > 0 else STILL_RATE

    def _frames(self) -> Iterator:
        if not self.is_file:
            yield from _captured(self.frames)
            return
        while True:
            yield from (f.rgb for f in self.frames)
            if not self.param("loop"):
                return

    def _run(self) -> None:
        wanted = self.param("wait_for_subscribers")
        while self.image_pub.get_subscription_count() < wanted:
            if self._stop.wait(0.05):
                return
        if wanted and self._stop.wait(0.5):  # let discovery settle in both directions
            return
        due = time.monotonic()
        problem = ""
        try:
            for rgb in self._frames():
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                self._publish(rgb)
                due = max(due + self.period, time.monotonic())  # after a stall: no burst
        except SourceError as exc:
            problem = str(exc)
        except Exception:  # noqa: BLE001 - a publish racing a shutdown (Ctrl-C) is no error
            if self._stop.is_set() or not rclpy.ok(context=self.context):
                return
            raise
        if self._stop.is_set():
            return
        if not self.stats["processed"]:  # nothing to show for it: stop the graph, say why
            skipped = "; ".join(f"{n}: {r}" for n, r in getattr(self.frames, "skipped", [])[:3])
            self.stop_with_error(f"source '{self.param('source')}' gave no frame"
                                 f"{': ' + (problem or skipped) if problem or skipped else ''}")
            return
        if problem:
            self.reject(problem)
        self.get_logger().info(f"source ended after {self.stats['processed']} frames")

    def _publish(self, rgb) -> None:
        msg = rgb_to_image(rgb, None)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.param("frame_id")
        self.image_pub.publish(msg)
        if self.info is not None:
            if (self.info.width, self.info.height) != (msg.width, msg.height):
                self.reject(f"camera_info is for {self.info.width}x{self.info.height}, "
                            f"images are {msg.width}x{msg.height}")
            self.info.header = msg.header
            self.info_pub.publish(self.info)
        self.stats["processed"] += 1

    def diagnostic_values(self):
        return {"source": self.param("source"),
                "rate_hz": f"{1 / self.period:g}" if self.period else "native"}


def main(args=None):
    spin(SourceNode, args)


if __name__ == "__main__":
    main()
