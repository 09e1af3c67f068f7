"""Agreement between two gaze codings, as iCatcher+ reports it: percent agreement and Cohen's
kappa over the frames both code as away, left or right (mutually valid frames)."""
from __future__ import annotations

import math
from typing import Dict, Mapping

import numpy as np

from ..core.gaze_coding import GAZE_CLASSES, NO_FACE, is_gaze
from .classification import confusion_matrix


def percent_agreement(cm: np.ndarray) -> float:
    """Share of frames on the diagonal, in percent (NaN without frames)."""
    n = cm.sum()
    return float(100.0 * np.trace(cm) / n) if n else math.nan


def cohen_kappa(cm: np.ndarray) -> float:
    """(p_o - p_e) / (1 - p_e) of a confusion matrix; NaN when chance agreement is total
    (both codings use one and the same class) or there are no frames."""
    n = cm.sum()
    if not n:
        return math.nan
    p_o = np.trace(cm) / n
    p_e = float(cm.sum(axis=0) @ cm.sum(axis=1)) / n ** 2
    return float((p_o - p_e) / (1.0 - p_e)) if p_e < 1.0 else math.nan


def compare_codings(pred: Mapping[int, int], labels: Mapping[int, int]) -> Dict:
    """Figures of predicted codes against label codes (frame -> code)."""
    both = sorted(set(pred) & set(labels))
    valid = [f for f in both if is_gaze(pred[f]) and is_gaze(labels[f])]
    cm = confusion_matrix([labels[f] for f in valid], [pred[f] for f in valid],
                          len(GAZE_CLASSES))
    return {
        "label_frames": len(labels), "pred_frames": len(pred), "common_frames": len(both),
        "compared_frames": len(valid),
        "no_face_in_pred": sum(pred[f] == NO_FACE for f in both),
        "no_face_in_labels": sum(labels[f] == NO_FACE for f in both),
        "percent_agreement": percent_agreement(cm), "cohen_kappa": cohen_kappa(cm),
        "classes": list(GAZE_CLASSES), "confusion_matrix": cm.tolist(),
    }
