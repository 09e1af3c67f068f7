"""Gaze-LLE decoder training on a frozen backbone: samples, loss, the `fit` hooks.

The loss is the reference's: BCE between the 64x64 heatmap and a Gaussian target; with an
in/out head (VideoAttentionTarget) the heatmap term counts in-frame people only and BCE on the
in/out probability over everyone is added. Every random draw of an epoch (order, augmentation,
drop path) derives from (seed, epoch), so a resumed run repeats the straight one.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...models.gazelle import GazeLLE, head_maps, preprocess
from ...models.state_dict import save_atomic
from ..fit import Task
from .augment import augment, augment_box, gaussian_heatmap
from .data import GazeSample, load_image
from .features import FeatureCache, FeatureSource

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
        return {"x": x, "box": torch.tensor(box, dtype=torch.float64),
                "target": torch.from_numpy(gaussian_heatmap(gaze)),
                "label": torch.tensor(float(s.inout))}


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
    groups = [{"params": [p for n, p in named if not n.startswith("inout_")], "lr": lr,
               "name": "decoder"}]
    inout = [p for n, p in named if n.startswith("inout_")]
    if inout:
        groups.append({"params": inout, "lr": inout_lr if inout_lr is not None else lr,
                       "name": "inout"})
    return groups


def schedule(kind: str, epochs: int, min_lr: float):
    """A `fit` schedule stepped per epoch: cosine annealing to `min_lr` (torch's
    CosineAnnealingLR with T_max = epochs), or None for constant rates."""
    if kind == "constant":
        return None

    def make(optimizer, steps_per_epoch: int):
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs,
                                                          eta_min=min_lr)
    return make


class GazeTask(Task):
    """The Gaze-LLE decoder on a frozen backbone: the reference's loss, its `TRAIN EPOCH` lines
    every LOG_EVERY iterations and `EVAL EPOCH` lines after each epoch's test pass, the best
    epoch by the dataset's metric."""

    def __init__(self, model: GazeLLE, train_set: TrainSet, features: FeatureSource,
                 inout_weight: float, evaluate: Callable[[], Dict], best_rule,
                 eval_line: Callable[[int, Dict], str]):
        self.model, self.module, self.data = model, model.decoder, train_set
        self.features, self.inout_weight = features, inout_weight
        self._evaluate, self.eval_line = evaluate, eval_line
        self.metric, _, self.higher = best_rule

    def train_set(self):
        return self.data

    def start_epoch(self, epoch: int) -> None:
        self.data.epoch = epoch  # the samples' augmentation draws

    def loss(self, decoder, batch, step):
        x = batch["x"]
        feats = x if self.data.cache is not None else self.features.encode(x)
        boxes = [tuple(b) for b in batch["box"].tolist()]
        maps = head_maps(boxes, self.module.grid).to(feats.device)
        with step.autocast():
            heatmaps, inout = decoder(feats, maps, [1] * len(boxes))
        return gaze_loss(heatmaps, inout, batch["target"], batch["label"], self.inout_weight)

    def end_iteration(self, step, loss) -> None:
        if step.index % LOG_EVERY == 0:
            print(f"TRAIN EPOCH {step.epoch}, iter {step.index}/{step.batches}, "
                  f"loss={loss.item():.4f}", flush=True)

    def evaluate(self, decoder):
        return self._evaluate()

    def score(self, row):
        value = row.get(self.metric)
        return None if value is None else (value if self.higher else -value)

    def save(self, path, info) -> None:
        save_atomic({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, path)

    def end_epoch(self, row) -> None:
        print(self.eval_line(row["epoch"], row), flush=True)
