"""End-to-end latency of a pipeline's ROS graph, one process per node against the one-process
graph (`compose: true`), split into model time and the rest (transport, pairing, waiting).

The demo's 640x480 frames (1-4 faces) are published one at a time (the next when the previous
frame's faces, eye states and gaze targets have all arrived), so a frame never waits for
another. Latency: image published -> the last output received (mean over the frames, as the
model times are; the median too). Model time per frame is what
the nodes report in /diagnostics (`busy_ms` / `processed`). Separate processes: the eye and
gaze nodes work side by side after the face node, so the model path is faces + max(eyes,
gaze); one process: the face node runs them in turn, so it is faces + eyes + gaze. The rest of
the latency is transport, decoding and pairing. The same stages run in this process by the core Pipeline
(no ROS) on the same frames give the reference "stages in one process" (it hands the landmark
stage's eye directions to the gaze stage; the graph's gaze node computes them again).

    .venv/bin/python benchmarks/graph_latency.py [--config classroom] [--frames 20] [--threads 0]
"""
import argparse
import statistics
import time

from gaze_perception.core.config import load_pipeline_config
from gaze_perception.core.pipeline import Pipeline
from gaze_perception.core.threads import apply_threads, resolve_threads
from gaze_perception.dds import isolated_ros_env
from gaze_perception.core import stages as stage_table
from gaze_perception.graph import node_specs
from gaze_perception.processes import NodeProcess
from gaze_perception.samples import demo_sequence

#: output topic and node of each stage with a node of its own (the stage table)
STAGES = {s.key: (s.topic, s.kind) for s in stage_table.STAGES if s.node}


def _topic(ns: str, name: str) -> str:
    return f"/{ns}/{name}" if ns else name


def node_stats(client, ns: str, names, since: float) -> dict:
    """(busy ms, items processed) of each node, from its first /diagnostics message received
    after `since` (perf_counter time)."""
    want = {f"gaze_perception: /{ns + '/' if ns else ''}{n}": n for n in names}
    got, end = {}, time.monotonic() + 10
    while len(got) < len(want) and time.monotonic() < end:
        time.sleep(0.5)
        with client._lock:
            messages = [m for m, at in client.received["/diagnostics"].values() if at > since]
        for status in (s for m in messages for s in m.status if s.name in want):
            v = {kv.key: kv.value for kv in status.values}
            got.setdefault(want[status.name], (float(v["busy_ms"]), int(v["processed"])))
    return got


def run_graph(config, compose: bool, frames, threads: int) -> dict:
    from gaze_perception.nodes.client import GraphClient

    specs = node_specs(config, device="cpu", reliability="reliable", threads=threads,
                       compose=compose)
    separate = node_specs(config, compose=False)
    ns = separate[0].namespace
    stages = [s for s in STAGES if getattr(config, s) is not None]
    topics = [_topic(ns, STAGES[s][0]) for s in stages]
    env = isolated_ros_env()
    procs = [NodeProcess(s, env, echo=False) for s in specs]
    client = GraphClient(outputs=[*topics, "/diagnostics"],
                         image_topic=separate[0].remappings.get("image", "image"),
                         domain_id=int(env["ROS_DOMAIN_ID"]))
    latencies = []
    try:
        client.wait_for_subscribers(180, count=1 if compose else len(stages),
                                    alive=lambda: all(p.alive() for p in procs))
        time.sleep(0.5)
        names = [STAGES[s][1] for s in stages]
        for i, (_, rgb) in enumerate([frames[0], *frames]):  # the first is a warm-up
            key, sent = client.publish(rgb, stamp_ns=(i + 1) * 100_000_000)
            got = [client.wait(t, key, 60) for t in topics]
            if i and all(got):
                latencies.append((max(g[1] for g in got) - sent) * 1000.0)
            if i == 0:  # model time counts from here: the warm-up frame is left out
                before = node_stats(client, ns, names, time.perf_counter())
        after = node_stats(client, ns, names, time.perf_counter())
        models = {n: (after[n][0] - before[n][0]) / max(1, after[n][1] - before[n][1])
                  for n in names if n in after and n in before}
    finally:
        client.close()
        for p in procs:
            p.stop()
    eyes, gaze = models.get("eye_state", 0.0), models.get("gaze_target", 0.0)
    if compose:  # the face node runs the eye and gaze nodes in turn: its time holds theirs
        path = models.get("face_detector", 0.0)
        models["face_detector"] = path - eyes - gaze
    else:        # the eye and gaze nodes work side by side after the face node
        path = models.get("face_detector", 0.0) + max(eyes, gaze)
    nan = float("nan")
    return {"latency": statistics.mean(latencies) if latencies else nan,
            "median": statistics.median(latencies) if latencies else nan,
            "frames": len(latencies), "path": path, **models}


def pipeline_ms(config, frames, threads: int) -> float:
    apply_threads(resolve_threads(threads, 1))
    pipeline = Pipeline(config, device="cpu")
    pipeline([frames[0][1]])
    times = []
    for _, rgb in frames:
        t0 = time.perf_counter()
        pipeline([rgb])
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.mean(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="classroom")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="0 = the graph's own rule")
    args = p.parse_args()
    config = load_pipeline_config(args.config)
    frames = list(demo_sequence(args.frames))
    rows = {"separate processes": run_graph(config, False, frames, args.threads),
            "one process (compose)": run_graph(config, True, frames, args.threads)}
    in_process = pipeline_ms(config, frames, args.threads)
    print(f"graph '{args.config}' on {len(frames)} demo frames (640x480, 1-4 faces), CPU; "
          f"means per frame, ms (latency median too)")
    print(f"{'graph':22s} {'latency':>8s} {'median':>7s} {'faces':>7s} {'eyes':>7s} "
          f"{'gaze':>7s} {'model path':>10s} {'rest':>7s} {'rest %':>7s}")
    for name, r in rows.items():
        path = r["path"]
        rest = r["latency"] - path
        print(f"{name:22s} {r['latency']:8.1f} {r['median']:7.1f} "
              f"{r.get('face_detector', 0):7.1f} {r.get('eye_state', 0):7.1f} "
              f"{r.get('gaze_target', 0):7.1f} {path:10.1f} {rest:7.1f} "
              f"{100 * rest / r['latency']:6.0f}%")
    print(f"{'core Pipeline, no ROS':22s} {in_process:8.1f}   (mean; every stage in turn, one "
          "process)")


if __name__ == "__main__":
    main()
