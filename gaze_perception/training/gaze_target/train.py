"""Gaze-LLE decoder training on a frozen backbone: samples, loss, one epoch.

The loss is the reference's: BCE between the 64x64 heatmap and a Gaussian target; with an
in/out head (VideoAttentionTarget) the heatmap term counts in-frame people only and BCE on the
in/out probability over everyone is added. Every random draw of an epoch (order, augmentation,
drop path) derives from (seed, epoch), so a resumed run repeats the straight one.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ...models.gazelle import GazeLLE, preprocess
from .augment import augment, augment_box, gaussian_heatmap
from .data import GazeSample, load_image
from .features import FeatureCache, FeatureSource, autocast

log = logging.getLogger(__name__)

LOG_EVERY = 10  # iterations between `TRAIN EPOCH` lines, as in the reference


class TrainSet(Dataset):
    """(image or cached features, normalised head box, heatmap target, in/out label)."""

    def __init__(self, samples: List[GazeSample], root: Path, seed: int, augmented: bool,
                 cache: Optional[FeatureCache] = None):
        self.samples, self.root, self.seed = samples, Path(root), seed
        self.augmented, self.cache, self.epoch = augmented, cache, 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        rng = np.random.default_rng((self.seed, self.epoch, i))  # same draw in any worker
        box, gaze = s.normalised_box, s.gaze
        if self.cache is not None:
            x = self.cache.load(s.image)
            if self.augmented:
                box = augment_box(box, rng)
        else:
            image = load_image(self.root, s)
            if self.augmented:
                image, box, gaze = augment(image, box, gaze, rng)
            x = preprocess([np.ascontiguousarray(image)])[0]
        # float64 boxes: the head map rounds box x 32, and float32 would move ties.
        return (x, torch.tensor(box, dtype=torch.float64),
                torch.from_numpy(gaussian_heatmap(gaze)), torch.tensor(float(s.inout)))


def loader(train_set: TrainSet, batch_size: int, workers: int, epoch: int) -> DataLoader:
    """This epoch's batches in a (seed, epoch)-determined order."""
    train_set.epoch = epoch
    order = torch.Generator().manual_seed(train_set.seed * 1_000_003 + epoch)
    return DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=order,
                      num_workers=workers, pin_memory=torch.cuda.is_available())


def gaze_loss(heatmaps: torch.Tensor, inout: Optional[torch.Tensor], targets: torch.Tensor,
              labels: torch.Tensor, inout_weight: float) -> torch.Tensor:
    """Heatmap BCE (in-frame people only when there is an in/out head) + weighted in/out BCE."""
    heatmaps = heatmaps.float()
    if inout is None:
        return F.binary_cross_entropy(heatmaps, targets)
    inside = labels > 0.5
    loss = inout_weight * F.binary_cross_entropy(inout.float(), labels)
    if inside.any():
        loss = loss + F.binary_cross_entropy(heatmaps[inside], targets[inside])
    return loss


def param_groups(model: GazeLLE, lr: float, inout_lr: Optional[float]) -> List[Dict]:
    """Decoder parameters; the in/out head and token get their own rate (the VAT recipe)."""
    named = list(model.decoder.named_parameters())
    groups = [{"params": [p for n, p in named if not n.startswith("inout_")], "base_lr": lr}]
    inout = [p for n, p in named if n.startswith("inout_")]
    if inout:
        groups.append({"params": inout, "base_lr": inout_lr if inout_lr is not None else lr})
    return groups


def set_epoch_lr(optimizer: torch.optim.Optimizer, epoch: int, epochs: int, schedule: str,
                 min_lr: float) -> None:
    """Cosine annealing stepped per epoch (torch's CosineAnnealingLR with T_max = epochs, in
    closed form so a resume with more epochs needs no scheduler state), or constant."""
    for group in optimizer.param_groups:
        base = group["base_lr"]
        group["lr"] = (base if schedule == "constant"
                       else min_lr + (base - min_lr) * (1 + math.cos(math.pi * epoch / epochs)) / 2)


def train_epoch(model: GazeLLE, batches: DataLoader, features: FeatureSource,
                optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, epoch: int,
                inout_weight: float, on_log: Callable[[int, float], None]) -> float:
    """One pass over `batches`; prints the reference's TRAIN lines; mean loss per sample."""
    model.decoder.train()
    cached = batches.dataset.cache is not None
    device, seen = features.device, 0
    total = torch.zeros((), device=device)  # summed on the device: no sync per iteration
    for i, (x, boxes, targets, labels) in enumerate(batches):
        feats = x.to(device) if cached else features.encode(x)
        with autocast(device, features.amp):
            out = model.decode(feats, [[tuple(b)] for b in boxes.tolist()])
        loss = gaze_loss(out.heatmaps, out.inout, targets.to(device), labels.to(device),
                         inout_weight)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += loss.detach() * len(x)
        seen += len(x)
        if i % LOG_EVERY == 0:
            value = loss.item()
            print(f"TRAIN EPOCH {epoch}, iter {i}/{len(batches)}, loss={value:.4f}", flush=True)
            on_log(epoch * len(batches) + i, value)
    model.decoder.eval()
    return total.item() / max(seen, 1)
