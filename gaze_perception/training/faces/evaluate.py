"""`eval face-detector`: a face-detector backend over the images of a box file, scored by
`metrics.face_detection` (VOC / COCO average precision, normalised landmark error)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from tqdm import tqdm

from ...metrics.face_detection import (IOU_THRESHOLDS, Detections, average_precision,
                                       landmark_errors)
from .data import ImageFaces, read_rgb


def detect_all(detector, dataset: Sequence[ImageFaces], root: Path) -> List[Detections]:
    """Run a FaceDetector over every image of `dataset`, one image per call."""
    return [Detections.from_faces(detector.detect([read_rgb(root, faces.file)])[0])
            for faces in tqdm(dataset, desc="detecting", unit="img", leave=False, disable=None)]


def report(dets: Sequence[Detections], truth: Sequence[ImageFaces]) -> Dict[str, object]:
    """AP at every IoU threshold (over the images of the box file) and the landmark error."""
    scored = [(d, t) for d, t in zip(dets, truth) if not t.landmark_only]
    ap = {f"{t:.2f}": average_precision([d for d, _ in scored], [t_ for _, t_ in scored], t)
          for t in IOU_THRESHOLDS}
    errors = landmark_errors(dets, truth)
    return {"images": len(scored),
            "faces": int(sum((~t.ignore).sum() for _, t in scored)),
            "ignored_faces": int(sum(t.ignore.sum() for _, t in scored)),
            "detections": int(sum(len(d.scores) for d, _ in scored)),
            "ap50": ap["0.50"], "ap50_95": float(np.mean(list(ap.values()))),
            "ap_by_iou": ap,
            "landmark_faces": int(sum(len(t.points) for t in truth)),
            "landmark_matched": int(len(errors)),
            "landmark_error": float(errors.mean()) if len(errors) else None}


def format_report(r: Dict) -> str:
    """What `eval face-detector` prints of a report (`report` and the detector's name)."""
    lines = [f"{r['detector']} on {r['images']} images: {r['faces']} faces "
             f"({r['ignored_faces']} ignored), {r['detections']} detections",
             f"AP@0.5 {r['ap50']:.4f}  AP@[0.5:0.95] {r['ap50_95']:.4f}"]
    if r["landmark_faces"]:
        error = "-" if r["landmark_error"] is None else f"{r['landmark_error']:.4f}"
        lines.append(f"landmark error {error} (mean point distance / inter-ocular distance) "
                     f"over {r['landmark_matched']} of {r['landmark_faces']} faces")
    return "\n".join(lines)
