"""`gaze-perception demo`: the ROS 2 graph of a pipeline config on the bundled sample, each node
in its own process, fed and read over DDS."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2

#: node output topic of each pipeline stage
STAGE_TOPICS = {"faces": "faces", "eyes": "eye_states", "gaze": "gaze_targets"}


def add_args(p) -> None:
    p.add_argument("--config", help="pipeline YAML or a name in config/ (default: default)")
    p.add_argument("--out", default="demo_out", help="folder for annotated images")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N]")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the graph")


def _describe(result) -> str:
    eyes = {e.face_index: e for e in (result.eyes or [])}
    gaze = {g.face_index: g for g in (result.gaze or [])}
    parts = []
    for i, f in enumerate(result.faces):
        text = f"({f.x:.0f},{f.y:.0f},{f.width:.0f}x{f.height:.0f}) {f.score:.3f}"
        if f.head_pose is not None:
            text += " yaw/pitch " + "/".join(f"{v * 57.2958:+.0f}" for v in f.head_pose[:2])
        if i in eyes:
            text += f" eyes {eyes[i].state}"
        if i in gaze:
            g = gaze[i]
            text += f" gaze ({g.point[0]:.0f},{g.point[1]:.0f}) {g.label or ''}".rstrip()
        parts.append(text)
    return "; ".join(parts)


def main(args) -> int:
    from ..core.config import load_pipeline_config
    from ..core.draw import annotate
    from ..core.types import FrameResult
    from ..graph import NodeProcess, isolated_ros_env, node_specs
    from ..nodes.client import GraphClient
    from ..nodes.convert import msg_to_eyes, msg_to_faces, msg_to_gaze
    from ..samples import demo_frames

    config = load_pipeline_config(args.config)
    specs = node_specs(config, device=args.device, reliability="reliable")
    topics = [STAGE_TOPICS[s] for s in STAGE_TOPICS if getattr(config, s) is not None]
    env = isolated_ros_env()
    print(f"demo: {len(specs)} node(s) ({', '.join(s.executable for s in specs)}) on "
          f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}", flush=True)
    procs = [NodeProcess(s, env) for s in specs]
    client = GraphClient(outputs=topics, domain_id=int(env["ROS_DOMAIN_ID"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures, latencies = 0, []
    try:
        client.wait_for_subscribers(args.timeout, count=len(specs),
                                    alive=lambda: all(p.alive() for p in procs))
        time.sleep(0.5)  # let discovery settle in both directions
        print(f"\n{'frame':20s} {'faces':>5s} {'latency ms':>10s}  per face: box score, head pose "
              "(deg), eyes, gaze target")
        for i, (name, rgb) in enumerate(demo_frames()):
            key, sent = client.publish(rgb, stamp_ns=(i + 1) * 100_000_000, frame_id="demo_camera")
            got = {t: client.wait(t, key, timeout=args.timeout) for t in topics}
            if any(v is None for v in got.values()):
                missing = [t for t, v in got.items() if v is None]
                print(f"{name:20s} no {', '.join(missing)} within {args.timeout} s")
                failures += 1
                continue
            latencies.append((max(v[1] for v in got.values()) - sent) * 1000.0)
            result = FrameResult(rgb.shape[1], rgb.shape[0], msg_to_faces(got["faces"][0]))
            if "eye_states" in got:
                result.eyes = msg_to_eyes(got["eye_states"][0])
            if "gaze_targets" in got:
                result.gaze = msg_to_gaze(got["gaze_targets"][0])
            print(f"{name:20s} {len(result.faces):5d} {latencies[-1]:10.1f}  {_describe(result)}")
            cv2.imwrite(str(out / f"{name}.jpg"), cv2.cvtColor(annotate(rgb, result),
                                                               cv2.COLOR_RGB2BGR))
        if latencies:
            print(f"\nend-to-end latency (image published → all outputs received): median "
                  f"{sorted(latencies)[len(latencies) // 2]:.1f} ms, max {max(latencies):.1f} ms "
                  f"over {len(latencies)} frames; annotated images in {out}/")
    finally:
        client.close()
        codes = [p.stop() for p in procs]
    if any(c != 0 for c in codes):
        print(f"demo: node exit codes {codes}", file=sys.stderr)
        return 1
    return 1 if failures else 0
