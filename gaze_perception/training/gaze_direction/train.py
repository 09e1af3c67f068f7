"""Gaze-direction training: the `fit` hooks of either model, and what training and evaluation
do with a batch of each: its loss (with augmentation) and its outputs (L2CS: yaw, pitch in
degrees; iTracker: x, y in cm)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ...models.face_crop import normalize
from ...models.gaze_direction import ITrackerMeta, L2CSMeta, l2cs_loss
from ...models.state_dict import save_checkpoint
from ..augment import Draws, jitter, random_flips
from ..fit import Step, Task
from .evaluate import FIGURES, evaluate

Batch = Dict[str, torch.Tensor]


def _float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0


def l2cs_forward(meta: L2CSMeta) -> Callable[[nn.Module, Batch], torch.Tensor]:
    bins = meta.angle_bins

    def forward(model: nn.Module, batch: Batch) -> torch.Tensor:
        yaw, pitch = model(normalize(_float(batch["image"]), meta.mean, meta.std))
        return torch.stack([bins.decode(yaw), bins.decode(pitch)], 1)
    return forward


def l2cs_loss_of(meta: L2CSMeta, alpha: float, augment: bool):
    """Loss of a batch; augmentation mirrors half the crops (negating their yaw) and jitters
    brightness and contrast."""
    bins = meta.angle_bins

    def loss_of(model: nn.Module, batch: Batch, step: Step) -> torch.Tensor:
        x, target = _float(batch["image"]), batch["target"].clone()
        if augment:
            flip = random_flips(len(x), step.draws).to(x.device)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            target[:, 0] = torch.where(flip, -target[:, 0], target[:, 0])
            x = jitter(x, step.draws)
        with step.autocast():
            yaw, pitch = model(normalize(x, meta.mean, meta.std))
        return l2cs_loss(yaw.float(), pitch.float(), target, bins, alpha)
    return loss_of


def _itracker_inputs(meta: ITrackerMeta, batch: Batch, draws: Optional[Draws] = None):
    crops = []
    for key in ("face", "left", "right"):
        x = _float(batch[key])
        crops.append(normalize(jitter(x, draws) if draws is not None else x, meta.mean,
                               meta.std))
    return (*crops, batch["grid"])


def itracker_forward(meta: ITrackerMeta) -> Callable[[nn.Module, Batch], torch.Tensor]:
    def forward(model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(*_itracker_inputs(meta, batch))
    return forward


def itracker_loss_of(meta: ITrackerMeta, augment: bool):
    """MSE of the gaze point in cm; augmentation jitters brightness and contrast (mirroring
    would need the screen geometry, so there is none)."""
    def loss_of(model: nn.Module, batch: Batch, step: Step) -> torch.Tensor:
        inputs = _itracker_inputs(meta, batch, step.draws if augment else None)
        with step.autocast():
            out = model(*inputs)
        return F.mse_loss(out.float(), batch["target"])
    return loss_of


class DirectionTask(Task):
    """An L2CS (`kind` "l2cs") or iTracker ("itracker") model on its samples: the model's loss
    with augmentation, the figures of its outputs on the validation samples, the best epoch by
    the lowest validation error (angular error, distance in cm; without validation the lowest
    training loss)."""

    def __init__(self, kind: str, model: nn.Module, meta: Any, train: Dataset,
                 val: Optional[Dataset], device: torch.device, augmented: bool, alpha: float,
                 batch_size: int, workers: int, info: Dict):
        self.kind, self.module, self.meta, self.data, self.val = kind, model, meta, train, val
        self.device, self.batch_size, self.workers, self.info = device, batch_size, workers, info
        if kind == "l2cs":
            self._loss, self.forward = l2cs_loss_of(meta, alpha, augmented), l2cs_forward(meta)
        else:
            self._loss, self.forward = itracker_loss_of(meta, augmented), itracker_forward(meta)
        self.error_key = FIGURES[kind][1]  # the validation figure to minimise
        self.val_true = val.targets() if val is not None else None

    def train_set(self):
        return self.data

    def loss(self, module, batch, step):
        return self._loss(module, batch, step)

    def evaluate(self, module) -> Dict[str, float]:
        if self.val is None:
            return {}
        _, figures = evaluate(module, self.val, self.forward, self.kind, self.device,
                              self.batch_size, self.workers, self.val_true)
        return {f"val_{k}": v for k, v in figures.items()}

    def score(self, row) -> float:
        return -row[f"val_{self.error_key}"] if self.val is not None else -row["train_loss"]

    def save(self, path, info) -> None:
        save_checkpoint(path, self.module, self.meta, info={**info, **self.info})
