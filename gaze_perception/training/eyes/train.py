"""Eye-state training: the `fit` hooks over in-memory uint8 tensors (N, C, H, W), scored by
`evaluate` (batched prediction, confusion-matrix figures).

Augmentation runs on whole batches (one affine resampling, flips, brightness and contrast) and
draws every random number from the epoch's generator, so a resumed run repeats a straight one.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...metrics.classification import confusion_matrix
from ...models.eye_state import EyeModelMeta, normalize
from ...models.state_dict import save_checkpoint
from ..augment import Draws, jitter
from ..fit import Task, TensorDataset
from .evaluate import figures, predict

MAX_ROTATION = math.radians(10)  # residual roll after landmark alignment
MAX_ZOOM = 0.1                   # crop-scale mismatch between landmark detectors
MAX_SHIFT = 0.1                  # fraction of the half side: landmark jitter


def augment(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Random flip, rotation, zoom, shift, contrast and brightness of a float batch in [0, 1]."""
    n = x.shape[0]
    angle, zoom = d.uniform(n, MAX_ROTATION), 1 + d.uniform(n, MAX_ZOOM)
    flip = torch.where(d.rand(n) < 0.5, -1.0, 1.0)
    shift = d.uniform(n, MAX_SHIFT, 2)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return jitter(F.grid_sample(x, grid, padding_mode="border", align_corners=False), d)


class EyeTask(Task):
    """Eye-state classification on in-memory uint8 crops (N, C, H, W): cross-entropy (class
    weights or a balanced sampler against imbalance), figures of the training batches and of
    the validation crops, the best epoch by balanced accuracy."""

    def __init__(self, model: nn.Module, meta: EyeModelMeta, x_train: torch.Tensor,
                 y_train: torch.Tensor, x_val: torch.Tensor, y_val: np.ndarray,
                 device: torch.device, augmented: bool, class_weights: Optional[torch.Tensor],
                 sample_weights: Optional[torch.Tensor], info: Dict):
        self.module, self.meta, self.device = model, meta, device
        self.data = TensorDataset(image=x_train, label=y_train)
        self.x_val, self.y_val, self.augmented = x_val, y_val, augmented
        self.loss_fn = nn.CrossEntropyLoss(
            weight=class_weights.to(device) if class_weights is not None else None)
        self._weights, self.info = sample_weights, info
        self.labels: List[torch.Tensor] = []
        self.preds: List[torch.Tensor] = []

    def train_set(self):
        return self.data

    def sample_weights(self):
        return self._weights

    def start_epoch(self, epoch: int) -> None:
        self.labels, self.preds = [], []

    def loss(self, module, batch, step):
        x = batch["image"].float() / 255.0
        x = normalize(augment(x, step.draws) if self.augmented else x, self.meta)
        with step.autocast():
            logits = module(x)
        self.labels.append(batch["label"].cpu())
        self.preds.append(logits.detach().argmax(1).cpu())
        return self.loss_fn(logits.float(), batch["label"])

    def train_figures(self) -> Dict[str, float]:
        cm = confusion_matrix(torch.cat(self.labels).numpy(), torch.cat(self.preds).numpy(),
                              len(self.meta.classes))
        return figures("train", cm, self.meta.classes)

    def evaluate(self, module) -> Dict[str, float]:
        if not len(self.y_val):
            return {}
        probs = predict(module, self.x_val, self.meta, self.device)
        cm = confusion_matrix(self.y_val, probs.argmax(1), len(self.meta.classes))
        nll = -np.log(probs[np.arange(len(self.y_val)), self.y_val] + 1e-12).mean()
        return {"val_loss": round(float(nll), 5), **figures("val", cm, self.meta.classes)}

    def score(self, row) -> float:
        return row["val_balanced_acc" if len(self.y_val) else "train_balanced_acc"]

    def save(self, path, info) -> None:
        save_checkpoint(path, self.module, self.meta, info={**info, **self.info})
