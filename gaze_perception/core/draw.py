"""Annotated images for debug topics, the demo and `run --out` (RGB in, RGB out)."""
from __future__ import annotations

import cv2
import numpy as np

from .types import CLOSED, OPEN, FrameResult

_GREEN, _RED, _YELLOW, _CYAN = (0, 200, 0), (230, 40, 40), (250, 210, 0), (0, 200, 230)


def annotate(rgb: np.ndarray, result: FrameResult) -> np.ndarray:
    out = np.ascontiguousarray(rgb.copy())
    eyes = {e.face_index: e for e in (result.eyes or [])}
    gaze = {g.face_index: g for g in (result.gaze or [])}
    thick = max(1, round(max(out.shape[:2]) / 400))
    for i, f in enumerate(result.faces):
        x1, y1, x2, y2 = (int(round(v)) for v in f.xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), _GREEN, thick)
        for px, py in f.landmarks:
            cv2.circle(out, (int(round(px)), int(round(py))), thick + 1, _YELLOW, -1)
        text = f"{f.score:.2f}" + (f" id{f.track_id}" if f.track_id else "")
        e = eyes.get(i)
        if e is not None:
            text += f" eyes:{e.state}"
            colour = _RED if e.state == CLOSED else (_GREEN if e.state == OPEN else _YELLOW)
            cv2.circle(out, (x2 - 4 * thick, y1 + 4 * thick), 3 * thick, colour, -1)
        cv2.putText(out, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick,
                    _GREEN, thick)
        g = gaze.get(i)
        if g is not None:
            cx, cy = (int(round(v)) for v in f.center)
            gx, gy = int(round(g.point[0])), int(round(g.point[1]))
            cv2.line(out, (cx, cy), (gx, gy), _CYAN, thick)
            cv2.circle(out, (gx, gy), 3 * thick, _CYAN, -1)
            if g.label:
                cv2.putText(out, g.label, (gx + 4, gy), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick,
                            _CYAN, thick)
    return out
