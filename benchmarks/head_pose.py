#!/usr/bin/env python3
"""Head-pose accuracy on AFLW2000-3D-style data (mean absolute error in degrees, protocol: all
labelled angles within 99 degrees), per axis and per yaw band, for the dense (mesh) head pose
and the five-point PnP, plus the landmark stage's time per face.

    .venv/bin/python benchmarks/head_pose.py                       # the development set's test half
    .venv/bin/python benchmarks/head_pose.py --data DIR --split all  # any folder with labels_project.csv

The shipped face reference was fitted on the development set's `fit` half (even image
numbers): only `--split test` (or other data) gives a result there.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=REPO.parent / "shared" / "data" / "headpose_aflw2000_dev")
    ap.add_argument("--split", default="test", choices=["fit", "test", "all"])
    ap.add_argument("--limit", type=int, default=0, help="first N images only")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    import cv2
    cv2.setNumThreads(args.threads)
    from gaze_perception.core.head_pose import estimate_head_pose
    from gaze_perception.core.pipeline import Pipeline, PipelineConfig
    from gaze_perception.core.types import CameraIntrinsics
    from gaze_perception.metrics import head_pose as hp

    labels = hp.read_labels(args.data)
    files = hp.split(labels, args.split)
    files = files[:args.limit] if args.limit else files
    dense = Pipeline(PipelineConfig.from_dict({"faces": "mtcnn", "landmarks": "mediapipe"}),
                     device="cpu")
    timing = []

    def run(rgb):
        h, w = rgb.shape[:2]
        faces = dense.face_detector.detect([rgb])
        t = time.perf_counter()
        result = dense([rgb], faces=faces)[0]
        timing.append((time.perf_counter() - t) / max(1, len(result.faces)))
        face = hp.central_face(result.faces, w, h)
        if face is None:
            return None, None
        five = estimate_head_pose(face.landmarks, CameraIntrinsics.guess(w, h))
        deg = lambda p: None if not p else tuple(math.degrees(v) for v in p)  # noqa: E731
        return deg(face.head_pose), deg(five)

    both = hp.estimate_folder(args.data, files, run, progress=True)
    for name, k in (("dense (mesh, five-point fallback)", 0), ("five-point PnP", 1)):
        est = {f: (v[k] if v is not None else None) for f, v in both.items()}
        print(f"\n{name}, {args.split} split of {args.data.name}:")
        print(hp.score(est, labels).table())
    ms = sorted(timing)[len(timing) // 2] * 1000 if timing else math.nan
    print(f"\nlandmark stage + head pose, median time per face: {ms:.1f} ms "
          f"({args.threads} thread(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
