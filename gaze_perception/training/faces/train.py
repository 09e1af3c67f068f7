"""Training one MTCNN stage on generated samples: multi-source loss, OHEM, figures, mining.

Each sample type trains the heads it has labels for (Zhang et al., 2016): negatives and
positives the face/non-face cross-entropy, positives and part faces the box offsets, landmark
faces the five points. Online hard example mining keeps the largest `ohem` share of the
classification losses in each batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...models.mtcnn import ONet, PNet, RNet
from ...metrics import classification as metrics
from .evaluate import normalised_point_error
from .samples import LANDMARK, NEG, PART, POS, Samples

#: network class and crop side per stage
STAGES = {"pnet": (PNet, 12), "rnet": (RNet, 24), "onet": (ONet, 48)}
#: (classification, box, landmark) loss weights; P-Net and R-Net of this port have no
#: landmark head, so their third weight has nothing to act on
DEFAULT_LOSS_WEIGHTS = {"pnet": (1.0, 0.5, 0.5), "rnet": (1.0, 0.5, 0.5), "onet": (1.0, 0.5, 1.0)}
#: mirror image of the landmark order: image-left and image-right swap
_FLIP_POINTS = [1, 0, 2, 4, 3]


@dataclass
class LossConfig:
    weights: Tuple[float, float, float]
    box_loss: str = "mse"                              # or "smooth_l1"
    cls_weights: Optional[Tuple[float, float]] = None  # (non-face, face) CE weights
    ohem: float = 0.7                                  # share of classification losses kept


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    flip: bool = True
    seed: int = 0


def normalise(images: Tensor) -> Tensor:
    """uint8 (N, S, S, 3) RGB -> the detector's float NCHW input."""
    return (images.permute(0, 3, 1, 2).float() - 127.5) * 0.0078125


def run_net(net: nn.Module, x: Tensor) -> Tuple[Tensor, Optional[Tensor], Tensor]:
    """(box offsets (N, 4), landmarks (N, 10) or None, class logits (N, 2)) of any stage."""
    out = net(x, logits=True)
    reg, logits = out[0].flatten(1), out[-1].flatten(1)
    return reg, (out[1] if len(out) == 3 else None), logits


def losses(reg: Tensor, pts: Optional[Tensor], logits: Tensor, kind: Tensor, offsets: Tensor,
           points: Tensor, cfg: LossConfig) -> Dict[str, Tensor]:
    """Per-head losses and their weighted sum ("total"); a head without samples adds 0."""
    zero = reg.new_zeros(())
    is_cls = (kind == NEG) | (kind == POS)
    cls = zero
    if is_cls.any():
        weight = reg.new_tensor(cfg.cls_weights) if cfg.cls_weights else None
        ce = F.cross_entropy(logits[is_cls], (kind[is_cls] == POS).long(), weight=weight,
                             reduction="none")
        keep = max(1, math.ceil(cfg.ohem * ce.numel()))
        cls = ce.topk(keep).values.mean() if keep < ce.numel() else ce.mean()
    is_box = (kind == POS) | (kind == PART)
    box_fn = F.mse_loss if cfg.box_loss == "mse" else F.smooth_l1_loss
    box = box_fn(reg[is_box], offsets[is_box]) if is_box.any() else zero
    is_pts = kind == LANDMARK
    pts_loss = (F.smooth_l1_loss(pts[is_pts], points[is_pts])
                if pts is not None and is_pts.any() else zero)
    w_cls, w_box, w_pts = cfg.weights
    return {"cls": cls, "box": box, "pts": pts_loss,
            "total": w_cls * cls + w_box * box + w_pts * pts_loss}


def flip(images: Tensor, offsets: Tensor, points: Tensor, mask: Tensor):
    """Mirror the masked samples and their targets (left and right landmarks swap)."""
    images, offsets, points = images.clone(), offsets.clone(), points.clone()
    images[mask] = images[mask].flip(2)
    o = offsets[mask]
    offsets[mask] = torch.stack([-o[:, 2], o[:, 1], -o[:, 0], o[:, 3]], dim=1)
    p = points[mask]
    points[mask] = torch.cat([1 - p[:, _FLIP_POINTS], p[:, [5 + i for i in _FLIP_POINTS]]], 1)
    return images, offsets, points


class _Tensors:
    """Samples as CPU tensors, indexed per batch."""

    def __init__(self, s: Samples) -> None:
        self.images = torch.from_numpy(s.images)
        self.kind = torch.from_numpy(s.kind.astype(np.int64))
        self.offsets = torch.from_numpy(s.offsets)
        self.points = torch.from_numpy(s.points)

    def __len__(self) -> int:
        return len(self.kind)


def train_epoch(net: nn.Module, data: _Tensors, opt: torch.optim.Optimizer, loss_cfg: LossConfig,
                cfg: TrainConfig, g: torch.Generator, device: torch.device) -> float:
    """One pass in a seeded order; mean total loss over the batches."""
    net.train()
    order, total, batches = torch.randperm(len(data), generator=g), 0.0, 0
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        images, offsets, points = data.images[idx], data.offsets[idx], data.points[idx]
        if cfg.flip:
            images, offsets, points = flip(images, offsets, points,
                                           torch.rand(len(idx), generator=g) < 0.5)
        reg, pts, logits = run_net(net, normalise(images.to(device)))
        loss = losses(reg, pts, logits, data.kind[idx].to(device), offsets.to(device),
                      points.to(device), loss_cfg)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total, batches = total + loss.item(), batches + 1
    return total / max(batches, 1)


@torch.inference_mode()
def evaluate(net: nn.Module, samples: Samples, loss_cfg: LossConfig, device: torch.device,
             batch_size: int = 1024) -> Dict[str, float]:
    """Losses (without OHEM), per-class accuracy, box and normalised landmark errors."""
    net.eval()
    data = _Tensors(samples)
    outs = [run_net(net, normalise(data.images[i:i + batch_size].to(device)))
            for i in range(0, len(data), batch_size)]
    reg = torch.cat([o[0] for o in outs]).cpu()
    pts = torch.cat([o[1] for o in outs]).cpu() if outs and outs[0][1] is not None else None
    logits = torch.cat([o[2] for o in outs]).cpu()
    plain = LossConfig(loss_cfg.weights, loss_cfg.box_loss, loss_cfg.cls_weights, ohem=1.0)
    out = {f"loss_{k}": float(v) for k, v in
           losses(reg, pts, logits, data.kind, data.offsets, data.points, plain).items()}
    out.update(sample_figures(samples, reg.numpy(), None if pts is None else pts.numpy(),
                              logits.softmax(1)[:, 1].numpy()))
    return out


def sample_figures(samples: Samples, reg: np.ndarray, pts: Optional[np.ndarray],
                   face_prob: np.ndarray) -> Dict[str, float]:
    """Face / non-face accuracy (threshold 0.5), mean absolute box-offset error (crop sides)
    and mean landmark error over the inter-ocular distance; NaN where no sample has a label."""
    cls = np.isin(samples.kind, (NEG, POS))
    cm = metrics.confusion_matrix(samples.kind[cls] == POS, face_prob[cls] >= 0.5, 2)
    recall = metrics.per_class(cm, ["non_face", "face"])
    box = np.isin(samples.kind, (POS, PART))
    lm = samples.kind == LANDMARK
    return {"acc_face": recall["face"]["recall"] if cm[1].sum() else math.nan,
            "acc_non_face": recall["non_face"]["recall"] if cm[0].sum() else math.nan,
            "box_error": float(np.abs(reg[box] - samples.offsets[box]).mean())
            if box.any() else math.nan,
            "landmark_error": float(normalised_point_error(pts[lm], samples.points[lm]).mean())
            if pts is not None and lm.any() else math.nan}


def fit(net: nn.Module, train: Samples, val: Optional[Samples], loss_cfg: LossConfig,
        cfg: TrainConfig, device: torch.device,
        on_epoch: Callable[[int, Dict[str, float]], None]) -> Dict[str, Tensor]:
    """Train for cfg.epochs; the state dict of the epoch with the lowest validation (else
    training) total loss, on the CPU."""
    net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    data, scored = _Tensors(train), val if val is not None and len(val) else train
    best, best_state = math.inf, None
    for epoch in range(1, cfg.epochs + 1):
        row = {"train_loss": train_epoch(net, data, opt, loss_cfg, cfg, g, device)}
        row.update(evaluate(net, scored, loss_cfg, device))
        on_epoch(epoch, row)
        if row["loss_total"] < best:
            best = row["loss_total"]
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return best_state
