"""Gaze-direction node: `image` + `faces` → `gaze_directions` (gaze_msgs/GazeDirectionArray),
one per face: the appearance-based gaze of the `direction` stage (l2cs angles, itracker
screen points)."""
from __future__ import annotations

from gaze_msgs.msg import GazeDirectionArray

from ..messages import directions_to_msg
from .common import OUTPUT_QOS, spin
from .paired import PairedNode


class GazeDirectionNode(PairedNode):
    KIND = "gaze_direction"
    PARAMS = {"backend": ("l2cs", "gaze-direction backend (see `gaze-perception backends`); "
                          "its `weights` go in backend_params", None)}

    def __init__(self, **kwargs):
        super().__init__("gaze_direction", **kwargs)

    def configure(self) -> None:
        super().configure()
        self.pub = self.create_output(GazeDirectionArray, "gaze_directions", OUTPUT_QOS)
        self.get_logger().info(f"gaze-direction node ready: {self.backend.describe()}")

    def process_pair(self, rgb, faces, image_msg, ctx) -> None:
        directions = self.backend.estimate([rgb], [faces], ctx)[0] if faces else []
        self.pub.publish(directions_to_msg(directions, faces, image_msg.header))


def main(args=None):
    spin(GazeDirectionNode, args)


if __name__ == "__main__":
    main()
