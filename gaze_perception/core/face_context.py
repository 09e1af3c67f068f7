"""Faces cut by the frame border: detect them again with context around them.

A face that fills the frame or is cut by its border leaves a cascade detector without the
context it was trained with: on tight AFLW2000 face crops MTCNN put the eye landmarks 0.60 of
the eye spacing too high (on the brows); with a grey border of a quarter of the crop around
them, 0.04 (the eye-state crops then show eyes again). So a face whose box comes within
`margin` of the border is detected again on a canvas: its box grown by `pad` on every side,
the part outside the frame grey, scaled so that the canvas is at most `max_side` pixels. The
detector is called as `detect(canvas, min_size)`: only faces of about the expected size are
searched for (a shorter pyramid). The
canvas detection that overlaps the first one best (IoU >= `min_iou`) replaces it, mapped back
to frame pixels; faces away from the border are left exactly as they were.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, List, Sequence

import cv2
import numpy as np

from .boxes import iou
from .types import Face

GREY = 127


def touches_border(face: Face, width: int, height: int, margin: float = 0.02) -> bool:
    m = margin * max(width, height)
    x0, y0, x1, y1 = face.xyxy
    return x0 < m or y0 < m or x1 > width - m or y1 > height - m


def refine_border_faces(detect: Callable[[np.ndarray, float], List[Face]], image: np.ndarray,
                        faces: Sequence[Face], pad: float = 0.5, margin: float = 0.02,
                        max_side: int = 400, min_iou: float = 0.3) -> List[Face]:
    """`faces` with each border face replaced by its detection on a padded canvas."""
    h, w = image.shape[:2]
    out = []
    for face in faces:
        if not touches_border(face, w, h, margin) or face.width <= 0 or face.height <= 0:
            out.append(face)
            continue
        p = pad * max(face.width, face.height)
        x0, y0 = int(np.floor(face.x - p)), int(np.floor(face.y - p))
        x1 = int(np.ceil(face.x + face.width + p))
        y1 = int(np.ceil(face.y + face.height + p))
        part = image[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
        canvas = cv2.copyMakeBorder(part, max(0, -y0), max(0, y1 - h), max(0, -x0),
                                    max(0, x1 - w), cv2.BORDER_CONSTANT, value=(GREY,) * 3)
        scale = min(1.0, max_side / max(canvas.shape[:2]))
        if scale < 1.0:
            canvas = cv2.resize(canvas, (max(1, round(canvas.shape[1] * scale)),
                                         max(1, round(canvas.shape[0] * scale))),
                                interpolation=cv2.INTER_AREA)
        sx, sy = (x1 - x0) / canvas.shape[1], (y1 - y0) / canvas.shape[0]
        # the face fills about 1 / (1 + 2 pad) of the canvas: look for faces of half that
        least = 0.5 * min(canvas.shape[:2]) / (1.0 + 2.0 * pad)
        back = [_mapped(c, sx, sy, x0, y0)
                for c in detect(np.ascontiguousarray(canvas), least)]
        best = max(back, key=lambda c: iou(c.xyxy, face.xyxy), default=None)
        out.append(best if best is not None and iou(best.xyxy, face.xyxy) >= min_iou else face)
    return out


def _mapped(face: Face, sx: float, sy: float, x0: float, y0: float) -> Face:
    return replace(face, x=face.x * sx + x0, y=face.y * sy + y0, width=face.width * sx,
                   height=face.height * sy,
                   landmarks=[(px * sx + x0, py * sy + y0) for px, py in face.landmarks])


def add_large_faces(detect: Callable[[np.ndarray, float], List[Face]], image: np.ndarray,
                    faces: Sequence[Face], pad: float = 0.25, max_side: int = 320,
                    min_fraction: float = 0.35, min_iou: float = 0.3,
                    max_inner_faces: int = 1) -> List[Face]:
    """`faces` plus the faces a small padded copy of the frame shows that fill much of it
    (at least `min_fraction` of the shorter side) and overlap none of `faces`: a face filling
    the frame gives a cascade no context to find it in (MTCNN missed 17 % of tight AFLW2000
    face crops), the same frame with a grey border around it and scaled down does.

    A candidate holding more than `max_inner_faces` of `faces` (their centres inside it, each
    under half its size) is a crowd seen small, not a face: a 4000x2256 lecture-hall photo gave
    a 1397x1675 px phantom of score 0.70 over the students' faces. On the 391 tight AFLW2000
    development crops the pass adds 50 faces, none of which holds more than one."""
    h, w = image.shape[:2]
    if min(h, w) == 0:
        return list(faces)
    p = int(round(pad * max(h, w)))
    canvas = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=(GREY,) * 3)
    scale = min(1.0, max_side / max(canvas.shape[:2]))
    if scale < 1.0:
        canvas = cv2.resize(canvas, (max(1, round(canvas.shape[1] * scale)),
                                     max(1, round(canvas.shape[0] * scale))),
                            interpolation=cv2.INTER_AREA)
    sx, sy = (w + 2 * p) / canvas.shape[1], (h + 2 * p) / canvas.shape[0]
    out = list(faces)
    least = 0.8 * min_fraction * min(w, h) / max(sx, sy)   # canvas pixels, with some slack
    for c in detect(np.ascontiguousarray(canvas), least):
        big = _mapped(c, sx, sy, -p, -p)
        if max(big.width, big.height) < min_fraction * min(w, h):
            continue
        if _inner_faces(big, faces) > max_inner_faces:
            continue
        if all(iou(big.xyxy, f.xyxy) < min_iou for f in out):
            out.append(big)
    return out


def _inner_faces(big: Face, faces: Sequence[Face]) -> int:
    """How many of `faces` lie inside `big` (centre inside, under half its size)."""
    x0, y0, x1, y1 = big.xyxy
    size = max(big.width, big.height)
    return sum(1 for f in faces if x0 <= f.center[0] <= x1 and y0 <= f.center[1] <= y1
               and max(f.width, f.height) < 0.5 * size)
