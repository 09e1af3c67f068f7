"""MTCNN against its compute floor: for 640x480 and 1920x1080 frames (the demo's grid of four
faces, resized), the FLOPs of one `detect` and the time it takes.

The floor is the FLOPs of the work the cascade must do, counted by torch.utils.flop_counter
on the plain networks (`models/mtcnn.py`) with exactly the inputs `detect` gives them: each
P-Net pyramid level, the R-Net and O-Net crops, *unpadded* (the crops `_bucket` adds to a
batch are not counted, nor is the extra work of the backend's faster forms of the nets), at
this machine's fp32 matmul rate (a 2048x2048 matmul with the same threads). Rows: torch and
onnxruntime, each without and with `border_context` (the default; its extra passes add their
own FLOPs, which the floor of that row includes). Medians of `--repeats` calls, wall / CPU
ms (CPU time of all threads: wall x threads when the cores are ours; more CPU than that means
other work shared the machine), ratio of wall time to the floor; `nets` is the networks alone
on the same inputs, each net called once.

    .venv/bin/python benchmarks/mtcnn_floor.py [--threads 2] [--repeats 10]
"""
import argparse
import os
import statistics
import time
from typing import Callable, List, Tuple

import cv2
import torch
from torch.utils.flop_counter import FlopCounterMode

from gaze_perception.backends.mtcnn import MTCNNDetector
from gaze_perception.samples import demo_frames


def timed(fn, repeats: int):
    """(median wall, median CPU) ms of `repeats` calls after one warm-up call."""
    return timed_min(fn, repeats)[:2]


def timed_min(fn, repeats: int):
    """(median wall, median CPU, least wall) ms."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return statistics.median(wall), statistics.median(cpu), min(wall)


def matmul_gflops(repeats: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    wall, _ = timed(lambda: a @ b, repeats)
    return 2 * 2048 ** 3 / (wall / 1000.0) / 1e9


def recorded_inputs(det: MTCNNDetector, frame) -> List[Tuple[str, torch.Tensor]]:
    """(net, input) of every network call one `detect` makes, padding removed: P-Net's levels
    as (N,3,h,w), R-/O-Net's crops as given before `_bucket` padded them."""
    calls: List[Tuple[str, torch.Tensor]] = []
    torch_det = det.runtime == "torch"
    originals = {}
    for name in ("pnet", "rnet", "onet"):
        originals[name] = getattr(det, name)

    def spy(name: str, fn: Callable) -> Callable:
        def call(x, *rest):
            calls.append((name, x.detach().clone()))
            return fn(x, *rest)
        return call

    import gaze_perception.backends.mtcnn as mtcnn

    run_chunked = mtcnn._run_chunked

    def chunked(net, crops):  # the unpadded crops, before the padding
        name = "rnet" if crops.shape[-1] == 24 else "onet"
        if crops.shape[0]:
            calls.append((name, crops.detach().clone()))
        return run_chunked(net, crops)

    phases = det._pnet_phases
    mtcnn._run_chunked = chunked
    try:
        if torch_det:  # the phase form's input: the level, one repeated row / column
            def level(lv, size):
                calls.append(("pnet", lv[:, :size[0], :size[1]].permute(0, 3, 1, 2).clone()))
                return phases(lv, size)
            det._pnet_phases = level
        else:
            det.pnet = spy("pnet", originals["pnet"])
        det.detect([frame])
    finally:
        mtcnn._run_chunked = run_chunked
        det._pnet_phases = phases
        det.pnet = originals["pnet"]
    return calls


def floor_gflop(nets: MTCNNDetector, calls) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        for name, x in calls:
            getattr(nets, name)(x.contiguous())
    return counter.get_total_flops() / 1e9


def nets_only(det: MTCNNDetector, calls) -> Callable[[], None]:
    """The networks alone on the recorded inputs, as the cascade calls them."""
    from gaze_perception.backends.mtcnn import _run_chunked

    if det.runtime == "torch":
        pnet = [(det._pnet_phases, x.permute(0, 2, 3, 1).contiguous(), tuple(x.shape[2:]))
                for n, x in calls if n == "pnet"]
    else:
        pnet = [(det.pnet, x, None) for n, x in calls if n == "pnet"]
    others = [(getattr(det, n), x) for n, x in calls if n != "pnet"]
    for k, (fn, x, size) in enumerate(pnet):  # the phase form takes even sides
        if size is not None and (size[0] % 2 or size[1] % 2):
            x = torch.cat([x, x[:, -1:]], 1) if size[0] % 2 else x
            x = torch.cat([x, x[:, :, -1:]], 2) if size[1] % 2 else x
            pnet[k] = (fn, x.contiguous(), size)

    def run():
        for fn, x, size in pnet:
            fn(x, size) if size is not None else fn(x)
        for net, x in others:
            _run_chunked(net, x)
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--sizes", default="640x480,1920x1080", help="frame sizes, WxH,...")
    p.add_argument("--runtimes", default="torch,onnxruntime")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    rate = matmul_gflops(args.repeats)
    grid = dict(demo_frames())["astronaut_grid"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.threads} threads, fp32 matmul {rate:.0f} GFLOP/s, load average {load:.2f}; "
          f"ms are medians of {args.repeats} calls (wall / CPU), 'min' the fastest call; floor = "
          f"unpadded network FLOPs at the matmul rate; 'x floor' = median wall / floor")
    print(f"{'frame':>10s} {'runtime':>11s} {'border':>6s} {'GFLOP':>6s} {'floor ms':>8s} "
          f"{'detect ms':>15s} {'min':>6s} {'x floor':>7s} {'nets ms':>15s} {'min':>6s} "
          f"{'x floor':>7s}")
    plain = MTCNNDetector(device="cpu", border_context=False)  # the reference nets for FLOPs
    for size in (tuple(int(v) for v in wh.split("x")) for wh in args.sizes.split(",")):
        frame = cv2.resize(grid, size, interpolation=cv2.INTER_AREA)
        for runtime in args.runtimes.split(","):
            for border in (False, True):
                det = MTCNNDetector(device="cpu", border_context=border, runtime=runtime)
                with torch.inference_mode():
                    calls = recorded_inputs(det, frame)
                    gflop = floor_gflop(plain, calls)
                    floor = gflop / rate * 1000.0
                    wall, cpu, least = timed_min(lambda: det.detect([frame]), args.repeats)
                    nwall, ncpu, nleast = timed_min(nets_only(det, calls), args.repeats)
                print(f"{size[0]:>4d}x{size[1]:<5d} {runtime:>11s} {'on' if border else 'off':>6s} "
                      f"{gflop:6.2f} {floor:8.1f} {wall:7.1f} / {cpu:5.1f} {least:6.1f} "
                      f"{wall / floor:6.1f}x {nwall:7.1f} / {ncpu:5.1f} {nleast:6.1f} "
                      f"{nwall / floor:6.1f}x")


if __name__ == "__main__":
    main()
