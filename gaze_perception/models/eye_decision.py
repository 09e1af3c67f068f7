"""How eye-state class probabilities become open / closed / unknown (numpy only, so the CLI can
share the defaults without importing torch). Class order: open, closed, optional third."""
from __future__ import annotations

from typing import Tuple

import numpy as np

#: closed when P(closed) >= this
DEFAULT_THRESHOLD = 0.5
#: unknown when the top class probability is under this
DEFAULT_UNKNOWN_BELOW = 0.6


def check_thresholds(threshold: float, unknown_below: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    if not 0.0 <= unknown_below <= 1.0:
        raise ValueError(f"unknown_below must lie in [0, 1], got {unknown_below}")


def decide(probs: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
           unknown_below: float = DEFAULT_UNKNOWN_BELOW) -> Tuple[np.ndarray, np.ndarray]:
    """(class index, unknown flag) per row of `probs` (N, K).

    The class is closed when P(closed) >= threshold, otherwise the likelier of the remaining
    classes; a row is unknown when its top probability is under `unknown_below` or its class is
    the explicit third one.
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, np.shape(probs)[-1])
    others = probs.copy()
    others[:, 1] = -1.0
    index = np.where(probs[:, 1] >= threshold, 1, others.argmax(axis=1))
    return index, (probs.max(axis=1) < unknown_below) | (index >= 2)
