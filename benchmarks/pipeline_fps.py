"""Frames per second of the core Pipeline (one process, no ROS) at 640x480 and 1920x1080 with
1, 5 and 30 faces: frames tiled with scikit-image's astronaut face (grey background), every
configured stage run, median of `--repeats` frames after a warm-up (`frames/s` = 1000 /
ms per frame); `streamed/s`: the throughput of `Pipeline.stream`, as `run` goes through a
video (face detection of the next frame beside the other stages of this one).

    .venv/bin/python benchmarks/pipeline_fps.py [--config default] [--threads 2] [--repeats 5]
"""
import argparse
import math
import statistics
import time

import cv2
import numpy as np

from gaze_perception.core.config import load_pipeline_config
from gaze_perception.core.pipeline import Pipeline
from gaze_perception.core.threads import apply_threads
from gaze_perception.samples import astronaut


def frame_with_faces(width: int, height: int, n: int) -> np.ndarray:
    """A grey frame with n astronaut heads on a grid (each cell as large as fits)."""
    face = astronaut()[20:260, 130:370]  # the head and shoulders, 240x240
    cols = math.ceil(math.sqrt(n * width / height))
    rows = math.ceil(n / cols)
    side = min(width // cols, height // rows)
    tile = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 110, np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        frame[r * side:(r + 1) * side, c * side:(c + 1) * side] = tile
    return frame


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def streamed_fps(pipeline: Pipeline, frame: np.ndarray, repeats: int) -> float:
    """Frames per second of `Pipeline.stream` (as `run` processes a video: the next frame's
    faces detected while this one's other stages run) over 2 * repeats + 1 frames, the first
    not timed."""
    n = 2 * repeats + 1
    t0 = 0.0
    for k, _ in pipeline.stream(([frame], None, k) for k in range(n)):
        if k == 0:
            t0 = time.perf_counter()
    return (n - 1) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="default")
    p.add_argument("--threads", type=int, default=0, help="0 = every core")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--faces", default="1,5,30")
    p.add_argument("--sizes", default="640x480,1920x1080", help="frame sizes, WxH,...")
    args = p.parse_args()
    threads = apply_threads(args.threads)
    config = load_pipeline_config(args.config)
    pipeline = Pipeline(config, device="cpu")
    stages = [s for s in ("faces", "eyes", "gaze") if getattr(config, s) is not None]
    print(f"pipeline '{args.config}' ({', '.join(stages)}) on the CPU, {threads} threads; "
          f"median of {args.repeats} frames")
    print(f"{'frame':>10s} {'faces':>5s} {'found':>5s} {'ms/frame':>9s} {'frames/s':>9s} "
          f"{'streamed/s':>10s}")
    for width, height in (tuple(int(v) for v in wh.split("x")) for wh in args.sizes.split(",")):
        for n in (int(x) for x in args.faces.split(",")):
            frame = frame_with_faces(width, height, n)
            found = len(pipeline([frame])[0].faces)
            ms = median_ms(lambda: pipeline([frame]), args.repeats)
            print(f"{width}x{height:<5d} {n:5d} {found:5d} {ms:9.1f} {1000.0 / ms:9.2f} "
                  f"{streamed_fps(pipeline, frame, args.repeats):10.2f}")


if __name__ == "__main__":
    main()
