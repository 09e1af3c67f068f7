"""Training one MTCNN stage on generated samples: multi-source loss, OHEM, figures, mining,
and the weights folder a trained stage is installed in.

Each sample type trains the heads it has labels for (Zhang et al., 2016): negatives and
positives the face/non-face cross-entropy, positives and part faces the box offsets, landmark
faces the five points. Online hard example mining keeps the largest `ohem` share of the
classification losses in each batch.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from ...core import weights
from ...core.safe_yaml import load_yaml_file
from ...models.mtcnn import ONet, PNet, RNet
from ...metrics import classification as metrics
from ...models.state_dict import save_atomic
from ..fit import Task, TensorDataset
from ...metrics.face_detection import normalised_point_error
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


class FaceTask(Task):
    """One MTCNN stage on generated samples: the multi-source loss with OHEM, random flips,
    the best epoch by the lowest validation (else training) total loss."""

    def __init__(self, net: nn.Module, train: Samples, val: Optional[Samples],
                 loss_cfg: LossConfig, flips: bool, device: torch.device):
        self.module, self.loss_cfg, self.flips, self.device = net, loss_cfg, flips, device
        self.data = TensorDataset(images=torch.from_numpy(train.images),
                                  kind=torch.from_numpy(train.kind.astype(np.int64)),
                                  offsets=torch.from_numpy(train.offsets),
                                  points=torch.from_numpy(train.points))
        self.scored = val if val is not None and len(val) else train

    def train_set(self):
        return self.data

    def loss(self, module, batch, step):
        images, offsets, points = batch["images"], batch["offsets"], batch["points"]
        if self.flips:
            mask = (step.draws.rand(len(images)) < 0.5).to(images.device)
            images, offsets, points = flip(images, offsets, points, mask)
        with step.autocast():
            reg, pts, logits = run_net(module, normalise(images))
        return losses(reg.float(), None if pts is None else pts.float(), logits.float(),
                      batch["kind"], offsets, points, self.loss_cfg)["total"]

    def evaluate(self, module):
        return evaluate(module, self.scored, self.loss_cfg, self.device)

    def score(self, row):
        return -row["loss_total"]

    def save(self, path, info):
        save_atomic({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, path)


@torch.inference_mode()
def evaluate(net: nn.Module, samples: Samples, loss_cfg: LossConfig, device: torch.device,
             batch_size: int = 1024) -> Dict[str, float]:
    """Losses (without OHEM), per-class accuracy, box and normalised landmark errors."""
    net.eval()
    images = torch.from_numpy(samples.images)
    outs = [run_net(net, normalise(images[i:i + batch_size].to(device)))
            for i in range(0, len(images), batch_size)]
    reg = torch.cat([o[0] for o in outs]).cpu()
    pts = torch.cat([o[1] for o in outs]).cpu() if outs and outs[0][1] is not None else None
    logits = torch.cat([o[2] for o in outs]).cpu()
    plain = LossConfig(loss_cfg.weights, loss_cfg.box_loss, loss_cfg.cls_weights, ohem=1.0)
    out = {f"loss_{k}": float(v) for k, v in
           losses(reg, pts, logits, torch.from_numpy(samples.kind.astype(np.int64)),
                  torch.from_numpy(samples.offsets), torch.from_numpy(samples.points),
                  plain).items()}
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


def format_sample_figures(f: Dict[str, float]) -> str:
    """The figures of `evaluate` as the line `train face-detector` prints."""
    def num(key: str) -> str:
        return "-" if math.isnan(f[key]) else f"{f[key]:.4f}"

    return (f"face accuracy {num('acc_face')}  non-face accuracy {num('acc_non_face')}  "
            f"box offset error {num('box_error')} (crop sides)  landmark error "
            f"{num('landmark_error')} (inter-ocular distances)  loss {f['loss_total']:.4f}")


def install(out: Path, stage: str, state, source: str) -> Path:
    """Save `state` as out/mtcnn/<stage>.pt and pin all three stages in out/manifest.yaml;
    a stage the folder lacks is copied from the package weights (sha256-checked)."""
    manifest = out / "manifest.yaml"
    entries = (load_yaml_file(manifest, "weights manifest") or {}).get("weights", {}) \
        if manifest.is_file() else {}
    path = out / "mtcnn" / f"{stage}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    entries[f"mtcnn_{stage}"] = {"file": f"mtcnn/{stage}.pt", "sha256": weights.sha256_of(path),
                                 "source": source,
                                 "licence": "trained in this project: the training data's "
                                            "terms apply"}
    published = weights.load_manifest()
    for other in STAGES:
        name = f"mtcnn_{other}"
        if name not in entries:
            shutil.copyfile(weights.resolve(name), out / "mtcnn" / f"{other}.pt")
            entry = published[name]
            entries[name] = {"file": f"mtcnn/{other}.pt", "sha256": entry.sha256,
                             "url": entry.url, "source": entry.source,
                             "licence": entry.licence}
    manifest.write_text(yaml.safe_dump({"weights": entries}, sort_keys=False))
    return path
