"""Annotated images for debug topics, the demo and `run --out` (RGB in, RGB out).

Readable from 640x480 to 4K with 1-40 faces: line widths and text follow the frame and each
face's size, every face gets one short label (its id, its eye state, its gaze target), and the
labels never overlap one another, the legend or the frame's edge: each goes to the first free
place around its face (above, below, beside), else to the nearest free place farther out with
a leader line back to the face (`layout_labels`, tested on crowded frames). A legend in a
corner names the colours.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .types import CLOSED, OPEN, FrameResult

_GREEN, _RED, _YELLOW, _CYAN = (0, 200, 0), (230, 40, 40), (250, 210, 0), (0, 200, 230)
_WHITE, _BLACK = (255, 255, 255), (0, 0, 0)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
#: eye state → (colour, its word in a label); any other state: yellow, "?"
_EYES = {OPEN: (_GREEN, "open"), CLOSED: (_RED, "closed")}
Box = Tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)


def frame_scale(width: int, height: int) -> float:
    """Text scale of a frame: 0.4 at 640x480, growing with the shorter side (1.35 at 4K)."""
    return max(0.35, 0.4 * min(width, height) / 480.0)


def face_label(index: int, track_id: int, eye_state: Optional[str],
               target: Optional[str]) -> str:
    """Short: the id (track id, else #index), the eye state, the gaze target."""
    parts = [str(track_id) if track_id else f"#{index}"]
    if eye_state is not None:
        parts.append(_EYES.get(eye_state, (None, "?"))[1])
    if target:
        parts.append(">" + target)
    return " ".join(parts)


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def layout_labels(width: int, height: int, anchors: Sequence[Box],
                  sizes: Sequence[Tuple[int, int]], reserved: Sequence[Box] = (),
                  gap: int = 2) -> List[Box]:
    """A box for each label (`sizes[i]` = its width and height) near face box `anchors[i]`,
    inside the frame and overlapping no other label nor `reserved`. Tried in order: above the
    face, below it, right of it, left of it, then rings of places farther out (nearest first,
    to be joined to the face by a leader line): first where no face is covered either, within
    a few label heights, then anywhere no label is. A label larger than the frame is clipped
    to it."""
    placed: List[Box] = []
    taken = list(reserved)
    faces = [tuple(a) for a in anchors]
    for (ax0, ay0, ax1, ay1), (w, h) in zip(anchors, sizes):
        w, h = min(w, width), min(h, height)
        near = [(ax0, ay0 - gap - h), (ax0, ay1 + gap), (ax1 + gap, ay0), (ax0 - gap - w, ay0)]
        centre = ((ax0 + ax1) // 2, (ay0 + ay1) // 2)
        step = max(h, 4)
        box = (_first_free(near, w, h, width, height, taken + faces)
               or _ring_free(centre, w, h, width, height, taken + faces, step, 4)
               or _first_free(near, w, h, width, height, taken)
               or _ring_free(centre, w, h, width, height, taken, step,
                             2 + (width + height) // step))
        if box is None:  # no free place anywhere (more text than frame): the first one, clipped
            x, y = _clip(near[0], w, h, width, height)
            box = (x, y, x + w, y + h)
        placed.append(box)
        taken.append(box)
    return placed


def _ring_free(centre, w, h, width, height, taken, step, rings) -> Optional[Box]:
    """The first free place on rings of radius step, 2 step, ... around `centre`."""
    cx, cy = centre
    for ring in range(1, rings + 1):
        r = ring * step
        n = max(8, int(2 * math.pi * r / step))
        spots = [(int(cx + r * math.cos(2 * math.pi * k / n) - w / 2),
                  int(cy + r * math.sin(2 * math.pi * k / n) - h / 2)) for k in range(n)]
        box = _first_free(spots, w, h, width, height, taken)
        if box is not None:
            return box
    return None


def _clip(xy, w, h, width, height) -> Tuple[int, int]:
    return (int(min(max(0, xy[0]), width - w)), int(min(max(0, xy[1]), height - h)))


def _first_free(spots, w, h, width, height, taken) -> Optional[Box]:
    for x, y in spots:
        if x < 0 or y < 0 or x + w > width or y + h > height:
            continue
        box = (int(x), int(y), int(x) + w, int(y) + h)
        if not any(_overlaps(box, t) for t in taken):
            return box
    return None


def _text_size(text: str, scale: float, thick: int) -> Tuple[Tuple[int, int], int]:
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
    pad = max(1, thick)
    return (tw + 2 * pad, th + base + 2 * pad), base


_LEGEND = [("eyes open", _GREEN), ("eyes closed", _RED), ("eyes unknown (?)", _YELLOW)]


@dataclass
class Label:
    text: str
    box: Box        # where it is drawn
    face: Box       # the face box it names
    thick: int      # the face's line width


@dataclass
class Plan:
    """Where `annotate` draws: the legend's box (None: no legend) and one label per face."""

    scale: float
    thick: int
    legend: Optional[Box]
    legend_rows: List[Tuple[str, Tuple[int, int, int]]]
    labels: List[Label]


def plan(result: FrameResult, width: int, height: int) -> Plan:
    """The layout of a frame's annotations (pure: no drawing), so a test can check it."""
    eyes = {e.face_index: e for e in (result.eyes or [])}
    gaze = {g.face_index: g for g in (result.gaze or [])}
    scale = frame_scale(width, height)
    thick = max(1, round(min(width, height) / 480))
    rows = (_LEGEND if result.eyes is not None else []) + \
        ([("gaze", _CYAN)] if result.gaze is not None else [])
    legend = None
    if rows and result.faces:
        sizes = [_text_size(t, 0.85 * scale, thick)[0] for t, _ in rows]
        line = max(h for _, h in sizes)
        w, h = max(tw for tw, _ in sizes) + line + 3 * thick, line * len(rows) + 2 * thick
        if w <= width and h <= height:
            legend = (width - w, height - h, width, height)  # bottom right
    anchors, texts, sizes, thicks = [], [], [], []
    for i, f in enumerate(result.faces):
        e, g = eyes.get(i), gaze.get(i)
        texts.append(face_label(i, f.track_id, None if e is None else e.state,
                                None if g is None else g.label))
        sizes.append(_text_size(texts[-1], scale, thick)[0])
        anchors.append(tuple(int(round(v)) for v in f.xyxy))
        # lines follow the face (a 30 px face in a 4K frame gets thin ones), at most the frame's
        thicks.append(max(1, min(thick, round(max(f.width, f.height) / 40))))
    boxes = layout_labels(width, height, anchors, sizes, [legend] if legend else [])
    return Plan(scale, thick, legend, rows if legend else [],
                [Label(t, b, a, k) for t, b, a, k in zip(texts, boxes, anchors, thicks)])


def annotate(rgb: np.ndarray, result: FrameResult) -> np.ndarray:
    out = np.ascontiguousarray(rgb.copy())
    height, width = out.shape[:2]
    p = plan(result, width, height)
    eyes = {e.face_index: e for e in (result.eyes or [])}
    gaze = {g.face_index: g for g in (result.gaze or [])}
    for i, (f, label) in enumerate(zip(result.faces, p.labels)):
        thick = label.thick
        x1, y1, x2, y2 = label.face
        cv2.rectangle(out, (x1, y1), (x2, y2), _GREEN, thick)
        for px, py in f.landmarks:
            cv2.circle(out, (int(round(px)), int(round(py))), thick, _YELLOW, -1)
        e, g = eyes.get(i), gaze.get(i)
        if e is not None:
            r = max(2, min(3 * thick, int(max(f.width, f.height) / 10)))
            cv2.circle(out, (x2 - r, y1 + r), r, _EYES.get(e.state, (_YELLOW, ""))[0], -1)
        if g is not None:
            cx, cy = (int(round(v)) for v in f.center)
            gx, gy = int(round(g.point[0])), int(round(g.point[1]))
            cv2.line(out, (cx, cy), (gx, gy), _CYAN, thick)
            cv2.circle(out, (gx, gy), 2 * thick, _CYAN, -1)
    for label in p.labels:
        _draw_label(out, label, p.scale, p.thick)
    if p.legend is not None:
        _draw_legend(out, p)
    return out


def _draw_label(out: np.ndarray, label: Label, scale: float, thick: int) -> None:
    (bx0, by0, bx1, by1), (ax0, ay0, ax1, ay1) = label.box, label.face
    if not _overlaps(label.box, (ax0 - 3, ay0 - 3, ax1 + 3, ay1 + 3)):  # placed away: a leader
        lx = min(max((ax0 + ax1) // 2, bx0), bx1 - 1)
        ly = min(max((ay0 + ay1) // 2, by0), by1 - 1)
        cv2.line(out, (lx, ly), (min(max(lx, ax0), ax1), min(max(ly, ay0), ay1)), _WHITE,
                 max(1, label.thick - 1), cv2.LINE_AA)
    cv2.rectangle(out, (bx0, by0), (bx1 - 1, by1 - 1), _BLACK, -1)
    _, base = _text_size(label.text, scale, thick)
    pad = max(1, thick)
    cv2.putText(out, label.text, (bx0 + pad, by1 - pad - base), _FONT, scale, _WHITE, thick,
                cv2.LINE_AA)


def _draw_legend(out: np.ndarray, p: Plan) -> None:
    x0, y0, x1, y1 = p.legend
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), _BLACK, -1)
    line = (y1 - y0 - 2 * p.thick) // len(p.legend_rows)
    for k, (text, colour) in enumerate(p.legend_rows):
        y = y0 + p.thick + k * line
        cv2.circle(out, (x0 + line // 2, y + line // 2), max(2, line // 4), colour, -1)
        cv2.putText(out, text, (x0 + line + p.thick, y + line - 2 * p.thick), _FONT,
                    0.85 * p.scale, _WHITE, max(1, p.thick - 1), cv2.LINE_AA)
