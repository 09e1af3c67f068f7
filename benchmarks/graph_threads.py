"""Throughput of the classroom graph (one process per node, over DDS) with the thread budget
(`threads: 0`, the default, graph.stage_threads: the face node takes the cores, the light eye
and head-pose gaze nodes one thread each), with one thread per node (OMP_NUM_THREADS=1) and
unbounded (every model node takes every core: torch's and OpenCV's own default), and of the
one-process graph (`compose: true`, its process taking every core).

The demo clip's 640x480 frames (1-4 faces) are published at `--rate` for `--seconds`; a frame
counts when its faces, eye states and gaze targets have all arrived (the nodes work on the
newest frame and drop older ones, so the count is what the graph keeps up with). The modes run
in turns (auto, one each, unbounded, auto, ...) so all see the same background load;
OMP_NUM_THREADS is removed from the environment first, so `auto` is the parameter's own rule.

    .venv/bin/python benchmarks/graph_threads.py [--rounds 3] [--seconds 10] [--rate 30]
"""
import argparse
import os
import statistics
import sys
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before anything reads them
    os.environ.pop(_var, None)

from gaze_perception.core.config import load_pipeline_config  # noqa: E402
from gaze_perception.core.threads import available_cores, resolve_threads  # noqa: E402
from gaze_perception.core import stages as stage_table  # noqa: E402
from gaze_perception.dds import isolated_ros_env  # noqa: E402
from gaze_perception.graph import node_specs, stage_threads  # noqa: E402
from gaze_perception.processes import NodeProcess  # noqa: E402
from gaze_perception.samples import demo_sequence  # noqa: E402

#: output topic of each stage with a node of its own (the stage table)
STAGE_TOPICS = {s.key: s.topic for s in stage_table.STAGES if s.node}


def run_graph(config, threads: int, frames, seconds: float, rate: float,
              compose: bool = False) -> dict:
    from gaze_perception.nodes.client import GraphClient

    specs = node_specs(config, device="cpu", reliability="reliable", threads=threads,
                       compose=compose)
    ns = node_specs(config, compose=False)[0].namespace
    topics = [f"/{ns}/{t}" if ns else t for s, t in STAGE_TOPICS.items()
              if getattr(config, s) is not None]
    env = isolated_ros_env()
    procs = [NodeProcess(s, env, echo=False) for s in specs]
    image_topic = node_specs(config, compose=False)[0].remappings.get("image", "image")
    client = GraphClient(outputs=topics, image_topic=image_topic,
                         domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        client.wait_for_subscribers(180, count=1 if compose else len(topics),
                                    alive=lambda: all(p.alive() for p in procs))
        time.sleep(0.5)
        stamp = 1
        for _, rgb in frames[:3]:  # warm-up, one frame at a time
            key, _ = client.publish(rgb, stamp_ns=stamp * 1_000_000)
            for t in topics:
                client.wait(t, key, 60)
            stamp += 1
        sent = {}
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < seconds:
            key, at = client.publish(frames[i % len(frames)][1], stamp_ns=(1000 + i) * 1_000_000)
            sent[key] = at
            i += 1
            time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        time.sleep(2.0)  # the last frames in work
        done = []
        for key, at in sent.items():
            got = [client.received[t].get(key) for t in topics]
            if all(got):
                done.append((at, max(g[1] for g in got)))
        if not done:
            return {"fps": 0.0, "latency": float("nan"), "sent": len(sent), "done": 0}
        span = max(d[1] for d in done) - t0
        return {"fps": len(done) / span, "sent": len(sent), "done": len(done),
                "latency": statistics.median((d[1] - d[0]) * 1000.0 for d in done)}
    finally:
        client.close()
        for p in procs:
            p.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="classroom")
    p.add_argument("--rounds", type=int, default=3, help="turns of each mode")
    p.add_argument("--seconds", type=float, default=10.0, help="publishing time per turn")
    p.add_argument("--rate", type=float, default=30.0, help="frames per second published")
    args = p.parse_args()
    config = load_pipeline_config(args.config)
    frames = demo_sequence(20)
    cores = available_cores()
    modes = {"auto (default)": (0, False), "one each": (1, False), "unbounded": (cores, False),
             "one process": (0, True)}
    stages = sum(getattr(config, s) is not None for s in STAGE_TOPICS)
    print(f"{args.config} graph, {stages} stage nodes on {cores} cores; 640x480 demo frames "
          f"published at {args.rate:g}/s for {args.seconds:g} s per turn, {args.rounds} turns "
          "per mode, interleaved", flush=True)
    results = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode, (threads, compose) in modes.items():
            res = run_graph(config, threads, frames, args.seconds, args.rate, compose)
            results[mode].append(res)
            print(f"  turn {r + 1} {mode}: {res['fps']:.2f} frames/s, median latency "
                  f"{res['latency']:.0f} ms ({res['done']}/{res['sent']} frames)",
                  file=sys.stderr, flush=True)
    print(f"{'threads':16s} {'per node':>8s} {'frames/s':>9s} {'latency ms':>11s}  turns")
    for mode, (threads, compose) in modes.items():
        rs = results[mode]
        per_node = (f"{resolve_threads(threads, 1)} all" if compose else
                    "/".join(str(n) for n in stage_threads(config, threads).values()))
        print(f"{mode:16s} {per_node:>8s} {statistics.median(x['fps'] for x in rs):9.2f} "
              f"{statistics.median(x['latency'] for x in rs):11.0f}  "
              + ", ".join(f"{x['fps']:.2f}" for x in rs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
