"""`gaze-perception bag record|play|process|eval`: rosbag2 tools (gaze_perception/bags).
Imports happen per command, so `--help` does not load rclpy or torch.

Exit codes (cli/args.py): 0 done; 2 error, one line says why; 3 (EXIT_PARTIAL) done, but some
input was skipped (a damaged or missing bag file, a topic whose type is not installed here, a
message that does not decode): each skipped thing is named once, everything else was processed
and written.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from ..bags import STORAGE_NAMES
from .args import EXIT_OK, EXIT_PARTIAL

log = logging.getLogger("gaze_perception.bag")


def add_args(p) -> None:
    sub = p.add_subparsers(dest="bag_command", required=True)

    r = sub.add_parser("record", help="record topics into a new bag (Ctrl-C closes it)")
    r.add_argument("out", help="bag folder to create")
    r.add_argument("--topics", nargs="+", required=True, metavar="TOPIC",
                   help="topics to record; each is subscribed once a publisher appears")
    r.add_argument("--storage", choices=STORAGE_NAMES, default=STORAGE_NAMES[0])
    r.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="stop after S seconds (default: at SIGINT/SIGTERM)")

    pl = sub.add_parser("play", help="publish a bag with its recorded timing")
    pl.add_argument("bag", help="bag folder, or one .mcap / .db3 file")
    pl.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    pl.add_argument("--loop", action="store_true", help="start over at the end until Ctrl-C")
    pl.add_argument("--clock", type=float, nargs="?", const=40.0, default=0.0, metavar="HZ",
                    help="publish the bag time on /clock (default 40 Hz) for use_sim_time")
    pl.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics")
    pl.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                    help="first wait up to S seconds until every played topic has a subscriber")

    pr = sub.add_parser("process", help="run the pipeline offline over a bag's images")
    pr.add_argument("bag", help="bag folder, or one .mcap / .db3 file")
    pr.add_argument("--config", help="pipeline YAML or a name in config/ (default: default)")
    pr.add_argument("--out", required=True, help="bag folder to create")
    pr.add_argument("--image-topic", help="sensor_msgs/Image or CompressedImage topic "
                    "(default: the bag's only image topic)")
    pr.add_argument("--storage", choices=STORAGE_NAMES, default=STORAGE_NAMES[0])
    pr.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    pr.add_argument("--batch", type=int, default=1, help="frames per backend call")
    pr.add_argument("--heatmaps", action="store_true", help="include gaze heatmaps")
    pr.add_argument("--no-images", action="store_true", help="do not copy the images")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = sub.add_parser("eval", help="score a bag's recorded outputs against annotations")
    ev.add_argument("bag", help="bag folder, or one .mcap / .db3 file")
    ev.add_argument("--annotations", nargs="+", default=[], metavar="FILE",
                    help="VideoAttentionTarget text, one file per person: "
                    "frame,xmin,ymin,xmax,ymax,gazex,gazey")
    ev.add_argument("--eye-labels", metavar="FILE", help="CSV frame,face_index,label")
    ev.add_argument("--match", choices=("index", "stamp"), default="index",
                    help="annotation frames are positions (file names in sorted order, eye-label "
                    "frame numbers) or stamps in seconds")
    ev.add_argument("--boxes", choices=("head", "face"), default="head",
                    help="what the annotated boxes are: head boxes (VideoAttentionTarget; a "
                    "face matches the head box it lies in) or face boxes (matched by IoU)")
    ev.add_argument("--min-inside", type=float, metavar="SHARE",
                    help="--boxes head: least share of a face box inside the head box "
                    "(default 0.75)")
    ev.add_argument("--iou", type=float, default=0.5,
                    help="--boxes face: IoU for a correct face box")
    ev.add_argument("--gaze-iou", type=float, default=0.1,
                    help="--boxes face: least IoU pairing an annotated box with a recorded face "
                    "for gaze")
    for kind in ("faces", "eyes", "gaze"):
        ev.add_argument(f"--{kind}-topic", help=f"the {kind} topic where a bag has several")
    ev.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")


def main(args) -> int:
    return {"record": _record, "play": _play, "process": _process,
            "eval": _eval}[args.bag_command](args)


def _stop_event() -> threading.Event:
    """Set on SIGINT / SIGTERM, so a tool finishes cleanly (closes its bag) instead of dying."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _record(args) -> int:
    stop = _stop_event()
    from ..dds import node_env

    # The transport `up` gives its nodes (Fast DDS with a large shared-memory segment, unless
    # the user chose a profile): camera images are not lost in UDP fragments. Set before rclpy
    # creates the participant.
    os.environ.update(node_env())
    from ..bags.record import Recorder

    recorder = Recorder(args.out, args.topics, storage=args.storage)
    try:
        recorder.spin(stop, duration=args.duration)
    finally:
        never = recorder.pending()
        counts = recorder.close()
    if never:
        log.warning("never appeared (not recorded): %s", ", ".join(never))
    print(f"wrote {sum(counts.values())} messages to {args.out}: "
          + ", ".join(f"{t} {n}" for t, n in counts.items()), file=sys.stderr)
    return EXIT_OK


def _play(args) -> int:
    stop = _stop_event()
    from ..bags.bagfile import BagReader
    from ..bags.play import Player

    reader = BagReader(args.bag)
    player = Player(reader, topics=args.topics, rate=args.rate, clock_hz=args.clock)
    try:
        if args.wait_for_subscribers > 0 and not player.wait_for_subscribers(
                args.wait_for_subscribers, stop):
            log.warning("not every topic has a subscriber after %.1f s; playing anyway",
                        args.wait_for_subscribers)
        player.play(stop, loop=args.loop)
    finally:
        player.close()
        skipped = [f"{t} ({m or 'type unknown'}) not played: type not installed here"
                   for t, m in player.skipped.items()]
        print(_closing("published", player.published, reader, args.topics, skipped),
              file=sys.stderr)
    return EXIT_PARTIAL if skipped or reader.problems else EXIT_OK


def _closing(verb: str, done: int, reader, topics=None, skipped=()) -> str:
    """The last line of a command that read a bag: how many of the bag's messages it used and
    what it skipped."""
    held = reader.count()
    line = f"{verb} {done} of {held} messages"
    if topics:
        line += f" ({reader.count(topics)} on the chosen topics)"
    if reader.declared is not None and reader.declared > held:
        line += f"; its metadata.yaml lists {reader.declared}"
    problems = len(skipped) + len(reader.problems)
    if problems:
        line += f"; {problems} thing(s) skipped, named above"
    return line


def _process(args) -> int:
    from ..bags.bagfile import BagReader
    from ..bags.process import choose_image_topic, process_bag
    from ..core.config import load_pipeline_config
    from ..core.pipeline import Pipeline

    reader = BagReader(args.bag)
    choose_image_topic(reader, args.image_topic)  # a bag without images: said before models load
    pipeline = Pipeline(load_pipeline_config(args.config), device=args.device)
    summary = process_bag(reader, args.out, pipeline, image_topic=args.image_topic,
                          storage=args.storage, batch=args.batch, heatmaps=args.heatmaps,
                          copy_images=not args.no_images, progress=not args.no_progress)
    skipped = sum(summary.skipped.values())
    line = (f"processed {summary.frames} of {summary.images} frames ({summary.faces} faces) "
            f"into {summary.out}")
    if skipped or summary.problems:
        line += (f"; {skipped} frame(s) not processed, {len(summary.problems)} part(s) of the "
                 "bag not readable, named above")
    print(line, file=sys.stderr)
    return EXIT_PARTIAL if skipped or summary.problems else EXIT_OK


def _eval(args) -> int:
    from ..bags.annotations import read_eye_labels, read_heads
    from ..bags.evaluate import evaluate_bag

    report = evaluate_bag(
        args.bag, heads=read_heads(args.annotations),
        eye_labels=read_eye_labels(args.eye_labels) if args.eye_labels else (),
        match=args.match, iou=args.iou, gaze_iou=args.gaze_iou, boxes=args.boxes,
        **({} if args.min_inside is None else {"min_inside": args.min_inside}),
        topics={k: v for k in ("faces", "eyes", "gaze")
                if (v := getattr(args, f"{k}_topic")) is not None})
    print("\n".join(report.lines()))
    if args.json:
        Path(args.json).write_text(json.dumps(report.summary(), indent=2) + "\n")
    return EXIT_PARTIAL if report.skipped else EXIT_OK
