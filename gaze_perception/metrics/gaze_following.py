"""GazeFollow and VideoAttentionTarget metrics as the official Gaze-LLE evaluation defines them.

Published numbers are only comparable when the quirks are kept: the predicted point is the
first maximum of the 64x64 heatmap divided by 64 (no half-pixel offset); GazeFollow AUC
upsamples the heatmap bilinearly to the image size against one-hot annotator pixels; the VAT
AUC's positive rectangle is clipped at 63, so it never contains the last row or column.
AUC and AP are computed here (rank statistics) instead of by scikit-learn, giving the same
values without the dependency. Heatmaps may be numpy arrays or torch tensors.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

VAT_SIGMA = 3


def _as_numpy(heatmap) -> np.ndarray:
    if hasattr(heatmap, "detach"):
        heatmap = heatmap.detach().float().cpu().numpy()
    return np.asarray(heatmap)


def argmax_point(heatmap) -> Tuple[float, float]:
    """(x, y) normalised: the first maximum's column and row divided by the map size."""
    hm = _as_numpy(heatmap)
    row, col = np.unravel_index(int(np.argmax(hm)), hm.shape)
    return col / hm.shape[1], row / hm.shape[0]


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (ties count half), equal to sklearn's `roc_auc_score`."""
    labels = np.asarray(labels).ravel().astype(bool)
    scores = np.asarray(scores).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative samples")
    order = np.argsort(scores, kind="mergesort")
    ranked = scores[order]
    # Average (1-based) rank of each run of equal scores.
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], ranked.size]
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(labels, scores) -> float:
    """Step-wise average precision, equal to sklearn's `average_precision_score`."""
    labels = np.asarray(labels).ravel().astype(bool)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if not labels.any():
        raise ValueError("average precision needs at least one positive sample")
    order = np.argsort(-scores, kind="mergesort")
    hits = labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(scores[order])), hits.size - 1]
    tp = np.cumsum(hits)[last_of_run]
    precision = tp / (last_of_run + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def bilinear_resize(heatmap, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling with half-pixel centres and clamped borders (torch's
    `interpolate(mode="bilinear", align_corners=False)`), in float32 with the reference
    kernel's order of operations. The AUC counts ties, so rounding matters: the current CPU
    kernel of torch rounds differently and turns a fixture pair into a tie (AUC off by 7e-7)."""
    hm = _as_numpy(heatmap).astype(np.float32)

    def taps(n_in: int, n_out: int):
        scale = np.float32(n_in) / np.float32(n_out)
        src = np.maximum(scale * (np.arange(n_out, dtype=np.float32) + np.float32(0.5))
                         - np.float32(0.5), np.float32(0.0))
        lo = src.astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        w_hi = src - lo.astype(np.float32)
        return lo, hi, np.float32(1.0) - w_hi, w_hi

    y0, y1, wy0, wy1 = taps(hm.shape[0], height)
    x0, x1, wx0, wx1 = taps(hm.shape[1], width)
    top = wx0 * hm[y0][:, x0] + wx1 * hm[y0][:, x1]
    bottom = wx0 * hm[y1][:, x0] + wx1 * hm[y1][:, x1]
    return wy0[:, None] * top + wy1[:, None] * bottom


def gazefollow_auc(heatmap, gt_x: Sequence[float], gt_y: Sequence[float],
                   width: int, height: int) -> float:
    """AUC of the heatmap, bilinearly resized to the image, against the annotators' pixels."""
    target = np.zeros((height, width), dtype=bool)
    for x, y in zip(gt_x, gt_y):
        if x >= 0:
            target[min(int(y * height), height - 1), min(int(x * width), width - 1)] = True
    return roc_auc(target, bilinear_resize(heatmap, height, width))


def gazefollow_l2(heatmap, gt_x: Sequence[float], gt_y: Sequence[float]) -> Tuple[float, float]:
    """(Avg L2, Min L2): distance to the annotators' mean point and to the nearest annotator."""
    px, py = argmax_point(heatmap)
    gx, gy = np.asarray(gt_x, dtype=np.float64), np.asarray(gt_y, dtype=np.float64)
    avg = float(np.hypot(px - gx.mean(), py - gy.mean()))
    return avg, float(np.hypot(px - gx, py - gy).min())


def vat_auc(heatmap, gt_x: float, gt_y: float) -> float:
    """AUC on the 64x64 map against the rectangle of half-width 3 sigma around the point."""
    hm = _as_numpy(heatmap)
    res = hm.shape[0]
    cx, cy = gt_x * res, gt_y * res
    r = 3 * VAT_SIGMA
    x0, y0 = max(0, int(cx - r)), max(0, int(cy - r))
    x1, y1 = min(int(cx + r + 1), res - 1), min(int(cy + r + 1), res - 1)
    target = np.zeros(hm.shape, dtype=bool)
    target[y0:y1, x0:x1] = True
    return roc_auc(target, hm)


def vat_l2(heatmap, gt_x: float, gt_y: float) -> float:
    px, py = argmax_point(heatmap)
    return float(np.hypot(px - gt_x, py - gt_y))


def inout_ap(labels: Sequence[int], inout_scores: Sequence[float]) -> float:
    """VideoAttentionTarget in/out AP over all samples (label 1 = gaze inside the frame)."""
    return average_precision(labels, inout_scores)
