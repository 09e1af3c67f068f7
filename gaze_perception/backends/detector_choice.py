"""The face detector a command names (`--detector`, `--detector-params`): a face-detector
backend, or `none` when the frames are face crops already. Shared by `code-video` and
`train gaze-coding`."""
from __future__ import annotations

import argparse
import json


def add_detector_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", default="mtcnn",
                   help="face detector backend (see `gaze-perception backends`), or none when "
                        "the frames are face crops already (default mtcnn)")
    p.add_argument("--detector-params", default="{}",
                   help="detector parameters as JSON, e.g. '{\"min_face_size\": 40}'")


class WholeFrame:
    """`--detector none`: every frame is one face (clips of face crops)."""

    def detect(self, images):
        from ..core.types import Face

        return [[Face(0, 0, im.shape[1], im.shape[0])] for im in images]


def make_detector(args):
    """The face detector backend the arguments name (WholeFrame for `none`)."""
    from ..core import registry

    if args.detector == "none":
        return WholeFrame()
    try:
        params = json.loads(args.detector_params)
    except ValueError as exc:
        raise ValueError(f"--detector-params must be a JSON object: {exc}") from None
    if not isinstance(params, dict):
        raise ValueError("--detector-params must be a JSON object")
    return registry.create("face_detector", args.detector, device=args.device, **params)
