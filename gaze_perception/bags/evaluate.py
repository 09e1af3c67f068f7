"""Scoring recorded outputs against annotations (`bag eval`).

Frames are the bag's images in stamp order (the FaceArray stamps when no image was recorded);
outputs belong to the frame whose stamp their header carries. Annotations name frames either by
order (`index`: the n-th distinct VideoAttentionTarget file name, or eye-label frame n) or by
stamp in seconds (`stamp`).

- Faces: precision / recall of the recorded face boxes against the annotated boxes, one-to-one
  matches of highest IoU first. What counts as a match depends on what the annotated boxes are
  (`boxes`): VideoAttentionTarget gives HEAD boxes, larger than any face box (hair, ears), so a
  perfect face detector scores IoU well under 0.5 against them. `head` (the default) compares
  like with like by containment: a face matches a head when at least `min_inside` of the face
  box lies inside the head box (and it is not a speck: at least MIN_FACE_AREA of the head's
  area). `face`: the annotations are face boxes, a match needs IoU >= `iou`. The report says
  which rule it used.
- Gaze: each annotated head is paired with a recorded face by the same rule (for `face`
  boxes: the face that overlaps it most, IoU >= `gaze_iou`). L2 is the distance of the
  published point to the annotated one in image-size
  normalised coordinates (VideoAttentionTarget's L2); AUC needs recorded heatmaps and uses the
  VideoAttentionTarget definition of gaze_perception.metrics; in/out AP needs both in- and
  out-of-frame annotations.
- Eyes: accuracy of the recorded state of (frame, face_index) against the label; a label with
  no recorded state counts as wrong.
"""
from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.boxes import iou as box_iou
from ..core.head_boxes import AnnotationError
from ..core.types import EyeState, Face, GazeTarget
from ..metrics.gaze_following import inout_ap, vat_auc
from ..messages import msg_to_eyes, msg_to_faces, msg_to_gaze
from .annotations import Box, EyeLabel, HeadAnnotation
from .bagfile import BagReader
from .errors import TopicNotFoundError
from .process import COMPRESSED_IMAGE, IMAGE
from .typesys import message_class

FACES, EYES, GAZE = "gaze_msgs/msg/FaceArray", "gaze_msgs/msg/EyeStateArray", \
    "gaze_msgs/msg/GazeTargetArray"
MATCH_MODES = ("index", "stamp")
#: What the annotated boxes are: head boxes (VideoAttentionTarget) or face boxes.
BOX_KINDS = ("head", "face")
#: Least share of a face box inside a head box for the face to be that head's.
MIN_INSIDE = 0.75
#: Least area of a face relative to the head box it lies in (a speck inside a head is no face).
MIN_FACE_AREA = 0.05
#: Largest difference between an annotated and a recorded stamp that still matches (seconds).
STAMP_TOLERANCE = 1e-3


@dataclass
class Recorded:
    """The outputs recorded for one frame."""

    stamp: float  # seconds
    width: int = 0
    height: int = 0
    faces: List[Face] = field(default_factory=list)
    eyes: Optional[List[EyeState]] = None
    gaze: Optional[List[GazeTarget]] = None


@dataclass
class DetectionScores:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> Optional[float]:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> Optional[float]:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass
class GazeScores:
    heads: int = 0  # annotated heads with a gaze annotation
    missing: int = 0  # ... of which no recorded gaze target could be paired
    l2: List[float] = field(default_factory=list)
    auc: List[float] = field(default_factory=list)
    inout_labels: List[int] = field(default_factory=list)
    inout_scores: List[float] = field(default_factory=list)

    @property
    def inout_ap(self) -> Optional[float]:
        if len(set(self.inout_labels)) < 2:
            return None
        return inout_ap(self.inout_labels, self.inout_scores)


@dataclass
class EyeScores:
    labels: int = 0
    correct: int = 0
    missing: int = 0

    @property
    def accuracy(self) -> Optional[float]:
        return self.correct / self.labels if self.labels else None


@dataclass
class EvalReport:
    frames: int
    annotated: int = 0
    unmatched: int = 0  # annotated frames that are not in the bag
    detection: Optional[DetectionScores] = None
    gaze: Optional[GazeScores] = None
    eyes: Optional[EyeScores] = None
    iou: float = 0.5
    boxes: str = "head"
    min_inside: float = MIN_INSIDE
    notes: List[str] = field(default_factory=list)  # what could not be scored, and why
    skipped: List[str] = field(default_factory=list)  # input not read (damage, bad messages)

    @property
    def rule(self) -> str:
        """How a recorded face box is matched to an annotated box, in words."""
        if self.boxes == "head":
            return (f"annotated boxes are head boxes: a face matches a head holding at least "
                    f"{self.min_inside:.0%} of the face box")
        return f"annotated boxes are face boxes: a face matches at IoU >= {self.iou:.2f}"

    def summary(self) -> Dict[str, object]:
        """The numbers, JSON-ready (None where a metric is not defined)."""
        out: Dict[str, object] = {"frames": self.frames, "annotated_frames": self.annotated,
                                  "unmatched_frames": self.unmatched}
        if self.detection:
            d = self.detection
            out["faces"] = {**asdict(d), "boxes": self.boxes, "rule": self.rule,
                            "iou": self.iou if self.boxes == "face" else None,
                            "min_inside": self.min_inside if self.boxes == "head" else None,
                            "precision": d.precision, "recall": d.recall}
        if self.gaze:
            g = self.gaze
            out["gaze"] = {"heads": g.heads, "missing": g.missing, "l2": _mean(g.l2),
                           "l2_count": len(g.l2), "auc": _mean(g.auc), "auc_count": len(g.auc),
                           "inout_ap": g.inout_ap, "inout_count": len(g.inout_labels)}
        if self.eyes:
            e = self.eyes
            out["eyes"] = {**asdict(e), "accuracy": e.accuracy}
        out["notes"] = list(self.notes)
        out["skipped"] = list(self.skipped)
        return out

    def lines(self) -> List[str]:
        s = self.summary()
        out = [f"frames: {self.frames} in the bag, {self.annotated} annotated "
               f"({self.unmatched} not in the bag)"]
        if "faces" in s:
            f = s["faces"]
            out.append(f"faces ({self.rule}): precision {_fmt(f['precision'])}, "
                       f"recall {_fmt(f['recall'])} (tp {f['tp']}, fp {f['fp']}, fn {f['fn']})")
        if "gaze" in s:
            g = s["gaze"]
            auc = (f"AUC {_fmt(g['auc'])} over {g['auc_count']}" if g["auc_count"]
                   else "AUC n/a (no heatmaps recorded)")
            ap = (f"in/out AP {_fmt(g['inout_ap'])} over {g['inout_count']}"
                  if g["inout_ap"] is not None else "in/out AP n/a (needs in- and out-of-frame)")
            out.append(f"gaze: L2 {_fmt(g['l2'])} over {g['l2_count']} in-frame heads; {auc}; "
                       f"{ap}; {g['missing']} of {g['heads']} heads without a recorded target")
        if "eyes" in s:
            e = s["eyes"]
            out.append(f"eyes: accuracy {_fmt(e['accuracy'])} ({e['correct']} of {e['labels']} "
                       f"labels; {e['missing']} without a recorded state)")
        return (out + [f"note: {n}" for n in self.notes]
                + [f"skipped: {n}" for n in self.skipped])


def evaluate_bag(bag, heads: Sequence[HeadAnnotation] = (), eye_labels: Sequence[EyeLabel] = (),
                 match: str = "index", iou: float = 0.5, gaze_iou: float = 0.1,
                 topics: Optional[Dict[str, str]] = None, boxes: str = "head",
                 min_inside: float = MIN_INSIDE) -> EvalReport:
    """Score the outputs recorded in `bag`. `topics` may name the FaceArray / EyeStateArray /
    GazeTargetArray topics (keys: faces, eyes, gaze) where a bag has several of a type.
    What cannot be read (damage, a message that does not deserialize) is skipped and listed
    in the report's `skipped`; the rest is scored."""
    if match not in MATCH_MODES:
        raise ValueError(f"unknown frame matching '{match}' (known: {', '.join(MATCH_MODES)})")
    if boxes not in BOX_KINDS:
        raise ValueError(f"unknown box kind '{boxes}' (known: {', '.join(BOX_KINDS)})")
    if not 0 < min_inside <= 1:
        raise ValueError(f"min_inside must be in (0, 1], got {min_inside}")
    if not heads and not eye_labels:
        raise AnnotationError("nothing to evaluate: give head/gaze annotations or eye labels")
    reader = BagReader(bag)
    frames = read_recorded(reader, topics or {}, need_eyes=bool(eye_labels))
    report = EvalReport(frames=len(frames), iou=iou, boxes=boxes, min_inside=min_inside,
                        skipped=reader.problems)
    pair = (functools.partial(match_heads, min_inside=min_inside) if boxes == "head"
            else functools.partial(match_boxes, min_iou=iou))
    pair_gaze = pair if boxes == "head" else functools.partial(match_boxes, min_iou=gaze_iou)
    locate = _FrameLocator(frames, match)
    if heads:
        by_frame: Dict[str, List[HeadAnnotation]] = defaultdict(list)
        for h in heads:
            by_frame[h.frame].append(h)
        report.annotated = len(by_frame)
        report.detection = DetectionScores()
        if any(h.in_frame is not None for h in heads):
            if any(f.gaze is not None for f in frames):
                report.gaze = GazeScores()
            else:
                report.notes.append(f"gaze not scored: no {GAZE} recorded")
        for position, name in enumerate(sorted(by_frame)):
            frame = locate(name, position)
            if frame is None:
                report.unmatched += 1
                continue
            _score_detection(report.detection, by_frame[name], frame, pair)
            if report.gaze is not None:
                _score_gaze(report.gaze, by_frame[name], frame, pair_gaze)
    if eye_labels:
        report.eyes = EyeScores()
        for label in eye_labels:
            _score_eyes(report.eyes, label, locate(label.frame, _index(label.frame, match)))
    return report


def read_recorded(reader: BagReader, topics: Dict[str, str], need_eyes: bool) -> List[Recorded]:
    """Frames in stamp order with the outputs recorded for them."""
    faces_topic = _topic(reader, FACES, topics.get("faces"), required=True)
    eyes_topic = _topic(reader, EYES, topics.get("eyes"), required=need_eyes)
    gaze_topic = _topic(reader, GAZE, topics.get("gaze"), required=False)
    images = reader.topics_of_type(IMAGE, COMPRESSED_IMAGE)
    image_topic = images[0] if len(images) == 1 else None
    wanted = [t for t in (faces_topic, eyes_topic, gaze_topic, image_topic) if t]
    classes = {t: message_class(reader.topics[t].msgtype) for t in wanted}
    frames: Dict[Tuple[int, int], Recorded] = {}
    for msg in reader.messages(wanted):
        m = reader.deserialize(msg, classes[msg.topic])
        if m is None:
            continue
        key = (m.header.stamp.sec, m.header.stamp.nanosec)
        frame = frames.setdefault(key, Recorded(key[0] + key[1] * 1e-9))
        if msg.topic == faces_topic:
            frame.faces, frame.width, frame.height = msg_to_faces(m), m.image_width, m.image_height
        elif msg.topic == eyes_topic:
            frame.eyes = msg_to_eyes(m)
        elif msg.topic == gaze_topic:
            frame.gaze = msg_to_gaze(m)
    return [frames[k] for k in sorted(frames)]


class _FrameLocator:
    """The recorded frame an annotation names (None when the bag does not have it)."""

    def __init__(self, frames: List[Recorded], match: str):
        self.frames, self.match = frames, match
        self.stamps = np.array([f.stamp for f in frames])

    def __call__(self, name: str, position: Optional[int]) -> Optional[Recorded]:
        if self.match == "index":
            in_bag = position is not None and 0 <= position < len(self.frames)
            return self.frames[position] if in_bag else None
        try:
            stamp = float(name)
        except ValueError:
            raise AnnotationError(f"frame '{name}' is not a stamp in seconds "
                                  "(use index matching for frame names)") from None
        if not len(self.stamps):
            return None
        i = int(np.argmin(np.abs(self.stamps - stamp)))
        return self.frames[i] if abs(self.stamps[i] - stamp) <= STAMP_TOLERANCE else None


def match_boxes(truth: Sequence[Box], predicted: Sequence[Box],
                min_iou: float) -> List[Tuple[int, int]]:
    """One-to-one (truth, predicted) index pairs, highest IoU first, each IoU >= min_iou."""
    pairs = sorted(((box_iou(t, p), i, j) for i, t in enumerate(truth)
                    for j, p in enumerate(predicted)), reverse=True)
    used_t, used_p, out = set(), set(), []
    for overlap, i, j in pairs:
        if overlap < min_iou or overlap <= 0:
            break
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            out.append((i, j))
    return out


def match_heads(heads: Sequence[Box], faces: Sequence[Box],
                min_inside: float = MIN_INSIDE) -> List[Tuple[int, int]]:
    """One-to-one (head, face) index pairs: the face lies in the head box (at least
    `min_inside` of its area) and is not a speck in it; the pair of highest IoU first, so of
    two faces in one head box the one nearer its size wins."""
    pairs = sorted(((box_iou(h, f), i, j) for i, h in enumerate(heads)
                    for j, f in enumerate(faces)
                    if _inside(f, h) >= min_inside and _area(f) >= MIN_FACE_AREA * _area(h)),
                   reverse=True)
    used_h, used_f, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_h and j not in used_f:
            used_h.add(i)
            used_f.add(j)
            out.append((i, j))
    return out


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _inside(inner: Box, outer: Box) -> float:
    """Share of `inner`'s area inside `outer`."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    return w * h / _area(inner) if w > 0 and h > 0 and _area(inner) > 0 else 0.0


def _score_detection(scores: DetectionScores, heads: List[HeadAnnotation], frame: Recorded,
                     pair) -> None:
    pairs = pair([h.box for h in heads], [f.xyxy for f in frame.faces])
    scores.tp += len(pairs)
    scores.fp += len(frame.faces) - len(pairs)
    scores.fn += len(heads) - len(pairs)


def _score_gaze(scores: GazeScores, heads: List[HeadAnnotation], frame: Recorded,
                pair) -> None:
    annotated = [h for h in heads if h.in_frame is not None]
    face_of = dict(pair([h.box for h in annotated], [f.xyxy for f in frame.faces]))
    targets = {t.face_index: t for t in frame.gaze or []}
    for i, head in enumerate(annotated):
        scores.heads += 1
        target = targets.get(face_of.get(i, -1))
        if target is None:
            scores.missing += 1
            continue
        scores.inout_labels.append(int(head.in_frame))
        scores.inout_scores.append(float(target.inout))
        if not head.in_frame:
            continue
        gx, gy = head.gaze[0] / frame.width, head.gaze[1] / frame.height
        scores.l2.append(math.hypot(target.point[0] / frame.width - gx,
                                    target.point[1] / frame.height - gy))
        hm = target.heatmap
        if hm is not None and hm.shape[0] == hm.shape[1]:
            scores.auc.append(vat_auc(hm, gx, gy))


def _score_eyes(scores: EyeScores, label: EyeLabel, frame: Optional[Recorded]) -> None:
    scores.labels += 1
    recorded = frame.eyes if frame is not None and frame.eyes is not None else []
    state = next((e.state for e in recorded if e.face_index == label.face_index), None)
    if state is None:
        scores.missing += 1
    elif state == label.label:
        scores.correct += 1


def _topic(reader: BagReader, msgtype: str, given: Optional[str], required: bool) -> Optional[str]:
    found = reader.topics_of_type(msgtype)
    if given is not None:
        if given not in found:
            raise TopicNotFoundError(f"'{given}' is not a {msgtype} topic of '{reader.path}' "
                                     f"(those are: {found or 'none'})")
        return given
    if len(found) == 1:
        return found[0]
    if found or required:
        raise TopicNotFoundError(f"bag '{reader.path}' has {len(found)} {msgtype} topics "
                                 f"({found or 'none'}); name one")
    return None


def _index(frame: str, match: str) -> Optional[int]:
    if match != "index":
        return None
    try:
        return int(frame)
    except ValueError:
        raise AnnotationError(f"eye-label frame '{frame}' is not a frame index") from None


def _mean(values: List[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4f}"
