"""Scoring a gaze-direction model: its outputs over a dataset against the targets, L2CS by the
angular error of yaw and pitch in degrees, iTracker by the distance of the gaze point in cm
(`metrics.gaze_direction`); training's validation and `eval gaze-direction` both run it.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ...metrics.gaze_direction import angle_figures, point_figures
from ..fit import predict

#: model -> (figures of its outputs against the targets, the figure to minimise, the columns
#: of an output)
FIGURES = {"l2cs": (angle_figures, "angular_error", ("yaw", "pitch")),
           "itracker": (point_figures, "distance_cm", ("x_cm", "y_cm"))}


def evaluate(model, dataset, forward: Callable, kind: str, device, batch_size: int = 32,
             workers: int = 0, true: Optional[np.ndarray] = None
             ) -> Tuple[np.ndarray, Dict[str, float]]:
    """(outputs (N, 2), figures) of `model` over `dataset` (`forward`: the outputs of a batch);
    `true`: the dataset's targets when known already."""
    pred = predict(model, dataset, forward, device, batch_size, workers).numpy()
    return pred, FIGURES[kind][0](pred, dataset.targets() if true is None else true)


def format_report(report: Dict) -> str:
    """What `eval gaze-direction` prints: one line of its figures."""
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in report.items())


def write_predictions(path: Path, names: Sequence[str], columns: Sequence[str], true, pred
                      ) -> None:
    """Per-sample targets and outputs as CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", *columns, *(f"pred_{c}" for c in columns)])
        for name, t, p in zip(names, true, pred):
            writer.writerow([name, *(f"{v:.4f}" for v in (*t, *p))])
