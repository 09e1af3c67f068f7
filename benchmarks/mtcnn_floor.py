"""MTCNN against its compute floor: for 640x480 and 1920x1080 frames (the demo's grid of four
faces, resized), the FLOPs of one `detect` (torch.utils.flop_counter: P-Net pyramid, R-Net,
O-Net), the floor (those FLOPs at this machine's fp32 matmul rate, a 2048x2048 matmul with the
same threads), the measured time of the whole cascade (torch, and with `runtime:
onnxruntime`) and of its networks alone (the same levels and crops through P-/R-/O-Net), and
their ratios to the floor. Median of `--repeats` calls; CPU time next to wall time, since other
work on the machine inflates wall time.

    .venv/bin/python benchmarks/mtcnn_floor.py [--threads 2] [--repeats 10]
"""
import argparse
import statistics
import time

import cv2
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gaze_perception.backends.mtcnn import MTCNNDetector, _crops, _normalise, _pyramid
from gaze_perception.samples import demo_frames


def timed(fn, repeats: int):
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return statistics.median(wall), statistics.median(cpu)


def matmul_gflops(repeats: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    wall, _ = timed(lambda: a @ b, repeats)
    return 2 * 2048 ** 3 / (wall / 1000.0) / 1e9


def nets_only(det: MTCNNDetector, imgs: torch.Tensor):
    """The three networks on exactly the inputs the cascade gives them."""
    h, w = imgs.shape[2:]
    levels = [_normalise(F.interpolate(imgs, size=(int(h * s + 1), int(w * s + 1)), mode="area"))
              for s in _pyramid(h, w, det.min_face_size, det.factor)]
    boxes, inds = det.propose(imgs)
    r_crops = _crops(imgs, boxes, inds, 24)[0]
    boxes, inds = det.refine(imgs, boxes, inds)
    o_crops = _crops(imgs, boxes, inds, 48)[0]

    def run():
        for level in levels:
            det.pnet(level)
        det.rnet(r_crops)
        det.onet(o_crops)
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--sizes", default="640x480,1920x1080", help="frame sizes, WxH,...")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    rate = matmul_gflops(args.repeats)
    grid = dict(demo_frames())["astronaut_grid"]
    print(f"{args.threads} threads, fp32 matmul {rate:.0f} GFLOP/s; ms are medians of "
          f"{args.repeats} calls (wall / CPU)")
    print(f"{'frame':>10s} {'GFLOP':>6s} {'floor ms':>9s} {'cascade ms':>15s} {'x floor':>8s} "
          f"{'nets ms':>13s} {'x floor':>8s} {'+border ms':>11s} {'ORT ms':>7s}")
    for size in (tuple(int(v) for v in wh.split("x")) for wh in args.sizes.split(",")):
        frame = cv2.resize(grid, size, interpolation=cv2.INTER_AREA)
        det = MTCNNDetector(device="cpu", border_context=False)
        with torch.inference_mode():
            with FlopCounterMode(display=False) as counter:
                det.detect([frame])
            gflop = counter.get_total_flops() / 1e9
            floor = gflop / rate * 1000.0
            wall, cpu = timed(lambda: det.detect([frame]), args.repeats)
            imgs = torch.from_numpy(frame)[None].permute(0, 3, 1, 2).float()
            nwall, ncpu = timed(nets_only(det, imgs), args.repeats)
            full = MTCNNDetector(device="cpu")  # the default: faces at the border looked at again
            bwall, _ = timed(lambda: full.detect([frame]), args.repeats)
            ort = MTCNNDetector(device="cpu", border_context=False, runtime="onnxruntime")
            owall, _ = timed(lambda: ort.detect([frame]), args.repeats)
        print(f"{size[0]}x{size[1]:<5d} {gflop:6.2f} {floor:9.1f} {wall:7.1f} / {cpu:5.1f} "
              f"{wall / floor:7.1f}x {nwall:5.1f} / {ncpu:5.1f} {nwall / floor:7.1f}x "
              f"{bwall:11.1f} {owall:7.1f}")


if __name__ == "__main__":
    main()
