"""Scoring gaze codes by percent agreement and Cohen's kappa over the frames coded away, left
or right (`metrics.agreement`): training's validation (the classifier's most probable class on
the held-out crops) and `eval gaze-coding` (two code files frame by frame, e.g. `code-video`
output against human labels). Torch is imported only where a model runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

from ...core.gaze_coding import GAZE_CLASSES
from ...metrics.agreement import cohen_kappa, compare_codings, percent_agreement
from ...metrics.classification import confusion_matrix, format_confusion
from .data import DataError, read_codes


def figures(labels: np.ndarray, probs: np.ndarray) -> Dict[str, float]:
    """Validation agreement and kappa of class probabilities (N, 3) against labels (N,)."""
    cm = confusion_matrix(labels, probs.argmax(1), len(GAZE_CLASSES))
    return {"val_agreement": percent_agreement(cm), "val_kappa": cohen_kappa(cm)}


def probabilities(model, dataset, meta, device, batch_size: int) -> np.ndarray:
    """Class probabilities (N, 3) of the uint8 crops of `dataset` (items: image, label)."""
    import torch

    from ...models.face_crop import normalize
    from ..fit import predict

    def forward(m, batch):
        return torch.softmax(m(normalize(batch["image"].float() / 255.0, meta.mean, meta.std))
                             .float(), dim=1)
    return predict(model, dataset, forward, device, batch_size).numpy()


def compare(pred: Path, labels: Path) -> Dict:
    """`metrics.agreement.compare_codings` of two code files; a DataError when they share no
    frame that both code as away, left or right."""
    report = compare_codings(read_codes(pred), read_codes(labels))
    if not report["compared_frames"]:
        raise DataError(f"'{pred}' and '{labels}' share no frame that both code "
                        "as away, left or right")
    return report


def format_report(report: Dict) -> str:
    """What `eval gaze-coding` prints."""
    return "\n".join([
        f"{report['compared_frames']} frames compared (of {report['label_frames']} labelled, "
        f"{report['pred_frames']} predicted; no_face: {report['no_face_in_pred']} predicted, "
        f"{report['no_face_in_labels']} labelled)",
        f"percent agreement {report['percent_agreement']:.2f}  "
        f"Cohen's kappa {report['cohen_kappa']:.4f}",
        "confusion matrix (rows: labels, columns: predictions):",
        format_confusion(np.array(report["confusion_matrix"]), report["classes"])])
