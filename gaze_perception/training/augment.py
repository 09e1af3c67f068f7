"""Batch augmentation shared by the trainers: random numbers per (global) batch, colour
jitter and flips. Every draw comes from the epoch's generator, so a resumed run repeats a
straight one."""
from __future__ import annotations

from typing import Optional

import torch

#: colour jitter of every trainer: contrast 1 +- 0.3, brightness +- 0.15 (images in [0, 1])
MAX_CONTRAST, MAX_BRIGHTNESS = 0.3, 0.15


class Draws:
    """The random numbers of one batch.

    Under torchrun each process trains on a slice (`start`, length n) of the global batch of
    `total` samples; it draws the numbers of the whole global batch, with the generator in the
    same state on every process, and keeps its slice, so the augmentation is the one of a
    single process training on the global batch.
    """

    def __init__(self, g: torch.Generator, total: Optional[int] = None, start: int = 0):
        self.g, self.total, self.start = g, total, start

    def rand(self, n: int, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) numbers (n, *shape) for the n samples of this process."""
        total = n if self.total is None else self.total
        return torch.rand((total,) + shape, generator=self.g)[self.start:self.start + n]

    def uniform(self, n: int, amplitude: float, *shape: int) -> torch.Tensor:
        """Uniform in [-amplitude, amplitude)."""
        return (self.rand(n, *shape) * 2 - 1) * amplitude


def jitter(x: torch.Tensor, d: Draws) -> torch.Tensor:
    """Random contrast and brightness per image of a float batch in [0, 1] (N, C, H, W)."""
    n = x.shape[0]
    contrast = (1 + d.uniform(n, MAX_CONTRAST)).view(-1, 1, 1, 1)
    brightness = d.uniform(n, MAX_BRIGHTNESS).view(-1, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast.to(x.device) + mean + brightness.to(x.device)).clamp(0, 1)


def random_flips(n: int, d: Draws) -> torch.Tensor:
    """Boolean mask: which of n images to mirror (each with probability 1/2)."""
    return d.rand(n) < 0.5
