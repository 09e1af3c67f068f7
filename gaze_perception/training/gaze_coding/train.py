"""Gaze-coding training: the `fit` hooks of the away / left / right classifier on in-memory face
crops, uint8 (N, 3, S, S).

Augmentation mirrors half the crops (swapping left and right) and jitters brightness and
contrast, every random number drawn from the epoch's generator, so a resumed run repeats a
straight one.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...core.gaze_coding import GAZE_CLASSES, LEFT, RIGHT
from ...models.face_crop import normalize
from ...models.gaze_coding import CodingMeta
from ...models.state_dict import save_checkpoint
from ..augment import jitter, random_flips
from ..fit import Task, TensorDataset
from .evaluate import figures, probabilities

log = logging.getLogger(__name__)


class CodingTask(Task):
    """Away / left / right classification of face crops: cross-entropy (class weights against
    imbalance), the figures of the validation crops, the best epoch by Cohen's kappa (by
    percent agreement when validation holds one class; without validation by the training
    loss)."""

    def __init__(self, model: nn.Module, meta: CodingMeta, x_train: torch.Tensor,
                 y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                 class_weights: Optional[torch.Tensor], augmented: bool, device: torch.device,
                 batch_size: int, info: Dict):
        self.module, self.meta, self.device, self.batch_size = model, meta, device, batch_size
        self.data = TensorDataset(image=x_train, label=y_train)
        self.val = TensorDataset(image=x_val, label=y_val) if len(y_val) else None
        self.y_val = y_val.numpy()
        self.class_weights, self.augmented, self.info = class_weights, augmented, info
        self.swap = torch.arange(len(GAZE_CLASSES))
        self.swap[LEFT], self.swap[RIGHT] = RIGHT, LEFT
        # kappa says nothing when validation holds one class (it is 0 or undefined): agreement
        self.key = "val_kappa" if len(np.unique(self.y_val)) > 1 else "val_agreement"
        if self.val is not None and self.key == "val_agreement":
            log.warning("validation holds one class only: choosing the best epoch by agreement")

    def train_set(self):
        return self.data

    def loss(self, module, batch, step):
        x, y = batch["image"].float() / 255.0, batch["label"]
        if self.augmented:
            flip = random_flips(len(x), step.draws).to(x.device)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            y = torch.where(flip, self.swap.to(y.device)[y], y)
            x = jitter(x, step.draws)
        with step.autocast():
            logits = module(normalize(x, self.meta.mean, self.meta.std))
        return F.cross_entropy(logits.float(), y, weight=self.class_weights)

    def evaluate(self, module) -> Dict[str, float]:
        if self.val is None:
            return {}
        return figures(self.y_val, probabilities(module, self.val, self.meta, self.device,
                                                 self.batch_size))

    def score(self, row) -> float:
        return row[self.key] if self.val is not None else -row["train_loss"]

    def save(self, path, info) -> None:
        save_checkpoint(path, self.module, self.meta, info={**info, **self.info})
