"""`gaze-perception report BAG_OR_JSONL --out DIR`: per-person attention of a recorded session
as a CSV, PNG plots and one HTML page.

Of a damaged bag the report covers what is intact; the parts that were skipped are named in
the report's notes and on the terminal, and the exit code is 3 (EXIT_PARTIAL, cli/args.py)."""
from __future__ import annotations

from pathlib import Path

from .args import EXIT_OK, EXIT_PARTIAL


def add_args(p) -> None:
    p.add_argument("input", help="JSON Lines of `gaze-perception run`, or a rosbag2 bag (folder, "
                   ".mcap or .db3) with faces / eye states / gaze targets")
    p.add_argument("--out", required=True, help="folder for attention.csv, *.png, index.html")
    p.add_argument("--config", help="pipeline YAML or a name in config/ whose `attention:` "
                   "gives the regions (e.g. classroom); default: no regions")
    p.add_argument("--fps", type=float, default=0.0,
                   help="frame rate, for inputs whose stamps do not advance (image folders)")


def main(args) -> int:
    from ..analytics.records import read_frames
    from ..core.regions import Regions
    from ..analytics.report import analyse, write_report
    from ..core.config import load_pipeline_config

    attention = (load_pipeline_config(args.config).graph.attention or {}) if args.config else {}
    skipped = []
    frames = list(read_frames(args.input, skipped))
    if not frames:
        raise ValueError(f"'{args.input}' holds no frames"
                         + (f" that could be read ({'; '.join(skipped)})" if skipped else ""))
    session = analyse(frames, Regions(attention.get("regions")),
                      min_inout=float(attention.get("min_inout", 0.5)), fps=args.fps,
                      max_frame_gap=float(attention.get("max_frame_gap", 1.0)))
    session.notes.extend(f"skipped (not in this report): {s}" for s in skipped)
    paths = write_report(session, args.out, title=f"Attention: {Path(args.input).name}")
    for note in session.notes:
        print(f"note: {note}")
    print(f"{len(session.tracks)} people over {session.length:.1f} s; report: {paths['html']}")
    return EXIT_PARTIAL if skipped else EXIT_OK
