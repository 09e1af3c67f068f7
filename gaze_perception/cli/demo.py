"""`gaze-perception demo`: the ROS 2 graph of a pipeline config on the bundled sample, its nodes
in one process (`--no-compose`: a process each), fed and read over DDS, ending with the
attention report of the session."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .args import add_graph_args


FRAME_PERIOD_NS = 100_000_000  # the sample plays as a 10 Hz camera


def add_args(p) -> None:
    p.add_argument("--config", default="classroom",
                   help="pipeline YAML or a name in config/ (default: classroom)")
    p.add_argument("--out", default="demo_out", help="folder for annotated images and the report")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N]")
    p.add_argument("--frames", type=int, default=20, help="frames to publish")
    add_graph_args(p, compose_default=True)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the graph")


#: the per-face columns of the table: name, width (the last one is not padded)
FACE_COLUMNS = (("face", 4), ("box", 18), ("eyes", 7), ("head pose", 10), ("yaw/pitch", 9),
                ("eye gaze (x, y, z)", 20), ("P(cam)", 6), ("gaze target", 0))


def _row(cells) -> str:
    return " ".join(f"{c:{w}s}" if w else c for c, (_, w) in zip(cells, FACE_COLUMNS))


def _face_rows(result) -> list:
    """One table row per face: track, box, eye state, head pose source and yaw/pitch (degrees),
    the eyes' gaze direction, P(looking at the camera), the gaze target; "-" where a stage is
    off or gave nothing."""
    import math

    eyes = {e.face_index: e for e in (result.eyes or [])}
    gaze = {g.face_index: g for g in (result.gaze or [])}
    eye_gaze = {g.face_index: g for g in (result.eye_gaze or [])}
    rows = []
    for i, f in enumerate(result.faces):
        eg, g = eye_gaze.get(i), gaze.get(i)
        source = eg.head_pose_source if eg is not None else ("five_point" if f.head_pose else "")
        pose = ("-" if f.head_pose is None else
                f"{math.degrees(f.yaw):+.0f}/{math.degrees(f.pitch):+.0f}")
        direction = ("-" if eg is None or eg.direction is None else
                     "({:+.2f}, {:+.2f}, {:+.2f})".format(*eg.direction))
        cam = ("-" if eg is None or math.isnan(eg.looking_at_camera) else
               f"{eg.looking_at_camera:.2f}")
        target = "-" if g is None else (g.label or "({:.0f},{:.0f})".format(*g.point))
        rows.append(_row((f"#{f.track_id}", f"({f.x:.0f},{f.y:.0f},{f.width:.0f}x{f.height:.0f})",
                          eyes[i].state if i in eyes else "-", source or "-", pose, direction,
                          cam, target)))
    return rows


def _topic(namespace: str, name: str) -> str:
    return f"{namespace.rstrip('/')}/{name}" if namespace else name


def main(args) -> int:
    from ..processes import stop_on_signals

    with stop_on_signals():  # SIGTERM, SIGHUP (terminal closed): stop the nodes as Ctrl-C does
        return _main(args)


def _main(args) -> int:
    import cv2  # here, not at import: `gaze-perception --help` needs no OpenCV
    from ..core.config import load_pipeline_config
    from ..core.draw import annotate
    from ..core.types import FrameResult
    from ..dds import isolated_ros_env
    from ..core import stages
    from ..graph import node_specs, stage_nodes
    from ..processes import NodeProcess
    from ..nodes.client import GraphClient
    from ..messages import (msg_to_coding, msg_to_directions, msg_to_eyes, msg_to_faces,
                            msg_to_gaze, msg_to_landmarks)
    from ..samples import demo_sequence
    from . import report

    config = load_pipeline_config(args.config)
    specs = node_specs(config, device=args.device, reliability="reliable", threads=args.threads,
                       compose=args.compose)
    stage_specs = node_specs(config, compose=False)  # the names, topics and namespace
    ns = stage_specs[0].namespace
    image_topic = stage_specs[0].remappings.get("image", "image")
    topics = {s.key: _topic(ns, s.topic) for s in stages.STAGES if config.stage(s.key) is not None}
    env = isolated_ros_env()
    print(f"demo: {len(stage_specs)} node(s) ({', '.join(s.executable for s in stage_specs)}) "
          f"in {'one process' if args.compose else 'a process each'} on "
          f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, image topic {image_topic}", flush=True)
    procs = [NodeProcess(s, env) for s in specs]
    client = GraphClient(outputs=list(topics.values()), image_topic=image_topic,
                         domain_id=int(env["ROS_DOMAIN_ID"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "demo.jsonl"
    failures, latencies = 0, []
    try:
        # composed: only the face node subscribes to the image (it feeds the others)
        listeners = 1 if args.compose else sum(s.executable in stage_nodes().values()
                                               for s in stage_specs)
        client.wait_for_subscribers(args.timeout, count=listeners,
                                    alive=lambda: all(p.alive() for p in procs))
        time.sleep(0.5)  # let discovery settle in both directions
        print(f"\n{'frame':24s} {'faces':>5s} {'latency ms':>10s}  "
              f"{_row([name for name, _ in FACE_COLUMNS])}")
        with open(jsonl, "w") as sink:
            for i, (name, rgb) in enumerate(demo_sequence(args.frames)):
                stamp = (i + 1) * FRAME_PERIOD_NS
                key, sent = client.publish(rgb, stamp_ns=stamp, frame_id="demo_camera")
                got = {s: client.wait(t, key, timeout=args.timeout) for s, t in topics.items()}
                if any(v is None for v in got.values()):
                    missing = [topics[s] for s, v in got.items() if v is None]
                    print(f"{name:24s} no {', '.join(missing)} within {args.timeout} s")
                    failures += 1
                    continue
                latencies.append((max(v[1] for v in got.values()) - sent) * 1000.0)
                result = FrameResult(rgb.shape[1], rgb.shape[0], msg_to_faces(got["faces"][0]),
                                     frame=i, source=name, stamp=stamp * 1e-9)
                if "eyes" in got:
                    result.eyes = msg_to_eyes(got["eyes"][0])
                if "gaze" in got:
                    result.gaze = msg_to_gaze(got["gaze"][0])
                if "landmarks" in got:  # per face "mesh" and "eye_gaze" in the JSON Lines
                    result.meshes, result.eye_gaze = msg_to_landmarks(got["landmarks"][0])
                if "direction" in got:
                    result.directions = msg_to_directions(got["direction"][0])
                if "coding" in got:
                    result.coding = msg_to_coding(got["coding"][0])
                sink.write(json.dumps(result.to_json()) + "\n")
                rows = _face_rows(result) or ["-"]
                print(f"{name:24s} {len(result.faces):5d} {latencies[-1]:10.1f}  {rows[0]}")
                for row in rows[1:]:
                    print(f"{'':43s}{row}")
                cv2.imwrite(str(out / f"{name}.jpg"),
                            cv2.cvtColor(annotate(rgb, result), cv2.COLOR_RGB2BGR))
        if latencies:
            ordered = sorted(latencies)
            print(f"\nend-to-end latency (image published → all outputs received): median "
                  f"{ordered[len(ordered) // 2]:.1f} ms, max {ordered[-1]:.1f} ms over "
                  f"{len(ordered)} frames; annotated images in {out}/")
    finally:
        client.close()
        codes = [p.stop() for p in procs]
    if any(c != 0 for c in codes):
        print(f"demo: node exit codes {codes}", file=sys.stderr)
        return 1
    if failures:
        return 1
    return report.main(argparse.Namespace(input=str(jsonl), out=str(out / "report"),
                                          config=args.config, fps=0.0))
