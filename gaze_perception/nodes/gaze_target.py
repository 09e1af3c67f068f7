"""Gaze-target node: `image` + `faces` → `gaze_targets` (gaze_msgs/GazeTargetArray)."""
from __future__ import annotations

from gaze_msgs.msg import FaceLandmarksArray, GazeTargetArray

from ..core.draw import annotate
from ..core.types import FrameResult
from ..messages import gaze_to_msg, landmark_directions
from . import hri
from .common import DEBUG_QOS, OUTPUT_QOS, spin
from .paired import PairedNode


class GazeTargetNode(PairedNode):
    KIND = "gaze_target"
    PARAMS = {
        "backend": ("head_pose", "gaze-target backend: head_pose (geometric) or gazelle", None),
        "publish_heatmaps": (False, "fill GazeTarget.heatmap (backends that make heatmaps: "
                             "gazelle)", None),
        "rep155": hri.REP155_PARAM,
        "landmark_directions": (False, "join `faces/landmarks` (the face node's landmark stage) "
                                "by stamp and aim along its eyes' gaze directions, as `run` "
                                "does, instead of the backend computing them again (backends "
                                "that take directions: head_pose)", None),
    }
    READ_ONLY = PairedNode.READ_ONLY + ("publish_heatmaps", "rep155", "landmark_directions")

    def __init__(self, **kwargs):
        super().__init__("gaze_target", **kwargs)

    def configure(self) -> None:
        super().configure()
        self.backend.prepare(frozenset({"eye_directions"}) if self.extras else frozenset())
        self.pub = self.create_output(GazeTargetArray, "gaze_targets", OUTPUT_QOS)
        self.create_debug_output("gaze_targets/debug_image")
        self.hri = hri.GazeHri(self) if hri.wanted(self) else None  # gaze TF, who looks at whom
        self.markers = hri.GazeMarkers(self, DEBUG_QOS)  # RViz, made while subscribed
        precision = getattr(self.backend, "precision", None)
        self.get_logger().info(f"gaze-target node ready: backend={self.param('backend')}"
                               + (f", precision={precision}" if precision else ""))

    def release(self) -> None:
        if getattr(self, "hri", None) is not None:
            self.hri.close()
            self.hri = None
        super().release()

    def diagnostic_values(self):
        markers = getattr(self, "markers", None)
        return {**super().diagnostic_values(),
                "markers_published": str(markers.published if markers else 0)}

    def extra_inputs(self) -> dict:
        if self.param("landmark_directions"):
            return {"landmarks": (FaceLandmarksArray, "faces/landmarks")}
        return {}

    def implied_params(self) -> dict:
        return {"heatmaps": True} if self.param("publish_heatmaps") else {}

    def given(self, faces, extras: dict) -> dict:
        landmarks = extras.get("landmarks")
        if landmarks is not None and "eye_directions" in self.backend.uses:
            return {"eye_directions": [landmark_directions(landmarks, len(faces))]}
        return {}

    def process_pair(self, rgb, faces, image_msg, ctx) -> None:
        k = ctx.intrinsics[0]
        targets = self.backend.estimate([rgb], [faces], ctx)[0] if faces else []
        self.pub.publish(gaze_to_msg(targets, faces, image_msg.header,
                                     with_heatmaps=self.param("publish_heatmaps")))
        if self.hri is not None:
            self.hri.publish(faces, targets, image_msg.header, k)
        if self.markers.wanted():
            self.markers.publish(faces, targets, image_msg.header, k)
        if self.debug_wanted():
            h, w = rgb.shape[:2]
            self.publish_debug(annotate(rgb, FrameResult(w, h, faces, gaze=targets)),
                               image_msg.header)


def main(args=None):
    spin(GazeTargetNode, args)


if __name__ == "__main__":
    main()
