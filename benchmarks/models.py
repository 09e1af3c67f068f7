"""Every model's networks against their compute floor: ms per call with torch fp32, with torch
at `precision: auto` (core/precision.py: fp16 on CUDA, bf16 on CPUs with AMX / AVX512_BF16,
else fp32 - then the same path as fp32, measured again) and with `runtime: onnxruntime`; the
FLOPs of the torch call (torch.utils.flop_counter), the floor (those FLOPs at this machine's
fp32 matmul rate: a 2048x2048 matmul with the same threads, `mtcnn_floor.matmul_gflops`,
measured again before each row) and each time's ratio to it.

Each row is one network call on the input a backend gives it (MTCNN: P-Net on the first
pyramid level of a 640x480 frame, R-/O-Net on a padded batch of crops; eye state: one face's
two crops; the face-crop nets: one face; Gaze-LLE: the DINOv2 backbone on one frame, the
decoder for 1 and 5 heads). The modules are the backends' own (`backend.model`; ONNX Runtime:
the backend built with `runtime: onnxruntime`, exported from the same weights), so what is
timed is what runs. Weights are the shipped ones where they ship (MTCNN, eye state), else
seeded random ones of the default architecture (the speed is the architecture's). The torch
decoder shares its first block among a frame's heads, the exported one cannot (its shapes
cannot depend on the boxes): for 5 heads ONNX Runtime does more work than the FLOPs counted.
Median of --repeats calls after --warmup; wall and CPU time (time.process_time), since other
work on the machine inflates wall time. OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE
unless the environment says otherwise), as in the package's processes: with libgomp's
spinning default, 2 torch threads on a loaded 2-core machine took up to ~90x longer (L2CS
on ShuffleNet: 2.3 s per call against 25-37 ms).

    .venv/bin/python benchmarks/models.py [--threads 2] [--repeats 10] [--models eye-state,...]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from gaze_perception.core.threads import WAIT_POLICY

# idle OpenMP threads sleep, as in every process the package starts (core/threads.py); read
# when torch loads OpenMP, so before torch is imported
os.environ.setdefault(*WAIT_POLICY)

import cv2  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gaze_target import random_weights  # noqa: E402
from mtcnn_floor import matmul_gflops, timed  # noqa: E402

from gaze_perception.core.precision import resolve_precision  # noqa: E402
from gaze_perception.models.gazelle import head_maps  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
L2CS_BACKBONES = ("resnet18", "resnet50", "ghostnet_100", "mobilenetv3_large_100",
                  "shufflenet_v2_x1_0")


def _rand(*shape):
    return torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _checkpoint(folder: Path, name: str, module, meta) -> Path:
    from gaze_perception.models.state_dict import save_checkpoint

    torch.manual_seed(0)
    path = folder / f"{name}.pt"
    save_checkpoint(path, module.build_model(meta), meta)
    return path


Case = Tuple[str, Callable[..., object], Callable[[object], Callable[[], object]]]


def cases(folder: Path, names: List[str]) -> List[Case]:
    """(row name, backend factory taking runtime= and precision=, the call on a backend)."""
    from gaze_perception.backends.gaze_coding import InfantGazeCoder
    from gaze_perception.backends.gaze_direction import ITrackerScreenPoint, L2CSGazeDirection
    from gaze_perception.backends.gazelle import GazeLLEBackend
    from gaze_perception.backends.mtcnn import MTCNNDetector
    from gaze_perception.backends.timm_eye import TimmEyeState
    from gaze_perception.models import gaze_coding, gaze_direction

    def plain(cls, **kw):  # backends without a precision parameter
        return lambda runtime, precision: cls(device="cpu", runtime=runtime, **kw)

    def net(inputs, attr="model"):
        return lambda be: (lambda: getattr(be, attr)(*inputs))

    out: List[Case] = []
    want = lambda name: not names or name in names  # noqa: E731
    mtcnn = plain(MTCNNDetector, border_context=False)
    for name, attr, shape in (("mtcnn-pnet", "pnet", (1, 3, 289, 385)),
                              ("mtcnn-rnet", "rnet", (64, 3, 24, 24)),
                              ("mtcnn-onet", "onet", (16, 3, 48, 48))):
        if want(name):
            out.append((f"{name} {'x'.join(map(str, shape))}", mtcnn,
                        net([_rand(*shape)], attr)))
    if want("eye-state"):
        out.append(("eye-state eyenet 2x1x24x24", plain(TimmEyeState),
                    net([_rand(2, 1, 24, 24)])))
    for backbone in L2CS_BACKBONES:
        if want(f"l2cs-{backbone}"):
            meta = gaze_direction.L2CSMeta(backbone=backbone)
            path = _checkpoint(folder, f"l2cs_{backbone}", gaze_direction, meta)
            out.append((f"l2cs-{backbone} 1x3x224x224", plain(L2CSGazeDirection, weights=path),
                        net([_rand(1, 3, 224, 224)])))
    if want("itracker"):
        path = _checkpoint(folder, "itracker", gaze_direction, gaze_direction.ITrackerMeta())
        grid = torch.zeros(1, 25, 25, dtype=torch.uint8)
        grid[0, 5:12, 8:15] = 1
        out.append(("itracker 3x(1x3x224x224)", plain(ITrackerScreenPoint, weights=path),
                    net([_rand(1, 3, 224, 224)] * 3 + [grid])))
    if want("gaze-coding"):
        path = _checkpoint(folder, "gaze_coding", gaze_coding, gaze_coding.CodingMeta())
        out.append(("gaze-coding resnet18 1x3x100x100", plain(InfantGazeCoder, weights=path),
                    net([_rand(1, 3, 100, 100)])))
    if any(want(n) for n in ("gazelle-backbone", "gazelle-decoder")):
        backbone, decoder = random_weights("vitb14", folder)

        def gazelle(runtime, precision):
            return GazeLLEBackend("vitb14", backbone, decoder, device="cpu", runtime=runtime,
                                  precision=precision)
        images = _rand(1, 3, 448, 448)
        if want("gazelle-backbone"):
            out.append(("gazelle-backbone dinov2-vitb14 1x3x448x448", gazelle,
                        lambda be: (lambda: be.model.backbone.forward_patch_features(images))))
        if want("gazelle-decoder"):
            features = _rand(1, 768, 32, 32)
            for heads in (1, 5):
                boxes = [(0.1 + 0.15 * k, 0.2, 0.2 + 0.15 * k, 0.35) for k in range(heads)]
                maps = head_maps(boxes, 32)
                out.append((f"gazelle-decoder vitb14 {heads} head{'s' * (heads > 1)}", gazelle,
                            lambda be, maps=maps, heads=heads:
                            (lambda: be.model.decoder(features, maps, [heads]))))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch, OpenCV and ONNX Runtime "
                                                          "intra-op threads")
    p.add_argument("--repeats", type=int, default=10, help="timed calls; the median counts")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    p.add_argument("--models", default="", help="comma-separated row names (default: all): "
                   "mtcnn-pnet, mtcnn-rnet, mtcnn-onet, eye-state, "
                   + ", ".join(f"l2cs-{b}" for b in L2CS_BACKBONES)
                   + ", itracker, gaze-coding, gazelle-backbone, gazelle-decoder")
    args = p.parse_args()
    # the random checkpoints are files in no manifest: the loader's warning about it is noise here
    logging.getLogger("gaze_perception.core.weights").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)  # before the ONNX Runtime sessions: they take it
    cv2.setNumThreads(args.threads)
    auto = resolve_precision("auto", "cpu")
    names = [n for n in args.models.split(",") if n]
    print(f"{args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
          f"precision auto = {auto} on this CPU; ms are medians of "
          f"{args.repeats} calls after {args.warmup} (wall / CPU); the matmul rate (fp32 "
          f"GFLOP/s) is measured again before each row; load average at the start "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'model, input':44s} {'GFLOP':>7s} {'matmul':>6s} {'floor ms':>9s} "
          f"{'torch fp32 ms':>15s} "
          f"{'x floor':>7s} {f'auto ({auto}) ms':>15s} {'ORT ms':>15s} {'x floor':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make, call in cases(Path(tmp), names):
            backends = {"fp32": make(runtime="torch", precision="fp32"),
                        "auto": make(runtime="torch", precision="auto"),
                        "ort": make(runtime="onnxruntime", precision="auto")}
            calls = {k: call(be) for k, be in backends.items()}
            ms: Dict[str, Tuple[float, float]] = {}
            with torch.inference_mode():
                with FlopCounterMode(display=False) as counter:
                    calls["fp32"]()
                gflop = counter.get_total_flops() / 1e9
                for key, fn in calls.items():
                    # backends without a precision of their own: auto is autocast to it
                    cast = (torch.autocast("cpu", dtype=DTYPES[auto])
                            if key == "auto" and auto != "fp32"
                            and not hasattr(backends[key], "precision") else nullcontext())
                    with cast:
                        for _ in range(args.warmup):
                            fn()
                        ms[key] = timed(fn, args.repeats)
            rate = matmul_gflops(args.repeats)  # the machine's rate now (load changes it)
            floor = gflop / rate * 1000.0
            (fw, fc), (aw, ac), (ow, oc) = ms["fp32"], ms["auto"], ms["ort"]
            print(f"{name:44s} {gflop:7.3f} {rate:6.0f} {floor:9.2f} {fw:7.2f} / {fc:5.1f} "
                  f"{fw / floor:6.1f}x {aw:7.2f} / {ac:5.1f} {ow:7.2f} / {oc:5.1f} "
                  f"{ow / floor:6.1f}x", flush=True)


if __name__ == "__main__":
    main()
