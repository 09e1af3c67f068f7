"""Scoring an eye-state model: class probabilities of uint8 crops (N, C, H, W) and the figures
of a confusion matrix (`metrics.classification`), for training's validation and `eval
eye-state`, which also scores the run-time decision (threshold, unknown) and writes the
per-image predictions.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from torch import nn

from ...metrics import classification as metrics
from ...models.eye_state import EyeModelMeta, normalize


def figures(prefix: str, cm: np.ndarray, classes: List[str]) -> Dict[str, float]:
    """Accuracy, balanced accuracy and per-class recall of a confusion matrix."""
    recalls = {f"{prefix}_recall_{c}": round(v["recall"], 5)
               for c, v in metrics.per_class(cm, classes).items()}
    return {f"{prefix}_acc": round(metrics.accuracy(cm), 5),
            f"{prefix}_balanced_acc": round(metrics.balanced_accuracy(cm), 5), **recalls}


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, meta: EyeModelMeta, device: torch.device,
            batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, K) of uint8 images (N, C, H, W)."""
    model.eval()
    out = [np.zeros((0, len(meta.classes)), np.float32)]
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(device).float() / 255.0, meta)
        out.append(torch.softmax(model(x).float(), dim=1).cpu().numpy())
    return np.concatenate(out)


def decision_figures(labels: np.ndarray, preds: np.ndarray, unknown: np.ndarray,
                     classes: List[str]) -> Dict:
    """The figures of `eval eye-state`: of the decided classes `preds` (`unknown`: no
    decision) against `labels`."""
    cm = metrics.confusion_matrix(labels, preds, len(classes))
    confident = ~unknown
    return {
        "accuracy": metrics.accuracy(cm), "balanced_accuracy": metrics.balanced_accuracy(cm),
        "per_class": metrics.per_class(cm, classes), "confusion_matrix": cm.tolist(),
        "unknown_rate": float(unknown.mean()),
        "confident_accuracy": float((preds == labels)[confident].mean()) if confident.any()
        else None,
    }


def format_report(r: Dict) -> str:
    """What `eval eye-state` prints."""
    cm = np.array(r["confusion_matrix"])
    lines = [f"{r['images']} images, weights {r['weights']}, threshold {r['threshold']}, "
             f"unknown below {r['unknown_below']}",
             f"accuracy {r['accuracy']:.4f}  balanced accuracy {r['balanced_accuracy']:.4f}",
             f"{'class':12s}{'precision':>10s}{'recall':>10s}{'f1':>10s}{'support':>10s}"]
    for c, v in r["per_class"].items():
        lines.append(f"{c:12s}{v['precision']:10.4f}{v['recall']:10.4f}{v['f1']:10.4f}"
                     f"{v['support']:10d}")
    lines += ["confusion matrix (rows: true, columns: predicted):",
              metrics.format_confusion(cm, r["classes"]),
              f"unknown rate {r['unknown_rate']:.4f}; accuracy of the others "
              + ("-" if r["confident_accuracy"] is None else f"{r['confident_accuracy']:.4f}")]
    return "\n".join(lines)


def write_predictions(path: Path, samples, classes, preds, unknown, probs) -> None:
    """One CSV row per image: file, label, prediction, unknown, the class probabilities."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "prediction", "unknown"] + [f"p_{c}" for c in classes])
        for s, pred, unk, p in zip(samples, preds, unknown, probs):
            writer.writerow([s.name, classes[s.label], classes[pred], int(unk)]
                            + [f"{v:.6f}" for v in p])
