"""The frame-filling face search (`core.face_context.add_large_faces`, MTCNN's `border_context`)
on tight crops of real faces: how many faces it adds that the cascade alone misses, and how
many smaller faces each added one holds (more than one is refused as a crowd seen small).

    .venv/bin/python benchmarks/large_faces.py                    # the AFLW2000 development set
    .venv/bin/python benchmarks/large_faces.py --data DIR --limit 50
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" /
                    "headpose_aflw2000_dev", help="folder of face images (*.jpg)")
    ap.add_argument("--limit", type=int, default=0, help="first N images (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    files = sorted(args.data.glob("*.jpg"))[:args.limit or None]
    if not files:
        print(f"no *.jpg in {args.data}", file=sys.stderr)
        return 2

    import cv2
    import numpy as np
    import torch

    from gaze_perception.core.face_context import _inner_faces, add_large_faces
    from gaze_perception.core.registry import create
    from gaze_perception.core.threads import apply_threads
    from gaze_perception.metrics.head_pose import central_face

    apply_threads(args.threads, 1)
    det = create("face_detector", "mtcnn", device="cpu")
    plain = create("face_detector", "mtcnn", device="cpu", border_context=False)
    crops, found_alone, inner = 0, 0, Counter()
    for path in files:
        image = np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])
        face = central_face(det.detect([image])[0], image.shape[1], image.shape[0])
        if face is None:
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in face.xyxy)
        crop = np.ascontiguousarray(image[max(0, y0):y1, max(0, x0):x1])
        if min(crop.shape[:2]) < 24:
            continue
        crops += 1
        regular = plain.detect([crop])[0]
        found_alone += bool(regular)
        with torch.inference_mode():  # as inside detect()
            every = add_large_faces(det._detect_one, crop, regular, max_inner_faces=10 ** 6)
        for big in every[len(regular):]:
            inner[_inner_faces(big, regular)] += 1
    added = sum(inner.values())
    print(f"{'tight crops':28s} {crops}")
    print(f"{'cascade alone finds a face':28s} {found_alone}")
    print(f"{'frame-filling faces added':28s} {added}")
    print("smaller faces inside each added face (more than 1: refused as a crowd):")
    for n in sorted(inner):
        print(f"  {n:3d}  {inner[n]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
