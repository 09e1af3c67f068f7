"""Greedy non-maximum suppression, the same as torchvision.ops.nms / batched_nms (IoU of
(x1, y1, x2, y2) boxes with areas (x2 - x1) * (y2 - y1), a box is dropped when its IoU with a
kept, better-scoring box exceeds the threshold; float32 arithmetic in the same order), without
importing torchvision: `torchvision.ops` pulls in torch._dynamo, about 1.7 s of every start-up.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the kept boxes, best score first."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes.detach().to("cpu", torch.float32)[order.cpu()].numpy()
    keep = _greedy(b, np.float32(iou_threshold))
    return order[torch.from_numpy(keep).to(order.device)]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """`nms` within each group of `idxs` (e.g. the image of each box); kept indices of all
    groups, best score first."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    groups = torch.unique(idxs)
    if groups.numel() == 1:
        return nms(boxes, scores, iou_threshold)
    keep = torch.cat([mine[nms(boxes[mine], scores[mine], iou_threshold)]
                      for mine in (torch.nonzero(idxs == g)[:, 0] for g in groups)])
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def _greedy(b: np.ndarray, threshold: np.float32, block: int = 512) -> np.ndarray:
    """Kept rows of score-sorted float32 boxes (K,4). Blocks of `block` boxes: the overlaps of
    a block's boxes still in play with every later box still in play, as one matrix, then the
    greedy pass over the block in order."""
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    n = b.shape[0]
    removed = np.zeros(n, dtype=bool)
    keep = []
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        rows = rows[~removed[rows]]
        if not rows.size:
            continue
        cols = np.arange(start, n)
        cols = cols[~removed[cols]]
        r, c = rows[:, None], cols[None, :]
        w = np.maximum(np.minimum(x2[r], x2[c]) - np.maximum(x1[r], x1[c]), np.float32(0))
        h = np.maximum(np.minimum(y2[r], y2[c]) - np.maximum(y1[r], y1[c]), np.float32(0))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 of empty boxes: no overlap
            over = inter / (area[r] + area[c] - inter) > threshold
        gone = np.zeros(cols.size, dtype=bool)
        for k, (row, at) in enumerate(zip(rows.tolist(), np.searchsorted(cols, rows).tolist())):
            if not gone[at]:
                keep.append(row)
                gone |= over[k]  # IoU is symmetric: no box before this one is marked anew
        removed[cols[gone]] = True
    return np.asarray(keep, dtype=np.int64)
