"""GazeFollow and VideoAttentionTarget scores by the official Gaze-LLE protocol.

GazeFollow: mean over people of AUC (heatmap upsampled to the image against every annotator's
point), Avg L2 (argmax to the annotators' mean) and Min L2 (to the nearest annotator); all
test people count as in frame. VideoAttentionTarget: AUC and L2 over in-frame people, in/out
AP over everyone. Ground-truth head boxes are the prompts. Predictions come from a callable,
so the `eval` command scores the deployed `gazelle` backend while training scores its model
in memory, both through the same code.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from ...core.types import Face
from ...metrics import gaze_following as gm
from .data import GazeSample, group_frames, load_image
from .features import FeatureSource, autocast

#: frames -> (heatmaps (people, 64, 64), in/out (people,) or None without an in/out head)
Predictor = Callable[[List[List[GazeSample]]], Tuple[np.ndarray, Optional[np.ndarray]]]

#: dataset -> (metric that picks the best epoch, its name in the log lines, higher is better)
BEST = {"gazefollow": ("min_l2", "Min L2", False), "vat": ("auc", "AUC", True)}


class Scores:
    """Per-person metrics of one dataset's protocol, averaged by `result`."""

    METRICS = {"gazefollow": ("auc", "avg_l2", "min_l2"), "vat": ("auc", "l2")}

    def __init__(self, dataset: str):
        self.dataset, self.people = dataset, 0
        self.values: Dict[str, List[float]] = defaultdict(list)
        self.labels: List[int] = []       # VAT: gaze inside the frame
        self.inout: List[float] = []      # VAT: predicted probability of that

    def add(self, sample: GazeSample, heatmap: np.ndarray, inout: Optional[float]) -> None:
        self.people += 1
        xs, ys = [p[0] for p in sample.gaze], [p[1] for p in sample.gaze]
        if self.dataset == "gazefollow":
            self.values["auc"].append(
                gm.gazefollow_auc(heatmap, xs, ys, sample.width, sample.height))
            avg, nearest = gm.gazefollow_l2(heatmap, xs, ys)
            self.values["avg_l2"].append(avg)
            self.values["min_l2"].append(nearest)
            return
        if sample.inout:
            self.values["auc"].append(gm.vat_auc(heatmap, xs[0], ys[0]))
            self.values["l2"].append(gm.vat_l2(heatmap, xs[0], ys[0]))
        self.labels.append(sample.inout)
        if inout is not None:
            self.inout.append(inout)

    def result(self) -> Dict[str, Optional[float]]:
        """Means (None where nothing counted; in/out AP None without an in/out head) and the
        number of people scored."""
        out: Dict[str, Optional[float]] = {
            k: float(np.mean(self.values[k])) if self.values[k] else None
            for k in self.METRICS[self.dataset]}
        out["people"] = self.people
        if self.dataset == "vat":
            out["inout_ap"] = (gm.inout_ap(self.labels, self.inout)
                               if self.inout and any(self.labels) else None)
            out["in_frame"] = sum(self.labels)
        return out


def evaluate(samples: Sequence[GazeSample], dataset: str, predict: Predictor,
             batch_frames: int = 8, desc: str = "evaluating") -> Dict[str, Optional[float]]:
    """Score `samples` frame by frame, `batch_frames` images per prediction call."""
    scores = Scores(dataset)
    frames = group_frames(samples)
    with tqdm(total=len(samples), desc=desc, unit="person", leave=False, disable=None) as bar:
        for start in range(0, len(frames), batch_frames):
            chunk = frames[start:start + batch_frames]
            heat, inout = predict(chunk)
            people = [s for frame in chunk for s in frame]
            for i, sample in enumerate(people):
                scores.add(sample, heat[i], None if inout is None else float(inout[i]))
            bar.update(len(people))
    return scores.result()


def backend_predictor(backend, root) -> Predictor:
    """Predictions of a `gazelle` backend (built with heatmaps=True) from the images on disk."""
    has_inout = backend.model.decoder.inout

    def predict(frames: List[List[GazeSample]]):
        images = [load_image(root, frame[0]) for frame in frames]
        faces = [[Face.from_xyxy(*s.box) for s in frame] for frame in frames]
        targets = [t for per_image in backend.estimate(images, faces) for t in per_image]
        heat = np.stack([t.heatmap for t in targets])
        return heat, np.array([t.inout for t in targets]) if has_inout else None
    return predict


def model_predictor(model, features: FeatureSource) -> Predictor:
    """Predictions of a Gaze-LLE model in memory, on (possibly cached) backbone features."""

    @torch.no_grad()
    def predict(frames: List[List[GazeSample]]):
        feats = features.images([frame[0] for frame in frames])
        with autocast(features.device, features.amp):
            out = model.decode(feats, [[s.normalised_box for s in frame] for frame in frames])
        inout = out.inout.float().cpu().numpy() if out.inout is not None else None
        return out.heatmaps.float().cpu().numpy(), inout
    return predict


def _r(value: Optional[float]):
    return None if value is None else round(value, 4)


def eval_line(dataset: str, epoch: int, r: Dict[str, Optional[float]]) -> str:
    """The reference's per-epoch line, word for word."""
    if dataset == "gazefollow":
        return (f"EVAL EPOCH {epoch}: AUC={_r(r['auc'])}, Min L2={_r(r['min_l2'])}, "
                f"Avg L2={_r(r['avg_l2'])}")
    return f"EVAL EPOCH {epoch}: AUC={_r(r['auc'])}, L2={_r(r['l2'])}, Inout AP={_r(r['inout_ap'])}"


def format_report(dataset: str, r: Dict[str, Optional[float]]) -> str:
    """Human-readable result of `gaze-perception eval gaze-target`."""
    def fmt(v: Optional[float]) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    if dataset == "gazefollow":
        head = f"GazeFollow test: {r['people']} people"
        rows = [("AUC", r["auc"]), ("Avg L2", r["avg_l2"]), ("Min L2", r["min_l2"])]
    else:
        head = (f"VideoAttentionTarget test: {r['people']} people, {r['in_frame']} looking "
                "inside the frame")
        rows = [("AUC", r["auc"]), ("L2", r["l2"]), ("in/out AP", r["inout_ap"])]
    return "\n".join([head] + [f"  {name:<10}{fmt(v)}" for name, v in rows])
