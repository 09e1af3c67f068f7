"""The attention report of a recorded session: a per-person CSV, PNG plots and one HTML page."""
from __future__ import annotations

import csv
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from ..core.regions import ELSEWHERE, OUT_OF_FRAME, PERSON_PREFIX, UNKNOWN, Regions
from ..core.tracking import Tracker
from ..core.types import FrameResult
from .attention import AttentionAccumulator, TrackAttention, frame_observations

#: (start, seconds, target) from the session's start
Segment = Tuple[float, float, str]


@dataclass
class Session:
    tracks: List[TrackAttention]
    timelines: Dict[int, List[Segment]]
    targets: List[str]  # column order: regions, people, then the catch-all labels
    start: float  # stamp of the first frame; times in the report count from here
    length: float
    frames: int
    notes: List[str] = field(default_factory=list)


def analyse(frames: Sequence[FrameResult], regions: Regions, min_inout: float = 0.5,
            fps: float = 0.0, max_frame_gap: float = 1.0) -> Session:
    """Label and time every frame. `fps` replaces stamps that do not advance (the JSON Lines
    of an image folder); faces without track ids are tracked here first."""
    notes = []
    if len({f.stamp for f in frames}) < min(len(frames), 2):
        if fps <= 0:
            raise ValueError("the input's stamps do not advance (an image folder?): give --fps")
        notes.append(f"times from frame numbers at {fps:g} frames/s")
    if fps > 0:
        for f in frames:
            f.stamp = f.frame / fps
    if not any(face.track_id for f in frames for face in f.faces):
        tracker = Tracker()
        for f in frames:
            tracker.update(f.faces)
        notes.append("the input had no track ids: people were tracked by the report")
    acc = AttentionAccumulator(max_frame_gap=max_frame_gap)
    timelines: Dict[int, List[Segment]] = {}
    start = frames[0].stamp if frames else 0.0
    for f in frames:
        obs = frame_observations(f.faces, f.eyes, f.gaze, regions, min_inout)
        dt = acc.add_frame(f.stamp, obs)
        for o in obs:
            timelines.setdefault(o.track_id, []).append((f.stamp - start - dt, dt, o.target))
    tracks = acc.summary()
    seen = {t for tr in tracks for t in tr.session.dwell}
    people = sorted((t for t in seen if t.startswith(PERSON_PREFIX)),
                    key=lambda t: int(t[len(PERSON_PREFIX):]))
    targets = list(regions.names) + people + [t for t in (OUT_OF_FRAME, ELSEWHERE, UNKNOWN)
                                              if t in seen]
    return Session(tracks, timelines, targets, start, acc.session_length, len(frames), notes)


def write_csv(session: Session, path: Path) -> None:
    """One row per person: seconds per target, eyes-closed seconds and ratio."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["track_id", "first_seen_s", "last_seen_s", "observed_s"]
                   + [f"{t}_s" for t in session.targets]
                   + ["eyes_closed_s", "eyes_known_s", "eyes_closed_ratio"])
        for tr in session.tracks:
            s = tr.session
            w.writerow([tr.track_id, _r(tr.first_seen - session.start),
                        _r(tr.last_seen - session.start), _r(s.observed)]
                       + [_r(s.dwell.get(t, 0.0)) for t in session.targets]
                       + [_r(s.eyes_closed), _r(s.eyes_known),
                          "" if math.isnan(s.closed_ratio) else _r(s.closed_ratio)])


def write_report(session: Session, out_dir, title: str = "attention report") -> Dict[str, Path]:
    """attention.csv, timeline.png, share.png, eyes_closed.png and index.html in `out_dir`."""
    from .plots import plot_eyes_closed, plot_share, plot_timeline

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "attention.csv", "timeline": out / "timeline.png",
             "share": out / "share.png", "eyes_closed": out / "eyes_closed.png",
             "html": out / "index.html"}
    write_csv(session, paths["csv"])
    plot_timeline(session, paths["timeline"])
    plot_share(session, paths["share"])
    plot_eyes_closed(session, paths["eyes_closed"])
    paths["html"].write_text(_html(session, title, paths))
    return paths


def _html(session: Session, title: str, paths: Dict[str, Path]) -> str:
    rows = paths["csv"].read_text().splitlines()
    cells = [next(csv.reader([r])) for r in rows]
    table = "".join("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row) + "</tr>"
                    for tag, row in [("th", cells[0])] + [("td", r) for r in cells[1:]])
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in session.notes)
    images = "".join(f'<h2>{caption}</h2><img src="{paths[key].name}" alt="{caption}">'
                     for key, caption in [("timeline", "Targets over time"),
                                          ("share", "Share of time per target"),
                                          ("eyes_closed", "Eyes closed")])
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-width:100%}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>{len(session.tracks)} people, {session.length:.1f} s, {session.frames} frames.
Seconds per target; <a href="{paths['csv'].name}">{paths['csv'].name}</a>.</p>
<ul>{notes}</ul><table>{table}</table>{images}</body></html>
"""


def _r(v: float) -> str:
    return f"{v:.3f}"
