"""The bundled sample input of the demo: frames built from scikit-image's astronaut photo
(a public-domain NASA image that ships with scikit-image, so nothing is downloaded)."""
from __future__ import annotations

from typing import List, Tuple

import cv2
import numpy as np


def astronaut() -> np.ndarray:
    from skimage import data
    return np.ascontiguousarray(data.astronaut())


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
