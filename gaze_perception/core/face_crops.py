"""Square face crops, one geometry for training data and run time (gaze direction, gaze coding).

A crop is the square of side ``scale * max(width, height)`` centred on the box, resized to
``size x size``; parts outside the frame repeat the border pixels, so a face at the edge keeps
its position in the crop instead of being shifted or squeezed.
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

Box = Tuple[float, float, float, float]  # x, y, width, height in pixels


class CropError(ValueError):
    """The box has no area or lies entirely outside the frame."""


def square_around(box: Box, scale: float = 1.0) -> Tuple[int, int, int]:
    """(x0, y0, side) of the integer square of side scale * max(w, h) centred on `box`."""
    x, y, w, h = box
    if not (w > 0 and h > 0):
        raise CropError(f"box {tuple(round(v, 1) for v in box)} has no area")
    side = max(1, int(round(scale * max(w, h))))
    x0 = int(round(x + w / 2.0 - side / 2.0))
    y0 = int(round(y + h / 2.0 - side / 2.0))
    return x0, y0, side


def crop_square(image: np.ndarray, box: Box, size: int, scale: float = 1.0) -> np.ndarray:
    """(size, size, C) uint8 crop of `image` around `box` (see the module docstring)."""
    x0, y0, side = square_around(box, scale)
    h, w = image.shape[:2]
    if x0 >= w or y0 >= h or x0 + side <= 0 or y0 + side <= 0:
        raise CropError(f"box {tuple(round(v, 1) for v in box)} lies outside the {w}x{h} frame")
    inner = image[max(y0, 0):min(y0 + side, h), max(x0, 0):min(x0 + side, w)]
    pad = (max(-y0, 0), max(y0 + side - h, 0), max(-x0, 0), max(x0 + side - w, 0))
    if any(pad):
        inner = cv2.copyMakeBorder(inner, *pad, borderType=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(inner, (size, size), interpolation=interp)
