"""The training loop of the face-crop models (gaze direction, gaze coding).

Samples stream from a torch Dataset (files are read by `--workers` processes, so datasets
larger than memory work); AdamW with a cosine learning-rate decay; every epoch's order and
augmentation come from (seed, epoch) alone; after each epoch a validation callback scores
the model, `best.pt` keeps the best-scoring weights and `last.pt` the latest; figures go to
`metrics.csv` and, when tensorboard is installed, to `tensorboard/`.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .run_log import RunLog

log = logging.getLogger(__name__)

Batch = Dict[str, torch.Tensor]
MAX_CONTRAST, MAX_BRIGHTNESS = 0.3, 0.15


@dataclass
class FitSettings:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


class TensorDataset(Dataset):
    """In-memory samples: item i is {name: tensor[i]} for the given tensors."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        self.tensors = tensors
        self.size = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def jitter(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random contrast and brightness per image of a float batch in [0, 1] (N, C, H, W)."""
    n = x.shape[0]
    contrast = (1 + (torch.rand(n, generator=g) * 2 - 1) * MAX_CONTRAST).view(-1, 1, 1, 1)
    brightness = ((torch.rand(n, generator=g) * 2 - 1) * MAX_BRIGHTNESS).view(-1, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast.to(x.device) + mean + brightness.to(x.device)).clamp(0, 1)


def random_flips(n: int, g: torch.Generator) -> torch.Tensor:
    """Boolean mask: which of n images to mirror (each with probability 1/2)."""
    return torch.rand(n, generator=g) < 0.5


def _loader(dataset: Dataset, batch_size: int, workers: int, g=None) -> DataLoader:
    # a last batch of one sample would break batch norm in training: drop it
    drop = g is not None and len(dataset) % batch_size == 1 and len(dataset) > 1
    return DataLoader(dataset, batch_size=batch_size, shuffle=g is not None, generator=g,
                      num_workers=workers, drop_last=drop, persistent_workers=False)


def fit(model: nn.Module, dataset: Dataset,
        loss_of: Callable[[nn.Module, Batch, torch.Generator], torch.Tensor],
        validate: Callable[[nn.Module], Dict[str, float]],
        score_of: Callable[[Dict[str, float]], float], save: Callable[[Path, Dict], None],
        out: Path, settings: FitSettings, device: torch.device,
        workers: int = 0) -> Dict[str, float]:
    """Train `model` on `dataset` (items: dicts of tensors).

    `loss_of(model, batch, g)` augments (drawing from `g`) and returns the batch loss;
    `validate(model)` returns validation figures, or {} without validation data;
    `score_of(figures)` ranks epochs (higher is better; minus the training loss when there
    are no figures).
    `save(path, info)` writes a checkpoint. Returns the best epoch and score.
    """
    steps = math.ceil(len(dataset) / settings.batch_size)
    total = settings.epochs * steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    out.mkdir(parents=True, exist_ok=True)
    epoch_log = RunLog(out, append=False)  # a fresh metrics.csv every run
    best = {"epoch": 0, "score": -math.inf}
    try:
        for epoch in range(settings.epochs):
            t0 = time.monotonic()
            seed = settings.seed * 1_000_003 + epoch
            g = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)  # dropout
            model.train()
            loss_sum, seen = 0.0, 0
            batches = _loader(dataset, settings.batch_size, workers, g)
            for i, batch in enumerate(tqdm(batches, desc=f"epoch {epoch + 1}/{settings.epochs}",
                                           leave=False, unit="batch", disable=None)):
                lr = settings.lr * 0.5 * (1 + math.cos(math.pi * (epoch * steps + i) / total))
                for group in optimizer.param_groups:
                    group["lr"] = lr
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                loss = loss_of(model, batch, g)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                n = len(next(iter(batch.values())))
                loss_sum, seen = loss_sum + loss.item() * n, seen + n
            model.eval()
            with torch.inference_mode():
                figures = validate(model)
            row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                   "train_loss": round(loss_sum / seen, 6),
                   **{k: round(float(v), 6) for k, v in figures.items()},
                   "seconds": round(time.monotonic() - t0, 2)}
            epoch_log.epoch(row)
            log.info("epoch %d/%d  %s", epoch + 1, settings.epochs,
                     "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
            score = score_of(figures) if figures else -row["train_loss"]
            info = {"epoch": epoch + 1, "score": score, **figures}
            if score > best["score"]:
                best = {"epoch": epoch + 1, "score": score}
                save(out / "best.pt", info)
            save(out / "last.pt", info)
    finally:
        epoch_log.close()
    return best


def predict(model: nn.Module, dataset: Dataset,
            forward: Callable[[nn.Module, Batch], torch.Tensor], device: torch.device,
            batch_size: int = 64, workers: int = 0) -> torch.Tensor:
    """Concatenated `forward(model, batch)` over `dataset`, in order (model in eval mode)."""
    model.eval()
    outs = []
    with torch.inference_mode():
        for batch in _loader(dataset, batch_size, workers):
            batch = {k: v.to(device) for k, v in batch.items()}
            outs.append(forward(model, batch).float().cpu())
    return torch.cat(outs)
