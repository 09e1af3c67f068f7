"""`gaze-perception demo`: the ROS 2 graph on the bundled sample, in separate processes over DDS."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2


def add_args(p) -> None:
    p.add_argument("--out", default="demo_out", help="folder for annotated images")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N]")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the graph")


def main(args) -> int:
    from ..core.draw import annotate
    from ..core.types import FrameResult
    from ..graph import NodeProcess, NodeSpec, isolated_ros_env
    from ..nodes.client import GraphClient
    from ..nodes.convert import msg_to_faces
    from ..samples import demo_frames

    env = isolated_ros_env()
    specs = [NodeSpec("face_detector", parameters={"device": args.device,
                                                     "image_reliability": "reliable"})]
    print(f"demo: starting {len(specs)} node(s) on ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}", flush=True)
    procs = [NodeProcess(s, env) for s in specs]
    client = GraphClient(outputs=["faces"], domain_id=int(env["ROS_DOMAIN_ID"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    try:
        client.wait_for_subscribers(args.timeout, count=len(specs),
                                    alive=lambda: all(p.alive() for p in procs))
        time.sleep(0.5)  # let discovery settle in both directions
        print(f"\n{'frame':22s} {'faces':>5s} {'latency ms':>10s}  boxes (x, y, w, h) / score / "
              "head pose yaw,pitch,roll (deg)")
        latencies = []
        for i, (name, rgb) in enumerate(demo_frames()):
            key, sent = client.publish(rgb, stamp_ns=(i + 1) * 100_000_000, frame_id="demo_camera")
            got = client.wait("faces", key, timeout=args.timeout)
            if got is None:
                print(f"{name:22s} no answer within {args.timeout} s")
                failures += 1
                continue
            msg, received = got
            faces = msg_to_faces(msg)
            latencies.append((received - sent) * 1000.0)
            desc = "; ".join(
                f"({f.x:.0f},{f.y:.0f},{f.width:.0f},{f.height:.0f}) {f.score:.3f} "
                + ("pose n/a" if f.head_pose is None else
                   "pose " + ",".join(f"{v * 57.2958:+.0f}" for v in f.head_pose))
                for f in faces)
            print(f"{name:22s} {len(faces):5d} {latencies[-1]:10.1f}  {desc}")
            img = annotate(rgb, FrameResult(rgb.shape[1], rgb.shape[0], faces))
            cv2.imwrite(str(out / f"{name}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if latencies:
            print(f"\nend-to-end latency (publish → faces received): median "
                  f"{sorted(latencies)[len(latencies) // 2]:.1f} ms, max {max(latencies):.1f} ms "
                  f"over {len(latencies)} frames; annotated images in {out}/")
    finally:
        client.close()
        codes = [p.stop() for p in procs]
    if any(c not in (0, None) for c in codes):
        print(f"demo: a node exited with {codes}", file=sys.stderr)
        return 1
    return 1 if failures else 0
