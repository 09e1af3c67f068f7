"""Eye-state node: `image` + `faces` → `eye_states` (gaze_msgs/EyeStateArray), one per face."""
from __future__ import annotations

from gaze_msgs.msg import EyeStateArray

from ..core.draw import annotate
from ..core.types import FrameResult
from ..messages import eyes_to_msg
from .common import OUTPUT_QOS, spin
from .paired import PairedNode


class EyeStateNode(PairedNode):
    KIND = "eye_state"
    PARAMS = {"backend": ("timm_eye", "eye-state backend (see `gaze-perception backends`)", None)}

    def __init__(self, **kwargs):
        super().__init__("eye_state", **kwargs)

    def configure(self) -> None:
        super().configure()
        self.pub = self.create_output(EyeStateArray, "eye_states", OUTPUT_QOS)
        self.create_debug_output("eye_states/debug_image")
        self.get_logger().info(f"eye-state node ready: backend={self.param('backend')}")

    def process_pair(self, rgb, faces, image_msg, ctx) -> None:
        eyes = self.backend.estimate([rgb], [faces], ctx)[0] if faces else []
        self.pub.publish(eyes_to_msg(eyes, faces, image_msg.header))
        if self.debug_wanted():
            h, w = rgb.shape[:2]
            self.publish_debug(annotate(rgb, FrameResult(w, h, faces, eyes=eyes)), image_msg.header)


def main(args=None):
    spin(EyeStateNode, args)


if __name__ == "__main__":
    main()
