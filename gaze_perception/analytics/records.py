"""Recorded perception results back into core types: the JSON Lines of `gaze-perception run`
(DESIGN.md section 4) or a rosbag2 bag holding FaceArray / EyeStateArray / GazeTargetArray."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from ..core.types import EyeState, Face, FrameResult, GazeTarget

BAG_TYPES = {"faces": "gaze_msgs/msg/FaceArray", "eyes": "gaze_msgs/msg/EyeStateArray",
             "gaze": "gaze_msgs/msg/GazeTargetArray"}


def read_frames(path, skipped: Optional[List[str]] = None) -> Iterator[FrameResult]:
    """Frames of a .jsonl file or of a bag (a rosbag2 folder, .mcap or .db3 file). Of a bag,
    what is intact; the parts that could not be read are added to `skipped`."""
    p = Path(path)
    if p.suffix == ".jsonl" or (p.is_file() and p.suffix not in (".mcap", ".db3")):
        return read_jsonl(p)
    return read_bag(p, skipped)


def read_jsonl(path) -> Iterator[FrameResult]:
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield frame_from_json(json.loads(line))
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise ValueError(f"{path}:{lineno}: not a frame of `gaze-perception run` "
                                 f"output: {exc}") from None


def frame_from_json(obj: dict) -> FrameResult:
    faces: List[Face] = []
    eyes: List[EyeState] = []
    gaze: List[GazeTarget] = []
    for i, f in enumerate(obj["faces"]):
        pose = f.get("head_pose") or [math.nan] * 3
        faces.append(Face(*f["box"], score=f.get("score", 1.0),
                          landmarks=[tuple(p) for p in f.get("landmarks") or []],
                          track_id=int(f.get("track_id") or 0), yaw=pose[0], pitch=pose[1],
                          roll=pose[2]))
        if f.get("eyes"):
            e = f["eyes"]
            eyes.append(EyeState(i, e["state"], e.get("left", e["state"]),
                                 e.get("right", e["state"]), _num(e.get("closed_prob"))))
        if f.get("gaze"):
            g = f["gaze"]
            gaze.append(GazeTarget(i, tuple(g["point"]), _num(g.get("inout")),
                                   _num(g.get("score")), g.get("label") or ""))
    return FrameResult(int(obj["width"]), int(obj["height"]), faces,
                       eyes if any(f.get("eyes") is not None for f in obj["faces"]) else None,
                       gaze if any(f.get("gaze") is not None for f in obj["faces"]) else None,
                       frame=int(obj.get("frame", 0)), source=str(obj.get("source", "")),
                       stamp=float(obj.get("stamp") or 0.0))


def read_bag(path, skipped: Optional[List[str]] = None) -> Iterator[FrameResult]:
    """Join the bag's face, eye-state and gaze-target arrays by header stamp, in stamp order.
    Uses the bag tools of gaze_perception.bags and rclpy to deserialize; the parts of the bag
    that could not be read are added to `skipped`."""
    from ..bags.bagfile import BagReader
    from ..messages import msg_to_eyes, msg_to_faces, msg_to_gaze

    reader = BagReader(path)
    topics: Dict[str, Optional[str]] = {}
    for kind, msgtype in BAG_TYPES.items():
        found = reader.topics_of_type(msgtype)
        if len(found) > 1:
            raise ValueError(f"bag '{path}' has several {msgtype} topics {found}")
        topics[kind] = found[0] if found else None
    if topics["faces"] is None:
        raise ValueError(f"bag '{path}' has no {BAG_TYPES['faces']} topic")
    kind_of = {t: k for k, t in topics.items() if t}
    by_stamp: Dict[tuple, Dict[str, object]] = {}
    for m in reader.messages(list(kind_of)):
        msg = reader.deserialize(m)
        if msg is None:
            continue
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        by_stamp.setdefault(key, {})[kind_of[m.topic]] = msg
    if skipped is not None:
        skipped.extend(reader.problems)
    for index, key in enumerate(sorted(by_stamp)):
        got = by_stamp[key]
        if "faces" not in got:
            continue
        fa = got["faces"]
        yield FrameResult(fa.image_width, fa.image_height, msg_to_faces(fa),
                          msg_to_eyes(got["eyes"]) if "eyes" in got else None,
                          msg_to_gaze(got["gaze"]) if "gaze" in got else None,
                          frame=index, source=fa.header.frame_id,
                          stamp=key[0] + key[1] * 1e-9)


def _num(v) -> float:
    return math.nan if v is None else float(v)
