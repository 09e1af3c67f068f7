"""One training epoch and batched prediction over in-memory uint8 tensors (N, C, H, W).

Augmentation runs on whole batches (one affine resampling, flips, brightness and contrast) and
draws every random number from the epoch's generator, so a resumed run repeats a straight one.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ...models.eye_state import EyeModelMeta, normalize
from ..crop_loop import jitter
from ...metrics.classification import confusion_matrix

MAX_ROTATION = math.radians(10)  # residual roll after landmark alignment
MAX_ZOOM = 0.1                   # crop-scale mismatch between landmark detectors
MAX_SHIFT = 0.1                  # fraction of the half side: landmark jitter


def _uniform(n: int, g: torch.Generator, amplitude: float, shape: Tuple[int, ...] = ()):
    return (torch.rand((n,) + shape, generator=g) * 2 - 1) * amplitude


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random flip, rotation, zoom, shift, contrast and brightness of a float batch in [0, 1]."""
    n = x.shape[0]
    angle, zoom = _uniform(n, g, MAX_ROTATION), 1 + _uniform(n, g, MAX_ZOOM)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    shift = _uniform(n, g, MAX_SHIFT, (2,))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return jitter(F.grid_sample(x, grid, padding_mode="border", align_corners=False), g)


def train_epoch(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                order: torch.Tensor, meta: EyeModelMeta, optimizer: torch.optim.Optimizer,
                lr_at: Callable[[int], float], first_step: int, loss_fn: nn.Module,
                scaler: torch.amp.GradScaler, batch_size: int, device: torch.device,
                g: Optional[torch.Generator], desc: str) -> Tuple[float, np.ndarray]:
    """Train over `images[order]` in batches; (mean loss, confusion matrix). `g` = augment."""
    model.train()
    total, preds = 0.0, []
    starts = range(0, len(order), batch_size)
    for i, start in enumerate(tqdm(starts, desc=desc, leave=False, unit="batch", disable=None)):
        idx = order[start:start + batch_size]
        x = images[idx].to(device, non_blocking=True).float() / 255.0
        y = labels[idx].to(device, non_blocking=True)
        x = normalize(augment(x, g) if g is not None else x, meta)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(first_step + i)
        with torch.autocast(device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
            logits = model(x)
            loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += loss.item() * len(idx)
        preds.append(logits.argmax(1).cpu())
    cm = confusion_matrix(labels[order].numpy(), torch.cat(preds).numpy(), len(meta.classes))
    return total / len(order), cm


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, meta: EyeModelMeta, device: torch.device,
            batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, K) of uint8 images (N, C, H, W)."""
    model.eval()
    out = [np.zeros((0, len(meta.classes)), np.float32)]
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(device).float() / 255.0, meta)
        out.append(torch.softmax(model(x).float(), dim=1).cpu().numpy())
    return np.concatenate(out)
