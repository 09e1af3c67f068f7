"""Box overlap: the one intersection-over-union of the project (numpy only).

Boxes are corners (x1, y1, x2, y2). The tracker, the bag evaluator and face-detector training
and evaluation all call these.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def iou_matrix(a, b) -> np.ndarray:
    """(N, M) IoU of boxes a (N, 4) and b (M, 4); 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes."""
    return float(iou_matrix(a, b)[0, 0])
