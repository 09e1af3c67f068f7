"""`gaze-perception code-video VIDEO --out CSV`: infant gaze codes for every frame of a video
(or a folder of frames), with confidences, iCatcher+-style but without ROS.

Faces come from a face-detector backend; the `icatcher` backend picks the infant and
classifies it; codes are smoothed over a window centred on each frame (the whole video is
known, so there is no lag) and optionally corrected by iCatcher+ illegal-transition rules.
Columns: frame, time (s), code, confidence (smoothed probability of the code), raw_code,
p_away, p_left, p_right (this frame alone, empty without a face), face_index, x, y, width,
height (the coded face box, pixels).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from tqdm import tqdm

from ..backends.detector_choice import add_detector_args, make_detector
from ..core.gaze_coding import (CODES, SELECTIONS, SMOOTHING, NO_FACE, Smoother,
                                read_illegal_transitions)
from .args import EXIT_OK, EXIT_PARTIAL, input_file, output_file, positive_int

#: what to do without a model: none ships with the package
NEEDS_WEIGHTS = ("code-video needs a trained gaze-coding checkpoint, and no model ships with the "
                 "package: train one on your coded clips with `gaze-perception train gaze-coding "
                 "--data clips/ --out runs/coding` (clips/NAME.mp4 + NAME.csv of frame,code), "
                 "then pass `--weights runs/coding/best.pt`")

COLUMNS = ["frame", "time", "code", "confidence", "raw_code", "p_away", "p_left", "p_right",
           "face_index", "x", "y", "width", "height"]


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", type=Path, help="video file or folder of frames")
    p.add_argument("--out", required=True, type=output_file, help="CSV to write")
    p.add_argument("--weights",
                   help="gaze-coding checkpoint (from `gaze-perception train gaze-coding`) or "
                        "manifest name; required: no default model ships with the package")
    add_detector_args(p)
    p.add_argument("--select", choices=sorted(SELECTIONS), default="icatcher",
                   help="which face is the infant (default icatcher: low and square)")
    p.add_argument("--smoothing", choices=SMOOTHING, default="mean",
                   help="mean probability (default), majority vote, or none")
    p.add_argument("--window", type=int, default=9,
                   help="smoothing window in frames, centred on each frame (default 9)")
    p.add_argument("--illegal-transitions", type=input_file,
                   help="iCatcher+ illegal-transitions CSV applied after smoothing")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--batch-size", type=positive_int, default=8,
                   help="frames per batch (default 8)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")


def _row(index: int, time: float, code) -> list:
    probs = [f"{p:.4f}" for p in code.probs[:3]] if code.raw_code != NO_FACE else ["", "", ""]
    box = [f"{v:.1f}" for v in code.box] if code.box else ["", "", "", ""]
    return [index, f"{time:.3f}", CODES[code.code], f"{code.confidence:.4f}",
            CODES[code.raw_code], *probs, code.face_index, *box]


def main(args) -> int:
    from ..core import registry
    from ..core.sources import FrameSource, SourceError, batched
    from ..core.weights import WeightsError

    if not args.weights:
        raise ValueError(NEEDS_WEIGHTS)
    rules = read_illegal_transitions(args.illegal_transitions) if args.illegal_transitions \
        else ()
    smoother = Smoother(args.smoothing, args.window, centered=True, rules=rules)
    source = FrameSource(args.video, on_skip=lambda name, reason: tqdm.write(
        f"skipped {name}: {reason}", file=sys.stderr))
    detector = make_detector(args)
    try:
        coder = registry.create("gaze_coding", "icatcher", weights=args.weights,
                                device=args.device, select=args.select)
    except WeightsError as exc:
        raise WeightsError(f"{exc}. {NEEDS_WEIGHTS}") from None
    total = min(len(source), args.max_frames or len(source)) or None
    frames = (f for f in source if args.max_frames is None or f.index < args.max_frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(args.out, "w", newline="") as fh, \
            tqdm(total=total, desc="coding", unit="frame", disable=None) as bar:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for batch in batched(frames, args.batch_size):
            rgbs = [f.rgb for f in batch]
            for frame, code in zip(batch, coder.estimate(rgbs, detector.detect(rgbs))):
                for (index, time), final in smoother.push(code, (frame.index, frame.stamp)):
                    writer.writerow(_row(index, time, final))
                    written += 1
            bar.update(len(batch))
        for (index, time), final in smoother.flush():
            writer.writerow(_row(index, time, final))
            written += 1
    print(f"{written} frames coded -> {args.out}")
    if source.skipped and not written:
        raise SourceError(f"no frame of '{args.video}' could be read ({len(source.skipped)} "
                          "input(s) skipped, named above)")
    if source.skipped:
        print(f"finished with {len(source.skipped)} input(s) skipped (named above; their rows "
              "are missing from the CSV)", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK

