"""Added time of the eye stage per face: TimmEyeState.estimate on one frame with 1, 4 and 16
faces (both eyes of every face in one batch), median of repeated calls after a warm-up.

    .venv/bin/python benchmarks/eye_state.py [--device cpu] [--repeats 20]
"""
import argparse
import statistics
import time

import cv2
import numpy as np

from gaze_perception import create
from gaze_perception.samples import astronaut


def frame_with_faces(n: int):
    """A frame tiled with n copies of the astronaut, and the detector's faces on it."""
    side = int(np.ceil(np.sqrt(n)))
    tile = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    frame = np.tile(tile, (side, side, 1))
    faces = create("face_detector", "mtcnn", device="cpu").detect([frame])[0][:n]
    return frame, faces


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    backend = create("eye_state", "timm_eye", device=args.device)
    print(f"{'faces':>5s} {'ms per frame':>13s} {'ms per face':>12s}")
    for n in (1, 4, 16):
        frame, faces = frame_with_faces(n)
        for _ in range(args.warmup):
            backend.estimate([frame], [faces])
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            backend.estimate([frame], [faces])
            times.append((time.perf_counter() - t0) * 1000.0)
        ms = statistics.median(times)
        print(f"{len(faces):5d} {ms:13.2f} {ms / len(faces):12.2f}")


if __name__ == "__main__":
    main()
