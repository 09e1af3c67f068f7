#!/usr/bin/env python3
"""Milliseconds per frame of the `gazelle` gaze-target backend for 1, 5, 15 and 30 heads.

The timed call is `GazeLLEBackend.estimate` on one 640x480 frame: preprocessing, one backbone
pass, one decoder pass for all heads, and the points. Weights are random (written to a
temporary folder and loaded like real files) unless --backbone-weights / --decoder-weights name
real ones. Each configuration gets --warmup untimed calls first (the first calls on a CPU are
3-4x slower), then --repeats rounds time every configuration once each; the median counts.
Prints the table, what 30 heads cost against one, the bf16 speed-up over fp32, how often bf16
picks the same heatmap argmax (meaningful with real weights: random ones give flat heatmaps)
and the spread of the timings (large on a machine shared with other work).

    .venv/bin/python benchmarks/gaze_target.py --device cpu
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from skimage import data

from gaze_perception.backends.gazelle import GazeLLEBackend
from gaze_perception.core.types import Face
from gaze_perception.models.dinov2 import create_dinov2
from gaze_perception.models.gazelle import GazeLLEDecoder

WIDTH, HEIGHT, BOX = 640, 480, 40


def make_frame() -> np.ndarray:
    canvas = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    canvas[:, 64:576] = data.astronaut()[32:512]
    return canvas


def head_boxes(n: int) -> List[Face]:
    """n head boxes on a grid over the frame, so every head prompts a different place."""
    cols = int(np.ceil(np.sqrt(n * WIDTH / HEIGHT)))
    rows = int(np.ceil(n / cols))
    faces = []
    for k in range(n):
        x = (k % cols + 0.5) * WIDTH / cols - BOX / 2
        y = (k // cols + 0.5) * HEIGHT / rows - BOX / 2
        faces.append(Face.from_xyxy(x, y, x + BOX, y + BOX))
    return faces


def random_weights(variant: str, folder: Path) -> Tuple[str, str]:
    """Seeded random backbone (hub format) and in/out decoder, saved as the real files are."""
    torch.manual_seed(0)
    backbone = create_dinov2(variant)
    decoder = GazeLLEDecoder(backbone.embed_dim, inout=True)
    paths = folder / "backbone.pth", folder / "decoder.pt"
    torch.save(backbone.state_dict(), paths[0])
    torch.save(decoder.state_dict(), paths[1])
    return str(paths[0]), str(paths[1])


def timed(backend: GazeLLEBackend, frame: np.ndarray, faces: List[Face]):
    """(milliseconds, targets) of one call; estimate returns host arrays, so CUDA is done."""
    start = time.perf_counter()
    targets = backend.estimate([frame], [faces])[0]
    return (time.perf_counter() - start) * 1000, targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="vitb14", choices=("vitb14", "vitl14"))
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    ap.add_argument("--heads", default="1,5,15,30", help="comma-separated head counts")
    ap.add_argument("--precisions", default="fp32,bf16", help="fp32, bf16, fp16 (CUDA)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls per configuration")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls; the median counts")
    ap.add_argument("--backbone-weights", help="real DINOv2 file (default: random)")
    ap.add_argument("--decoder-weights", help="real Gaze-LLE decoder file (default: random)")
    args = ap.parse_args()
    heads = [int(n) for n in args.heads.split(",")]
    precisions = args.precisions.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        backbone, decoder = args.backbone_weights, args.decoder_weights
        if backbone is None or decoder is None:
            rnd = random_weights(args.variant, Path(tmp))
            backbone, decoder = backbone or rnd[0], decoder or rnd[1]
        backends = {p: GazeLLEBackend(args.variant, backbone, decoder, device=args.device,
                                      precision=p, heatmaps=True) for p in precisions}
    frame = make_frame()
    configs = [(p, n) for n in heads for p in precisions]
    for p, n in configs:
        for _ in range(args.warmup):
            backends[p].estimate([frame], [head_boxes(n)])
    # Rounds over all configurations, so that load from other processes on a shared machine
    # falls on every configuration alike instead of on whichever ran at the time.
    times: Dict[Tuple[str, int], List[float]] = {c: [] for c in configs}
    targets: Dict[Tuple[str, int], list] = {}
    for _ in range(args.repeats):
        for p, n in configs:
            elapsed, targets[p, n] = timed(backends[p], frame, head_boxes(n))
            times[p, n].append(elapsed)
    ms = {c: statistics.median(t) for c, t in times.items()}

    device = backends[precisions[0]].device
    random = "random" if args.backbone_weights is None else "given"
    print(f"Gaze-LLE {args.variant} at 448 on {device} ({torch.get_num_threads()} torch "
          f"threads), one {WIDTH}x{HEIGHT} frame, {random} weights; median of {args.repeats} "
          f"calls after {args.warmup} warm-up calls, ms per frame")
    print("heads" + "".join(f"{p + ' ms':>11}" for p in precisions)
          + "".join(f"{p + ' speed-up':>16}" for p in precisions[1:]))
    for n in heads:
        print(f"{n:5d}" + "".join(f"{ms[p, n]:11.1f}" for p in precisions)
              + "".join(f"{ms[precisions[0], n] / ms[p, n]:15.2f}x" for p in precisions[1:]))
    if len(heads) > 1:
        lo, hi = heads[0], heads[-1]
        print(f"{hi} heads vs {lo}: " + ", ".join(f"{p} {ms[p, hi] / ms[p, lo]:.2f}x"
                                                  for p in precisions))
    ref = precisions[0]
    for p in precisions[1:]:
        pairs = [(a, b) for n in heads for a, b in zip(targets[ref, n], targets[p, n])]
        same = sum(a.point == b.point for a, b in pairs)
        diff = max(float(np.abs(a.heatmap - b.heatmap).max()) for a, b in pairs)
        print(f"{p} argmax equal to {ref} in {same}/{len(pairs)} heads "
              f"({100 * same / len(pairs):.1f} %); largest heatmap difference {diff:.4f}")
    noise = max(max(t) / min(t) for t in times.values())
    print(f"timing spread: slowest / fastest call of a configuration up to {noise:.2f}x")


if __name__ == "__main__":
    main()
