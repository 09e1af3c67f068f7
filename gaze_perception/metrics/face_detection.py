"""Face-detection figures: average precision over the images of a box file, normalised
landmark error (numpy only; `eval face-detector` and face-detector training use them).

AP follows the VOC / COCO rules: detections of all images ranked by score, each matched
greedily (best score first) to the unmatched face it overlaps most at IoU >= t; a detection
that only overlaps an ignored face (WIDER FACE `invalid`) counts neither way; AP is the area
under the precision envelope. AP@[0.5:0.95] averages t = 0.50, 0.55, ..., 0.95. Ground truth
per image is anything with `boxes`, `ignore`, `points` and `point_boxes`
(`training.faces.data.ImageFaces`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..core.boxes import iou_matrix
from ..core.types import Face

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


@dataclass
class Detections:
    """One image's detections: boxes (K, 4) x1 y1 x2 y2, scores (K,), points (K, 5, 2) or
    None when the detector gives no landmarks."""

    boxes: np.ndarray
    scores: np.ndarray
    points: Optional[np.ndarray] = None

    @classmethod
    def from_faces(cls, faces: Sequence[Face]) -> "Detections":
        boxes = np.array([f.xyxy for f in faces], np.float64).reshape(-1, 4)
        scores = np.array([f.score for f in faces], np.float64)
        has_points = faces and all(len(f.landmarks) == 5 for f in faces)
        points = np.array([f.landmarks for f in faces], np.float64) if has_points else None
        return cls(boxes, scores, points)


def average_precision(dets: Sequence[Detections], truth: Sequence,
                      threshold: float) -> float:
    """AP at IoU `threshold` over images (dets[i] belongs to truth[i]); NaN without faces."""
    scores, hits = [], []
    for d, t in zip(dets, truth):
        s, h = _match(d, t, threshold)
        scores.append(s)
        hits.append(h)
    n_faces = sum(int((~t.ignore).sum()) for t in truth)
    if n_faces == 0:
        return math.nan
    scores, hits = np.concatenate(scores + [[]]), np.concatenate(hits + [[]])
    hits = hits[np.argsort(-scores, kind="stable")]
    tp = np.cumsum(hits)
    recall = np.concatenate([[0.0], tp / n_faces])
    precision = np.concatenate([[1.0], tp / np.arange(1, len(hits) + 1)])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * envelope[1:]))


def _match(d: Detections, t, threshold: float):
    """(scores, 1 = true / 0 = false positive) of the detections that count."""
    order = np.argsort(-d.scores, kind="stable")
    overlaps = iou_matrix(d.boxes[order], t.boxes)
    taken = np.zeros(len(t.boxes), bool)
    scores, hits = [], []
    for k, i in enumerate(order):
        free = np.where(taken | t.ignore, -1.0, overlaps[k])
        j = int(free.argmax()) if free.size else -1
        if j >= 0 and free[j] >= threshold:
            taken[j] = True
            hit = 1.0
        elif overlaps.shape[1] and (overlaps[k][t.ignore] >= threshold).any():
            continue  # on an ignored face: neither right nor wrong
        else:
            hit = 0.0
        scores.append(d.scores[i])
        hits.append(hit)
    return np.array(scores, np.float64), np.array(hits, np.float64)


def landmark_errors(dets: Sequence[Detections], truth: Sequence,
                    min_iou: float = 0.5) -> np.ndarray:
    """Normalised error of every landmark face whose box a detection with points overlaps by
    `min_iou` (the best-overlapping one); faces without such a detection are left out."""
    errors = []
    for d, t in zip(dets, truth):
        if not len(t.points) or d.points is None or not len(d.boxes):
            continue
        overlaps = iou_matrix(t.point_boxes, d.boxes)
        for face, row in enumerate(overlaps):
            if row.max() >= min_iou:
                errors.append(normalised_point_error(d.points[row.argmax()][None],
                                                     t.points[face][None])[0])
    return np.array(errors, np.float64)


def normalised_point_error(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per face: mean distance of the five points / distance between the two true eyes.
    Points as (N, 10) x1..x5, y1..y5 or (N, 5, 2)."""
    pred, true = _as_points(pred), _as_points(true)
    inter_ocular = np.linalg.norm(true[:, 0] - true[:, 1], axis=1)
    return np.linalg.norm(pred - true, axis=2).mean(axis=1) / np.maximum(inter_ocular, 1e-9)


def _as_points(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, np.float64)
    return p if p.ndim == 3 else np.stack([p[:, :5], p[:, 5:]], axis=2)
