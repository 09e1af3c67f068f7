#!/usr/bin/env python3
"""Gaze-direction backbones side by side: parameters, FLOPs and milliseconds per face.

Each row is the L2CS model (backbone + two heads over --bins angle bins) on --size x --size
face crops; the last row is the iTracker network (face, two eyes, face grid) at the same crop
size. FLOPs are counted by `torch.utils.flop_counter` for one face (a multiply-add is two
FLOPs). Time is the model's forward pass in eval mode, without preprocessing: --warmup untimed
calls, then the median of --repeats timed calls, divided by the batch size. Weights are random
(the cost does not depend on them).

    .venv/bin/python benchmarks/gaze_direction.py --device cpu --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch
from torch.utils.flop_counter import FlopCounterMode

from gaze_perception.core.device import resolve_device
from gaze_perception.models.gaze_direction import BACKBONES, ITrackerNet, L2CSNet


def inputs_for(model: torch.nn.Module, batch: int, size: int, device) -> List[torch.Tensor]:
    crop = lambda: torch.randn(batch, 3, size, size, device=device)  # noqa: E731
    if isinstance(model, ITrackerNet):
        return [crop(), crop(), crop(), torch.ones(batch, 25, 25, device=device)]
    return [crop()]


def flops(model: torch.nn.Module, size: int, device) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(*inputs_for(model, 1, size, device))
    return counter.get_total_flops()


def ms_per_face(model: torch.nn.Module, batch: int, size: int, device, warmup: int,
                repeats: int) -> float:
    x = inputs_for(model, batch, size, device)
    sync: Callable[[], None] = (lambda: torch.cuda.synchronize(device)) \
        if device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(*x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times) / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES),
                    help=f"timm names or shufflenet_v2_x1_0 (default: {' '.join(BACKBONES)})")
    ap.add_argument("--size", type=int, default=224, help="crop side in pixels (default 224)")
    ap.add_argument("--bins", type=int, default=90, help="angle bins per head (default 90)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-itracker", action="store_true", help="leave out the iTracker row")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    args = ap.parse_args()

    device = resolve_device(args.device)
    models: Dict[str, Callable[[], torch.nn.Module]] = {
        b: (lambda b=b: L2CSNet(b, args.bins)) for b in args.backbones}
    if not args.no_itracker:
        models["itracker"] = lambda: ITrackerNet(args.size, args.size)
    head = ["model", "params (M)", "GFLOPs/face"] + [f"ms/face @{b}" for b in args.batches]
    print(f"{device}, {torch.get_num_threads()} torch threads, {args.size}x{args.size} crops, "
          f"fp32, median of {args.repeats} after {args.warmup} warm-up calls")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, make in models.items():
        torch.manual_seed(0)
        model = make().eval().to(device)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        cells = [name, f"{params:.2f}", f"{flops(model, args.size, device) / 1e9:.2f}"]
        cells += [f"{ms_per_face(model, b, args.size, device, args.warmup, args.repeats):.1f}"
                  for b in args.batches]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
