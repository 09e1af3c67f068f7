"""Soak run of a ROS graph under camera load (a script that prints figures, not a test).

Starts the nodes of a pipeline config (default: classroom) as `up` does, each in its own
process on an isolated ROS domain with the large shared-memory transport, feeds them
synthetic frames (default 1920x1080 at 30 Hz: a few scaled copies of scikit-image's
astronaut face on a noisy background, drifting slowly so tracking has work) for a set time,
and prints:

- the resident memory (RSS) of every node, once a minute;
- latency percentiles (image published -> output received) for faces, eye states and gaze
  targets;
- the share of face results that got their eye states and gaze targets, and what each
  node's /diagnostics says about the rest (unpaired, refused, dropped by the worker).

    .venv/bin/python benchmarks/soak.py --seconds 300
    .venv/bin/python benchmarks/soak.py --seconds 60 --fps 10 --width 1280 --height 720
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gaze_perception.core import stages as stage_table  # noqa: E402

#: output topic of each stage with a node of its own (the stage table)
OUTPUTS = {s.key: s.topic for s in stage_table.STAGES if s.node}


def frames(width: int, height: int, count: int, faces: int, seed: int = 0):
    """`count` RGB frames with `faces` astronaut faces each, drifting a few pixels per frame."""
    import cv2
    from skimage import data

    rng = np.random.default_rng(seed)
    face = data.astronaut()[30:230, 130:330]  # the head, about 200x200
    size = max(60, min(width, height) // 6)
    face = cv2.resize(face, (size, size))
    starts = rng.uniform([0, 0], [width - size, height - size], (faces, 2))
    background = (rng.integers(0, 64, (height, width, 3), dtype=np.uint8) + 80)
    out = []
    for k in range(count):
        img = background.copy()
        for x, y in (starts + 3.0 * k) % [width - size, height - size]:
            img[int(y):int(y) + size, int(x):int(x) + size] = face
        out.append(img)
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except FileNotFoundError:
        pass
    return float("nan")


def percentiles(values):
    if not values:
        return "no samples"
    v = np.asarray(values) * 1000.0
    p = np.percentile(v, [50, 90, 99])
    return f"p50 {p[0]:7.0f}  p90 {p[1]:7.0f}  p99 {p[2]:7.0f}  max {v.max():7.0f} ms  (n={len(v)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="how long to feed frames")
    ap.add_argument("--config", default="classroom", help="pipeline config (default: classroom)")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--faces", type=int, default=6, help="faces per frame")
    ap.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N]")
    ap.add_argument("--grace", type=float, default=15.0,
                    help="seconds to wait for the last outputs after the last frame")
    ap.add_argument("--report-every", type=float, default=60.0,
                    help="seconds between memory lines (default: a minute)")
    args = ap.parse_args()

    from gaze_perception.core.config import load_pipeline_config
    from gaze_perception.dds import isolated_ros_env
    from gaze_perception.graph import node_specs
    from gaze_perception.processes import NodeProcess

    config = load_pipeline_config(args.config)
    specs = node_specs(config, device=args.device)
    ns = specs[0].namespace
    topic = lambda name: f"/{ns.strip('/')}/{name}" if ns else name  # noqa: E731
    image_topic = specs[0].remappings.get("image", "image")
    outputs = {s: topic(t) for s, t in OUTPUTS.items() if getattr(config, s) is not None}
    env = isolated_ros_env()
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "FASTDDS_DEFAULT_PROFILES_FILE")
                       if k in env})  # this process publishes the large images too
    print(f"soak: {args.config} graph ({', '.join(s.executable for s in specs)}) on "
          f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}; {args.width}x{args.height} at {args.fps:g} Hz "
          f"for {args.seconds:g} s, {args.faces} faces per frame", flush=True)

    from gaze_perception.nodes.client import GraphClient
    from gaze_perception.messages import rgb_to_image

    procs = [NodeProcess(s, env, echo=False) for s in specs]
    client = GraphClient(outputs=[*outputs.values(), "diagnostics"], image_topic=image_topic,
                         domain_id=int(env["ROS_DOMAIN_ID"]))
    images = [rgb_to_image(f, None) for f in frames(args.width, args.height, 60, args.faces)]
    sent = {}
    names = [p.label for p in procs]
    memory = []
    try:
        client.wait_for_subscribers(300.0, count=len(outputs),
                                    alive=lambda: all(p.alive() for p in procs))
        time.sleep(1.0)
        print(f"\n{'minute':>6s} " + " ".join(f"{n:>14s}" for n in names) + "   (RSS MB)")
        memory.append([rss_mb(p.proc.pid) for p in procs])
        print(f"{0:6.1f} " + " ".join(f"{m:14.0f}" for m in memory[-1]), flush=True)
        start = time.monotonic()
        next_report, k = start + args.report_every, 0
        period = 1.0 / args.fps
        while time.monotonic() - start < args.seconds:
            due = start + k * period
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            msg = images[k % len(images)]
            stamp_ns = 1_000_000_000 + k * int(period * 1e9)
            key, t = client.publish(msg=msg, stamp_ns=stamp_ns, frame_id="soak_camera")
            sent[key] = t
            k += 1
            if time.monotonic() >= next_report:
                next_report += args.report_every
                memory.append([rss_mb(p.proc.pid) for p in procs])
                print(f"{(time.monotonic() - start) / 60:6.1f} "
                      + " ".join(f"{m:14.0f}" for m in memory[-1]), flush=True)
            dead = [p for p in procs if not p.alive()]
            if dead:
                for p in dead:
                    print(f"soak: {p.label} exited early with code {p.proc.returncode}; its "
                          "last lines:\n  " + "\n  ".join(p.lines[-40:]), flush=True)
                break
        fed = time.monotonic() - start
        time.sleep(args.grace)
        memory.append([rss_mb(p.proc.pid) for p in procs])
        print(f"{(time.monotonic() - start) / 60:6.1f} "
              + " ".join(f"{m:14.0f}" for m in memory[-1]) + "   (after the grace period)")
        with client._lock:
            got = {s: dict(client.received[t]) for s, t in outputs.items()}
            diags = [m for m, _ in client.received["diagnostics"].values()]
    finally:
        client.close()
        for p in procs:
            p.stop()

    print(f"\nfed {len(sent)} frames in {fed:.0f} s ({len(sent) / fed:.1f} Hz)")
    if len(memory) > 2:
        first, last = np.array(memory[1]), np.array(memory[-1])
        minutes = max((len(memory) - 2) * args.report_every / 60.0, 1e-9)
        print("memory growth after the first minute, MB per minute: " + ", ".join(
            f"{n} {g:+.1f}" for n, g in zip(names, (last - first) / minutes)))
    print("\nlatency, image published -> output received:")
    for stage, results in got.items():
        lat = [t - sent[key] for key, (_, t) in results.items() if key in sent]
        print(f"  {outputs[stage]:24s} {percentiles(lat)}")
    face_keys = set(got.get("faces", {}))
    print(f"\nframes answered by the face node: {len(face_keys)} of {len(sent)} "
          "(newest-frame policy: it skips frames while busy)")
    for stage in ("eyes", "gaze"):
        if stage in got:
            share = len(face_keys & set(got[stage]))
            print(f"  face results with {outputs[stage]:13s}: {share} of {len(face_keys)} "
                  f"({100.0 * share / max(len(face_keys), 1):.1f} %)")
    newest = {}
    for msg in diags:
        for st in msg.status:
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            if st.name not in newest or newest[st.name][0] < stamp:
                newest[st.name] = (stamp, {kv.key: kv.value for kv in st.values})
    keys = ("received", "processed", "dropped", "rejected", "unpaired_dropped", "faces_refused",
            "pair_window_s", "pair_pending_mb", "pair_expired_image", "pair_evicted_image",
            "pair_late_faces", "pair_duplicates_image",
            "unjoined_dropped", "untracked_faces")
    print("\nlast /diagnostics of each node:")
    for name, (_, values) in sorted(newest.items()):
        print(f"  {name.split(': ')[-1]:24s} " + ", ".join(
            f"{k}={values[k]}" for k in keys if k in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
