"""Face detector node: `image` (sensor_msgs/Image) → `faces` (gaze_msgs/FaceArray)."""
from __future__ import annotations

import json

from sensor_msgs.msg import Image

from gaze_msgs.msg import FaceArray

from .. import registry
from ..core.draw import annotate
from ..core.head_pose import fill_head_pose
from ..core.tracking import Tracker, TrackerConfig
from ..core.types import CameraIntrinsics, FrameResult
from ..graph import FACE_DETECTOR_PARAMS
from .common import OUTPUT_QOS, PerceptionNode, mapping_ok, spin
from .convert import faces_to_msg


def _thresholds_ok(v):
    if len(v) != 3 or not all(0.0 <= t <= 1.0 for t in v):
        return "thresholds must be three values in [0, 1] (P-Net, R-Net, O-Net)"
    return None


class FaceDetectorNode(PerceptionNode):
    PARAMS = {
        "backend": ("mtcnn", "face detector backend (see `gaze-perception backends`)", None),
        "weights_dir": ("", "folder with weights and manifest.yaml; empty = package default", None),
        "min_face_size": (20, "mtcnn: smallest face in pixels",
                          lambda v: None if v >= 12 else "must be >= 12"),
        "thresholds": ([0.6, 0.7, 0.7], "mtcnn: per-stage score thresholds", _thresholds_ok),
        "max_faces": (0, "keep at most N faces, 0 = all", lambda v: None if v >= 0 else "must be >= 0"),
        "backend_params": ("{}", "further backend parameters as a JSON object, e.g. "
                           "{\"score_threshold\": 0.6} for yunet", mapping_ok),
        "head_pose": (True, "fill yaw/pitch/roll from landmarks (solvePnP)", None),
        "tracking": (False, "fill Face.track_id, stable across frames (core/tracking.py)", None),
        "tracking_max_age": (TrackerConfig.max_age, "frames a track keeps its id unseen",
                             lambda v: None if v >= 0 else "must be >= 0"),
        "tracking_min_hits": (TrackerConfig.min_hits, "matches in a row before a track gets an id",
                              lambda v: None if v >= 1 else "must be >= 1"),
        "tracking_min_iou": (TrackerConfig.min_iou, "overlap with the predicted box that matches",
                             lambda v: None if 0.0 <= v <= 1.0 else "must lie in [0, 1]"),
        "tracking_max_distance": (TrackerConfig.max_distance, "centre distance that matches, in "
                                  "box sizes", lambda v: None if v > 0 else "must be > 0"),
    }
    READ_ONLY = PerceptionNode.READ_ONLY + ("backend", "weights_dir", "backend_params")
    DETECTOR_PARAMS = FACE_DETECTOR_PARAMS
    CASCADE_PARAMS = ("min_face_size", "thresholds")  # only the mtcnn backend has these

    def __init__(self, **kwargs):
        super().__init__("face_detector", **kwargs)
        self.detector = self.tracker = None
        self.add_post_set_parameters_callback(self._on_params_set)

    def configure(self) -> None:
        self.detector = self._build_detector()
        self.tracker = self._build_tracker()
        self.pub = self.create_output(FaceArray, "faces", OUTPUT_QOS)
        self.create_debug_output("faces/debug_image")
        self.get_logger().info(f"face detector ready: backend={self.param('backend')}, "
                               f"device={self.detector.device}")

    def release(self) -> None:
        self.detector = self.tracker = None
        super().release()

    def _build_detector(self):
        kw = {"max_faces": self.param("max_faces"),
              **json.loads(self.param("backend_params") or "{}")}
        if self.param("backend") == "mtcnn":
            kw.update(min_face_size=self.param("min_face_size"),
                      thresholds=tuple(self.param("thresholds")))
        return registry.create("face_detector", self.param("backend"), device=self.param("device"),
                               weights_dir=self.param("weights_dir") or None, **kw)

    def _build_tracker(self):
        if not self.param("tracking"):
            return None
        return Tracker(TrackerConfig(**{k: self.param(f"tracking_{k}")
                                        for k in TrackerConfig().as_dict()}))

    def _on_params_set(self, params) -> None:
        if self.detector is None:  # unconfigured: `configure` reads the new values
            return
        if any(p.name in self.DETECTOR_PARAMS for p in params):
            self.detector = self._build_detector()
        if any(p.name.startswith("tracking") for p in params):
            self.tracker = self._build_tracker()

    def process(self, msg: Image) -> None:
        rgb = self.to_rgb(msg)
        h, w = rgb.shape[:2]
        faces = self.detector.detect([rgb])[0]
        if self.param("head_pose"):
            k = self.intrinsics or CameraIntrinsics.guess(w, h)
            for f in faces:
                fill_head_pose(f, k)
        if self.tracker:
            self.tracker.update(faces)
        self.pub.publish(faces_to_msg(faces, msg.header, w, h))
        if self.debug_wanted():
            self.publish_debug(annotate(rgb, FrameResult(w, h, faces)), msg.header)

    def diagnostic_values(self):
        return {"backend": self.param("backend"), "device": str(self.detector.device)}


def main(args=None):
    spin(FaceDetectorNode, args)


if __name__ == "__main__":
    main()
