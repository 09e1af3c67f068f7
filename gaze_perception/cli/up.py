"""`gaze-perception up CONFIG`: the ROS 2 graph of a pipeline YAML where `ros2 launch` is not
available (no launch_ros, CI): one process per node (or, with `--compose`, one process for all
of them: nodes/composed.py), built by the same `graph.node_specs` as the launch file, so the
YAML stays the one description of the graph. Ctrl-C, SIGTERM or SIGHUP
(the terminal closed) stops every node, and the nodes end by themselves when `up` is killed
(lifetime.py); the exit status is non-zero when a node died or did not stop cleanly."""
from __future__ import annotations

import signal
import sys
import time

from .args import add_graph_args


def add_args(p) -> None:
    p.add_argument("config", help="pipeline YAML or a name in config/ (e.g. classroom)")
    p.add_argument("--image", default="", help="image topic (default: the config's remapping "
                   "of `image`, else `image`)")
    p.add_argument("--namespace", default="", help="node namespace (default: the config's)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--image-reliability", default="", choices=["", "best_effort", "reliable"],
                   help="image subscriptions (reliable for bag replay; default: best_effort)")
    add_graph_args(p, compose_default=None)
    src = p.add_argument_group("source node (overrides the config's `source:`)")
    src.add_argument("--source", help="camera index, video file, image folder, image or URL")
    src.add_argument("--rate", type=float, help="frames per second (default: the source's own)")
    src.add_argument("--loop", action="store_true", help="start a file or folder again at its end")
    src.add_argument("--camera-info", help="calibration YAML (ROS camera_calibration or OpenCV)")


def source_overrides(args) -> dict:
    given = {"source": args.source, "rate": args.rate, "camera_info": args.camera_info,
             "loop": args.loop or None}
    return {k: v for k, v in given.items() if v is not None}


def specs_for(args):
    """The nodes to start: the same `node_specs` call as the launch file, plus the source."""
    from ..core.config import load_pipeline_config
    from ..graph import node_specs

    return node_specs(load_pipeline_config(args.config), image_topic=args.image,
                      namespace=args.namespace, device=args.device,
                      reliability=args.image_reliability, source=source_overrides(args),
                      threads=args.threads, compose=args.compose)


def main(args) -> int:
    from ..dds import node_env
    from ..processes import stop_on_signals

    specs = specs_for(args)
    env = node_env()
    print(f"up: {len(specs)} node(s) on ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0')}; "
          "Ctrl-C stops them", file=sys.stderr, flush=True)
    procs, died, codes = [], [], []
    try:
        with stop_on_signals():  # SIGTERM, SIGHUP (terminal closed): stop like Ctrl-C
            _run(specs, env, procs, died)
    except KeyboardInterrupt:
        print("up: stopping", file=sys.stderr, flush=True)
    finally:
        # a second Ctrl-C / SIGTERM / SIGHUP must not cut the clean stop short
        ignored = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
                   if s is not None]
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in ignored}
        codes = [(p.label, p.stop()) for p in procs]
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [f"{label}: {code}" for label, code in codes if code != 0]
    if failed:
        print(f"up: node exit codes {', '.join(failed)}", file=sys.stderr)
    return 1 if died or failed else 0


def _run(specs, env, procs, died) -> None:
    """Start the nodes, then wait until one ends (its exit is reported in `died`)."""
    from ..processes import NodeProcess

    for spec in specs:
        procs.append(NodeProcess(spec, env))
        print(f"up: started {procs[-1].label} (pid {procs[-1].proc.pid}): "
              f"{' '.join(spec.command()[3:])}", file=sys.stderr, flush=True)
    while not died:
        time.sleep(0.2)
        died.extend(p for p in procs if not p.alive())
    for p in died:
        print(f"up: {p.label} exited with code {p.proc.returncode}; stopping the others",
              file=sys.stderr)
