"""What training and evaluation do with a batch of each gaze-direction model: its loss (with
augmentation) and its outputs (L2CS: yaw, pitch in degrees; iTracker: x, y in cm)."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...models.face_crop import normalize
from ...models.gaze_direction import ITrackerMeta, L2CSMeta, l2cs_loss
from ..augment import Draws, jitter, random_flips
from ..fit import Step

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
