#!/usr/bin/env python3
"""Frames per second of the MTCNN face detector on 640x480 frames, batch 1.

The frame is scikit-image's astronaut pasted into a grey 640x480 canvas, so every frame has
one face and the timing covers the whole cascade. Prints the median of several timed runs,
after warm-up calls that pay for lazy initialisation.

    .venv/bin/python tools/bench_face_detector.py --iterations 50 --device cpu
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from skimage import data

from gaze_perception.backends.mtcnn import MTCNNDetector


def make_frame() -> np.ndarray:
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 64:576] = data.astronaut()[32:512]
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=30, help="frames per timed run")
    ap.add_argument("--runs", type=int, default=3, help="timed runs; the median is reported")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    args = ap.parse_args()

    detector = MTCNNDetector(device=args.device)
    frame = make_frame()
    faces = detector.detect([frame])[0]
    for _ in range(args.warmup):
        detector.detect([frame])

    def sync() -> None:  # CUDA work is asynchronous: wait for it before reading the clock
        if detector.device.type == "cuda":
            torch.cuda.synchronize(detector.device)

    rates = []
    for _ in range(args.runs):
        sync()
        start = time.perf_counter()
        for _ in range(args.iterations):
            detector.detect([frame])
        sync()
        rates.append(args.iterations / (time.perf_counter() - start))
    print(f"MTCNN on {detector.device} ({torch.get_num_threads()} torch threads), 640x480, "
          f"batch 1, {len(faces)} face(s): {statistics.median(rates):.1f} frames/s "
          f"(median of {args.runs} runs x {args.iterations}; runs "
          f"{', '.join(f'{r:.1f}' for r in rates)})")


if __name__ == "__main__":
    main()
