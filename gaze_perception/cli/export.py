"""`gaze-perception export MODEL --format onnx --out DIR`: a model's networks as ONNX files,
for ONNX Runtime (the backends' `runtime: onnxruntime`), TensorRT or OpenVINO."""
from __future__ import annotations

import sys
from pathlib import Path

#: model -> what gets exported
MODELS = {"mtcnn": "P-, R- and O-Net of the mtcnn face detector (pnet.onnx, rnet.onnx, "
                   "onet.onnx; dynamic batch, P-Net also dynamic height and width)"}


def add_args(p) -> None:
    p.add_argument("model", choices=sorted(MODELS),
                   help="; ".join(f"{k}: {v}" for k, v in MODELS.items()))
    p.add_argument("--format", default="onnx", choices=["onnx"], help="file format (onnx)")
    p.add_argument("--out", required=True, type=Path, help="folder for the files")
    p.add_argument("--weights-dir", type=Path,
                   help="weights folder with manifest.yaml (default: the package's)")


def main(args) -> int:
    from ..backends.mtcnn import MTCNNDetector

    detector = MTCNNDetector(device="cpu", weights_dir=args.weights_dir)
    detector.export_onnx(args.out)
    for name in ("pnet", "rnet", "onet"):
        print(args.out / f"{name}.onnx")
    print(f"export: {args.model} as ONNX in {args.out}/ (load with runtime: onnxruntime)",
          file=sys.stderr)
    return 0
