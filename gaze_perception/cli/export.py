"""`gaze-perception export MODEL --format onnx --out DIR`: a model's networks as ONNX files,
for ONNX Runtime (the backends' `runtime: onnxruntime` with `onnx_dir: DIR`), TensorRT or
OpenVINO. The files are exported from the weights given here; load them with the same weights
(the backend reads its pre- and post-processing settings from the checkpoint)."""
from __future__ import annotations

import sys
from pathlib import Path

#: model -> (what gets exported, files written)
MODELS = {
    "mtcnn": ("P-, R- and O-Net of the mtcnn face detector (dynamic batch, P-Net also dynamic "
              "height and width)", ("pnet", "rnet", "onet")),
    "eye-state": ("the timm_eye eye-state classifier (--weights, default eye_state_default; "
                  "dynamic batch)", ("eye_state",)),
    "l2cs": ("the l2cs gaze-direction net (--weights: a checkpoint of `gaze-perception train "
             "gaze-direction`; dynamic batch)", ("l2cs",)),
    "itracker": ("the itracker screen-point net (--weights: a checkpoint of `gaze-perception "
                 "train gaze-direction`; dynamic batch)", ("itracker",)),
    "gaze-coding": ("the icatcher gaze-coding classifier (--weights: a checkpoint of "
                    "`gaze-perception train gaze-coding`; dynamic batch)", ("gaze_coding",)),
    "gazelle": ("the Gaze-LLE DINOv2 backbone (448x448 images, dynamic batch) and decoder "
                "(features, head maps, image index per head; dynamic heads); --variant, "
                "--backbone-weights, --weights (decoder), default the official files",
                ("gazelle_backbone", "gazelle_decoder")),
}
#: models without shipped weights: where a checkpoint comes from
_TRAINED_BY = {"l2cs": "gaze-direction", "itracker": "gaze-direction",
               "gaze-coding": "gaze-coding"}


def add_args(p) -> None:
    p.add_argument("model", choices=list(MODELS),
                   help="; ".join(f"{k}: {v[0]}" for k, v in MODELS.items()))
    p.add_argument("--format", default="onnx", choices=["onnx"], help="file format (onnx)")
    p.add_argument("--out", required=True, type=Path, help="folder for the files")
    p.add_argument("--weights-dir", type=Path,
                   help="weights folder with manifest.yaml (default: the package's)")
    p.add_argument("--weights", help="checkpoint file or manifest name (eye-state, l2cs, "
                                     "itracker, gaze-coding; gazelle: the decoder)")
    p.add_argument("--backbone-weights", help="gazelle: DINOv2 weights (default: official)")
    p.add_argument("--variant", default="vitb14", help="gazelle: vitb14 or vitl14")


def backend_for(args):
    """The backend of `args.model` on the CPU with the torch runtime, from the given weights."""
    if args.model in _TRAINED_BY and not args.weights:
        raise ValueError(f"export {args.model} needs --weights CHECKPOINT: none ship with the "
                         f"package; train one with `gaze-perception train "
                         f"{_TRAINED_BY[args.model]}`")
    if args.model != "gazelle" and args.backbone_weights:
        raise ValueError("--backbone-weights is for gazelle only")
    if args.model == "mtcnn" and args.weights:
        raise ValueError("mtcnn takes no --weights: its three files come from --weights-dir")
    kw = dict(device="cpu", weights_dir=args.weights_dir)
    if args.model == "mtcnn":
        from ..backends.mtcnn import MTCNNDetector
        return MTCNNDetector(**kw)
    if args.model == "eye-state":
        from ..backends.timm_eye import TimmEyeState
        return TimmEyeState(weights=args.weights or "eye_state_default", **kw)
    if args.model == "l2cs":
        from ..backends.gaze_direction import L2CSGazeDirection
        return L2CSGazeDirection(weights=args.weights, **kw)
    if args.model == "itracker":
        from ..backends.gaze_direction import ITrackerScreenPoint
        return ITrackerScreenPoint(weights=args.weights, **kw)
    if args.model == "gaze-coding":
        from ..backends.gaze_coding import InfantGazeCoder
        return InfantGazeCoder(weights=args.weights, **kw)
    from ..backends.gazelle import GazeLLEBackend
    return GazeLLEBackend(variant=args.variant, backbone_weights=args.backbone_weights,
                          decoder_weights=args.weights, precision="fp32", **kw)


def main(args) -> int:
    backend = backend_for(args)
    print(f"export: {args.model} to ONNX ...", file=sys.stderr)
    backend.export_onnx(args.out)
    for name in MODELS[args.model][1]:
        print(args.out / f"{name}.onnx")
    print(f"export: {args.model} as ONNX in {args.out}/ (load with runtime: onnxruntime, "
          f"onnx_dir: {args.out})", file=sys.stderr)
    return 0
