"""Face detector node: `image` (sensor_msgs/Image) → `faces` (gaze_msgs/FaceArray)."""
from __future__ import annotations

import json

from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import Image

from gaze_msgs.msg import FaceArray, FaceLandmarksArray

from ..core import registry
from ..core.draw import annotate
from ..core.face_stage import FaceStage
from ..core.stages import frame_context
from ..core.tracking import Tracker, TrackerConfig
from ..core.types import FrameResult
from ..graph import FACE_DETECTOR_PARAMS
from ..messages import as_received, faces_to_msg, landmarks_to_msg
from . import hri
from .common import OUTPUT_QOS, PerceptionNode, mapping_ok, spin
from .params import BackgroundReload, Range


def _thresholds_ok(v):
    if len(v) != 3:
        return "thresholds must be three values in [0, 1] (P-Net, R-Net, O-Net)"
    return None


class FaceDetectorNode(PerceptionNode):
    PARAMS = {
        "backend": ("mtcnn", "face detector backend (see `gaze-perception backends`)", None),
        "weights_dir": ("", "folder with weights and manifest.yaml; empty = package default", None),
        "min_face_size": (20, "mtcnn: smallest face in pixels", Range(12, 4096)),
        "thresholds": ([0.6, 0.7, 0.7], "mtcnn: per-stage score thresholds (P-Net, R-Net, "
                       "O-Net)", Range(0.0, 1.0, also=_thresholds_ok, note="three values")),
        "max_faces": (0, "keep at most N faces, 0 = all", Range(0, 10000)),
        "backend_params": ("{}", "further backend parameters as a JSON object, e.g. "
                           "{\"score_threshold\": 0.6} for yunet", mapping_ok),
        "head_pose": (True, "fill yaw/pitch/roll: from the dense mesh where `landmarks` is on, "
                      "else from the five landmarks (solvePnP)", None),
        "landmarks": ("", "dense landmark backend (e.g. mediapipe; empty = off): head pose from "
                      "the mesh, and `faces/landmarks` with the points, the eyes' gaze and "
                      "P(looking at the camera)", None),
        "landmarks_params": ("{}", "parameters of the landmark backend as a JSON object",
                             mapping_ok),
        "tracking": (False, "fill Face.track_id, stable across frames (core/tracking.py)", None),
        "tracking_max_age": (TrackerConfig.max_age, "frames a track keeps its id unseen",
                             Range(0, 100000)),
        "tracking_min_hits": (TrackerConfig.min_hits, "matches in a row before a track gets an id",
                              Range(1, 1000)),
        "tracking_min_iou": (TrackerConfig.min_iou, "overlap with the predicted box that matches",
                             Range(0.0, 1.0)),
        "tracking_max_distance": (TrackerConfig.max_distance, "centre distance that matches, in "
                                  "box sizes", Range(0.0, 100.0, above=True)),
        "rep155": hri.REP155_PARAM,
    }
    READ_ONLY = PerceptionNode.READ_ONLY + ("backend", "weights_dir", "backend_params",
                                            "landmarks", "landmarks_params", "rep155")
    DETECTOR_PARAMS = FACE_DETECTOR_PARAMS
    CASCADE_PARAMS = ("min_face_size", "thresholds")  # only the mtcnn backend has these

    def __init__(self, **kwargs):
        super().__init__("face_detector", **kwargs)
        self.stage = FaceStage()  # detector, landmarker, tracker: core/face_stage.py
        self.downstream = []  # PairedNodes fed in this process (nodes/composed.py)
        self.reload = BackgroundReload(self, self.DETECTOR_PARAMS)
        self.add_on_set_parameters_callback(lambda ps: SetParametersResult(
            successful=self.reload.refusal(ps) is None, reason=self.reload.refusal(ps) or ""))
        self.add_post_set_parameters_callback(self._on_params_set)

    def configure(self) -> None:
        self.stage = FaceStage(self._build_detector(), None, self._build_tracker(),
                               self.param("head_pose"))
        self.reload.remember()
        self.pub = self.create_output(FaceArray, "faces", OUTPUT_QOS)
        self.pub_landmarks = None
        if self.param("landmarks"):
            self.stage.landmarker = registry.create(
                "face_landmarks", self.param("landmarks"), device=self.param("device"),
                **json.loads(self.param("landmarks_params") or "{}"))
            self.pub_landmarks = self.create_output(FaceLandmarksArray, "faces/landmarks",
                                                    OUTPUT_QOS)
        self.create_debug_output("faces/debug_image")
        self.hri = hri.FaceHri(self) if hri.wanted(self) else None  # REP-155 topics, face TF
        self.get_logger().info(f"face detector ready: backend={self.param('backend')}, "
                               f"device={self.stage.detector.device}")

    @property
    def detector(self):
        """The face detector in use (a background reload swaps it)."""
        return self.stage.detector

    def release(self) -> None:
        self.stage = FaceStage()
        if getattr(self, "hri", None) is not None:
            self.hri.close()
            self.hri = None
        super().release()

    def published_topics(self) -> list:
        """The resolved topics `process` publishes every frame (the composed graph feeds them)."""
        return [self.resolve_topic_name(t) for t in
                ["faces", *(["faces/landmarks"] if self.param("landmarks") else [])]]

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
        if self.stage.detector is None:  # unconfigured: `configure` reads the new values
            return
        if self.reload.wanted(params):  # a model rebuild: off the executor thread
            self.reload.start(self._build_detector, self._install_detector)
        if any(p.name.startswith("tracking") for p in params):
            self.stage.tracker = self._build_tracker()
        if any(p.name == "head_pose" for p in params):
            self.stage.head_pose = self.param("head_pose")

    def _install_detector(self, detector) -> None:
        if self.stage.detector is not None:  # not cleaned up meanwhile
            self.stage.detector = detector

    def process(self, msg: Image) -> None:
        rgb = self.to_rgb(msg)
        h, w = rgb.shape[:2]
        ctx = frame_context([rgb], [self.intrinsics])
        k = ctx.intrinsics[0]
        faces = self.stage.detect([rgb])[0]
        meshes, gazes = self.stage.finish([rgb], [faces], ctx)
        if meshes is not None:  # this frame's
            meshes, gazes = meshes[0], gazes[0]
        faces_msg = faces_to_msg(faces, msg.header, w, h)
        self.pub.publish(faces_msg)
        published = {self.pub.topic_name: faces_msg}
        if self.hri is not None:
            self.hri.publish(faces, rgb, msg.header, k)
        if meshes is not None:
            published[self.pub_landmarks.topic_name] = landmarks_to_msg(meshes, gazes, faces,
                                                                         msg.header, w, h)
            self.pub_landmarks.publish(published[self.pub_landmarks.topic_name])
        if self.downstream:  # composed graph: the eye and gaze nodes of this process
            # the faces as a subscriber gets them (float32 boxes); the landmarks as they are:
            # their reader uses the float64 gaze directions, and a round trip of 468 points
            # per face costs ~1.6 ms a face
            received = dict(published, **{self.pub.topic_name: as_received(faces_msg)})
            for node in self.downstream:
                node.feed(msg, rgb, self.intrinsics, received)
        if self.debug_wanted():
            self.publish_debug(annotate(rgb, FrameResult(w, h, faces)), msg.header)

    def diagnostic_values(self):
        return {"backend": self.param("backend"), "device": str(self.stage.detector.device)}


def main(args=None):
    spin(FaceDetectorNode, args)


if __name__ == "__main__":
    main()
