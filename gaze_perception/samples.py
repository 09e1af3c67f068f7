"""The bundled sample input of the demo: frames built from scikit-image's astronaut photo
(a public-domain NASA image that ships with scikit-image, so nothing is downloaded)."""
from __future__ import annotations

from typing import List, Tuple

import cv2
import numpy as np


def astronaut() -> np.ndarray:
    from skimage import data
    return np.ascontiguousarray(data.astronaut())


def demo_sequence(n: int) -> List[Tuple[str, np.ndarray]]:
    """`n` frames of a short clip: the single face, then the grid of four drifting right by
    two pixels a frame (so tracking has something to follow), then the mirrored face."""
    single, mirrored, grid = (f for _, f in demo_frames())
    frames = [("astronaut", single)]
    for i in range(max(0, n - 2)):
        frames.append((f"grid_{i:03d}", np.ascontiguousarray(np.roll(grid, 2 * i, axis=1))))
    frames.append(("astronaut_mirrored", mirrored))
    return frames[:n]


def demo_frames() -> List[Tuple[str, np.ndarray]]:
    """Three 640x480 frames: one face, the mirrored face, and a 2x2 grid of four faces."""
    a = astronaut()
    single = np.full((480, 640, 3), 40, np.uint8)
    single[:, 64:576] = a[16:496]
    grid = np.full((480, 640, 3), 40, np.uint8)
    small = cv2.resize(a, (240, 240), interpolation=cv2.INTER_AREA)
    for r in range(2):
        for c in range(2):
            y, x = r * 240, 80 + c * 240
            grid[y:y + 240, x:x + 240] = small
    return [("astronaut", single), ("astronaut_mirrored", np.ascontiguousarray(single[:, ::-1])),
            ("astronaut_grid", grid)]
