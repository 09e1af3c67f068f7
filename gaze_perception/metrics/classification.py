"""Classification figures from a confusion matrix (numpy only, shared by training and eval)."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def confusion_matrix(labels: Sequence[int], preds: Sequence[int], n_classes: int) -> np.ndarray:
    """cm[true, predicted] counts."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, int), np.asarray(preds, int)), 1)
    return cm


def per_class(cm: np.ndarray, classes: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Precision, recall, F1 and support per class (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {c: {"precision": float(precision[i]), "recall": float(recall[i]),
                "f1": float(f1[i]), "support": int(actual[i])} for i, c in enumerate(classes)}


def accuracy(cm: np.ndarray) -> float:
    return float(np.trace(cm) / cm.sum()) if cm.sum() else 0.0


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present: accuracy that a class imbalance cannot inflate."""
    actual = cm.sum(axis=1)
    present = actual > 0
    return float(np.mean(np.diag(cm)[present] / actual[present])) if present.any() else 0.0


def format_confusion(cm: np.ndarray, classes: Sequence[str]) -> str:
    """Text table, rows = true class, columns = predicted class."""
    width = max(8, *(len(c) + 1 for c in classes))
    lines = ["true \\ pred".ljust(width + 4) + "".join(c.rjust(width) for c in classes)]
    for c, row in zip(classes, cm):
        lines.append(c.ljust(width + 4) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)
