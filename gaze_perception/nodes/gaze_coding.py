"""Gaze-coding node: `image` + `faces` → `gaze_coding` (gaze_msgs/GazeCoding), one per frame.

The backend codes each frame's infant face; a Smoother over the stream smooths the codes.
With the default trailing window each coding is published as soon as its frame is processed;
`centered` (and illegal-transition rules) delay it by a few frames, and it still carries the
header of the frame it codes.
"""
from __future__ import annotations

import os

from gaze_msgs.msg import GazeCoding

from ..core.gaze_coding import SMOOTHING, Smoother, read_illegal_transitions
from ..messages import coding_to_msg
from .common import OUTPUT_QOS, spin
from .paired import PairedNode
from .params import Range


class GazeCodingNode(PairedNode):
    KIND = "gaze_coding"
    PARAMS = {
        "backend": ("icatcher", "gaze-coding backend (see `gaze-perception backends`); its "
                    "`weights` go in backend_params", None),
        "smoothing": ("mean", f"temporal smoothing: {' | '.join(SMOOTHING)}",
                      lambda v: None if v in SMOOTHING else f"must be one of {SMOOTHING}"),
        "window": (5, "smoothing window in frames", Range(1, 10000)),
        "centered": (False, "centre the window on each frame: no lag in the codes, but each "
                     "coding is published window/2 frames later", None),
        "illegal_transitions": ("", "iCatcher+ illegal-transitions CSV ('' = none)",
                                lambda v: None if not v or os.path.isfile(v)
                                else f"no such file '{v}'"),
    }
    READ_ONLY = PairedNode.READ_ONLY + ("smoothing", "window", "centered",
                                        "illegal_transitions")

    def __init__(self, **kwargs):
        super().__init__("gaze_coding", **kwargs)

    def configure(self) -> None:
        super().configure()
        rules_file = self.param("illegal_transitions")
        self.smoother = Smoother(self.param("smoothing"), self.param("window"),
                                 self.param("centered"),
                                 read_illegal_transitions(rules_file) if rules_file else ())
        self.pub = self.create_output(GazeCoding, "gaze_coding", OUTPUT_QOS)
        self.get_logger().info(f"gaze-coding node ready: {self.backend.describe()}, "
                               f"smoothing={self.param('smoothing')}/{self.param('window')}")

    def process_pair(self, rgb, faces, image_msg, ctx) -> None:
        code = self.backend.estimate([rgb], [faces], ctx)[0]
        for header, final in self.smoother.push(code, image_msg.header):
            self.pub.publish(coding_to_msg(final, header))


def main(args=None):
    spin(GazeCodingNode, args)


if __name__ == "__main__":
    main()
