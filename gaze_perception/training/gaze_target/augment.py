"""The reference recipe's training augmentations and heatmap targets (numpy only).

Boxes and gaze points are normalised here, so an augmentation that changes the image size
(the crop) re-normalises them and the others need no image at all: the head-box jitter is
the one augmentation left when training on cached backbone features. Every random number
comes from the caller's generator, which the trainer seeds per epoch and sample so that a
resumed run sees the same augmentations as a straight one.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

Box = Tuple[float, float, float, float]
Points = Tuple[Tuple[float, float], ...]

P_AUGMENT = 0.5       # each augmentation fires with this probability
BOX_JITTER = 0.2      # each box side moves by up to this fraction of the box width / height
HEATMAP_SIZE = 64
HEATMAP_SIGMA = 3


def augment(image: np.ndarray, box: Box, gaze: Points, rng: np.random.Generator
            ) -> Tuple[np.ndarray, Box, Points]:
    """Random crop keeping head and gaze point, horizontal flip, head-box jitter (in that
    order, each with probability 0.5)."""
    if rng.random() < P_AUGMENT:
        image, box, gaze = random_crop(image, box, gaze, rng)
    if rng.random() < P_AUGMENT:
        image, box, gaze = image[:, ::-1], flip_box(box), tuple((1.0 - x, y) for x, y in gaze)
    return image, augment_box(box, rng), gaze


def augment_box(box: Box, rng: np.random.Generator) -> Box:
    """The head-box jitter alone (probability 0.5): what cached features allow."""
    return jitter_box(box, rng) if rng.random() < P_AUGMENT else box


def random_crop(image: np.ndarray, box: Box, gaze: Points, rng: np.random.Generator
                ) -> Tuple[np.ndarray, Box, Points]:
    """Crop with each edge drawn (whole pixels) between the image border and the region
    that holds the head box and the gaze points; coordinates re-normalised to the crop. The
    far edges round up, where the reference truncates and can cut the target pixel off."""
    h, w = image.shape[:2]
    xs = [box[0], box[2]] + [x for x, _ in gaze]
    ys = [box[1], box[3]] + [y for _, y in gaze]
    x0 = int(rng.integers(0, int(min(xs) * w) + 1))
    y0 = int(rng.integers(0, int(min(ys) * h) + 1))
    x1 = int(rng.integers(min(math.ceil(max(xs) * w), w), w + 1))
    y1 = int(rng.integers(min(math.ceil(max(ys) * h), h), h + 1))
    if x1 <= x0 or y1 <= y0:  # a zero-size region on a pixel edge: keep the image whole
        return image, box, gaze

    def fx(x: float) -> float:
        return (x * w - x0) / (x1 - x0)

    def fy(y: float) -> float:
        return (y * h - y0) / (y1 - y0)

    return (image[y0:y1, x0:x1], (fx(box[0]), fy(box[1]), fx(box[2]), fy(box[3])),
            tuple((fx(x), fy(y)) for x, y in gaze))


def flip_box(box: Box) -> Box:
    x0, y0, x1, y1 = box
    return 1.0 - x1, y0, 1.0 - x0, y1


def jitter_box(box: Box, rng: np.random.Generator, amount: float = BOX_JITTER) -> Box:
    """Each side moved by a uniform draw in +-amount of the box size, clipped to the image."""
    x0, y0, x1, y1 = box
    dx0, dx1 = (rng.uniform(-amount, amount, 2) * (x1 - x0)).tolist()
    dy0, dy1 = (rng.uniform(-amount, amount, 2) * (y1 - y0)).tolist()
    return max(0.0, x0 + dx0), max(0.0, y0 + dy0), min(1.0, x1 + dx1), min(1.0, y1 + dy1)


def gaussian_heatmap(gaze: Sequence[Tuple[float, float]], size: int = HEATMAP_SIZE,
                     sigma: int = HEATMAP_SIGMA) -> np.ndarray:
    """(size, size) float32 training target: a (6 sigma + 1)^2 Gaussian patch centred on the
    first gaze point's cell (coordinate x size, truncated), clipped at the border and scaled to
    a peak of 1; all zeros when the person looks out of frame."""
    target = np.zeros((size, size), dtype=np.float32)
    if not gaze or gaze[0][0] < 0 or gaze[0][1] < 0:
        return target
    cx, cy = int(gaze[0][0] * size), int(gaze[0][1] * size)
    r = 3 * sigma
    if cx - r >= size or cy - r >= size or cx + r + 1 < 0 or cy + r + 1 < 0:
        return target
    offsets = np.arange(-r, r + 1, dtype=np.float64)
    patch = np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma ** 2))
    x0, y0 = max(0, cx - r), max(0, cy - r)
    x1, y1 = min(size, cx + r + 1), min(size, cy + r + 1)
    target[y0:y1, x0:x1] = patch[y0 - (cy - r):y1 - (cy - r), x0 - (cx - r):x1 - (cx - r)]
    return target / target.max()
