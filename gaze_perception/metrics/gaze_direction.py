"""Gaze-direction figures: angular error of yaw / pitch predictions, distance of screen points
(numpy only; training validation and `eval gaze-direction` both use them)."""
from __future__ import annotations

from typing import Dict

import numpy as np

from ..core.gaze_direction import angles_to_vector, angular_error_deg


def angle_figures(pred_deg: np.ndarray, true_deg: np.ndarray) -> Dict[str, float]:
    """Mean and median angular error, mean absolute yaw and pitch error; degrees."""
    err = angular_error_deg(angles_to_vector(*np.radians(pred_deg).T),
                            angles_to_vector(*np.radians(true_deg).T))
    abs_err = np.abs(pred_deg - true_deg).mean(axis=0)
    return {"angular_error": float(err.mean()), "median_angular_error": float(np.median(err)),
            "yaw_error": float(abs_err[0]), "pitch_error": float(abs_err[1])}


def point_figures(pred_cm: np.ndarray, true_cm: np.ndarray) -> Dict[str, float]:
    """Mean and median Euclidean distance in cm."""
    dist = np.linalg.norm(pred_cm - true_cm, axis=1)
    return {"distance_cm": float(dist.mean()), "median_distance_cm": float(np.median(dist))}
