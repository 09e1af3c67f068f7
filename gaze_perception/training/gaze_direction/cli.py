"""`gaze-perception train gaze-direction` and `eval gaze-direction`.

`--model l2cs` (default) learns yaw and pitch from an angle CSV; `--model itracker` learns the
gaze point in cm from GazeCapture-style sessions (formats and dataset conversions:
`training.gaze_direction.data`). Training writes to `--out`: `best.pt` (best validation: lowest
mean angular error, or lowest mean distance in cm), `last.pt`, `metrics.csv` and
`tensorboard/`; both checkpoints load into the `l2cs` / `itracker` backends. Torch is imported
inside the commands so that the CLI starts fast.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Tuple

from ..errors import DataError

log = logging.getLogger(__name__)

#: bin layouts by name: L2CS-Net's Gaze360 (90 x 4 deg) and MPIIGaze (28 x 3 deg) settings
BIN_PRESETS = {"gaze360": (90, 4.0), "mpiigaze": (28, 3.0)}


def _bins(text: str) -> Tuple[int, float]:
    """gaze360 | mpiigaze | COUNTxWIDTH (e.g. 28x3)."""
    if text in BIN_PRESETS:
        return BIN_PRESETS[text]
    try:
        count, width = text.lower().split("x")
        count, width = int(count), float(width)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bins must be {', '.join(BIN_PRESETS)} or COUNTxWIDTH "
                                         f"(e.g. 90x4), got '{text}'") from None
    if count < 2 or width <= 0:
        raise argparse.ArgumentTypeError(f"need at least 2 bins of positive width, got '{text}'")
    return count, width


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=("l2cs", "itracker"), default="l2cs",
                   help="l2cs: yaw/pitch from an angle CSV (default); itracker: screen point "
                        "from GazeCapture-style sessions")
    p.add_argument("--data", required=True, type=Path,
                   help="l2cs: CSV with file,yaw,pitch[,group]; itracker: GazeCapture folder")
    p.add_argument("--image-root", type=Path,
                   help="folder the CSV's file paths are relative to (default: the CSV's folder)")
    p.add_argument("--units", choices=("deg", "rad"), default="deg",
                   help="angle unit of the CSV (default deg)")


def _add_common(p: argparse.ArgumentParser) -> None:
    _add_data(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    p.add_argument("--workers", type=int, default=2, help="image-reading processes (default 2)")
    p.add_argument("--batch-size", type=int, default=32, help="default 32")


#: run settings (saved in train_state.pt; a resumed run keeps them, bar --epochs)
TRAIN_DEFAULTS = {"epochs": 20, "batch_size": 32, "lr": 1e-3, "seed": 0}
SETTINGS = ("model", "data", "image_root", "units", "backbone", "bins", "alpha", "input_size",
            "crop_scale", "weight_decay", "augment", "val_fraction")


def add_train_args(p: argparse.ArgumentParser) -> None:
    from ..args import add_common_args

    _add_data(p)
    add_common_args(p, TRAIN_DEFAULTS, out="runs/gaze_direction", workers=2)
    p.add_argument("--backbone", default="resnet50",
                   help="l2cs: timm model name or shufflenet_v2_x1_0 (default resnet50; "
                        "benchmarks/gaze_direction.py compares the light ones)")
    p.add_argument("--bins", type=_bins, default="gaze360",
                   help="l2cs angle bins: gaze360 (90x4 deg), mpiigaze (28x3 deg) or "
                        "COUNTxWIDTH (default gaze360)")
    p.add_argument("--alpha", type=float, default=1.0,
                   help="l2cs: weight of the angle regression loss (default 1)")
    p.add_argument("--input-size", type=int, default=224,
                   help="crop side in pixels: l2cs face, itracker face and eyes (default 224)")
    p.add_argument("--crop-scale", type=float, default=1.0,
                   help="run-time face crop side / face box side (default 1)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="default 1e-4")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="brightness/contrast; l2cs also mirrors (negating yaw) (default on)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share held out for validation, whole groups / sessions when known "
                        "(default 0.1; GazeCapture's info.json train/val split wins)")


def add_eval_args(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    p.add_argument("--weights", required=True, help="checkpoint file or manifest name")
    p.add_argument("--split", help="itracker: only sessions whose info.json Dataset is this "
                                   "(e.g. test)")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--csv", type=Path, help="per-sample predictions")


# -- data --------------------------------------------------------------------------------------
def _datasets(args):
    """(training set, validation set or None, model description) of the flags."""
    from ...models.gaze_direction import ITrackerMeta, L2CSMeta
    from . import data as dd

    if args.model == "l2cs":
        count, width = args.bins
        meta = L2CSMeta(backbone=args.backbone, bins=count, bin_width=width,
                        input_size=args.input_size, crop_scale=args.crop_scale)
        samples = dd.read_angles_within(args.data, args.image_root, args.units,
                                        meta.angle_bins.limit)
        train, val = dd.split(samples, [s.group for s in samples], args.val_fraction, args.seed)
        make = lambda s: dd.AngleDataset(s, meta.input_size)  # noqa: E731
        return make(train), make(val) if val else None, meta
    meta = ITrackerMeta(face_size=args.input_size, eye_size=args.input_size,
                        crop_scale=args.crop_scale)
    train, val = dd.capture_split(dd.read_gazecapture(args.data), args.val_fraction, args.seed)
    make = lambda s: dd.CaptureDataset(  # noqa: E731
        s, meta.face_size, meta.eye_size, meta.crop_scale)
    return make(train), make(val) if val else None, meta


# -- commands ----------------------------------------------------------------------------------
def train_main(args) -> int:
    import torch

    from ...models.gaze_direction import build_model
    from ..args import fit_adamw_cosine, start_run
    from ..distributed import setup
    from .train import DirectionTask

    cfg, state = start_run(args, TRAIN_DEFAULTS, SETTINGS)
    args = argparse.Namespace(**{**vars(args), **cfg})
    if isinstance(args.bins, str):
        args.bins = _bins(args.bins)
    device, dist = setup(args.device)
    train, val, meta = _datasets(args)
    if len(train) < 2:
        raise DataError(f"need at least 2 training samples, got {len(train)}")
    log.info("%d training samples, %d validation", len(train), len(val) if val else 0)
    torch.manual_seed(cfg["seed"])
    model = build_model(meta).to(device)
    task = DirectionTask(args.model, model, meta, train, val, device, args.augment, args.alpha,
                         cfg["batch_size"], args.workers, info={"data": str(args.data)})
    best = fit_adamw_cosine(task, cfg, args, device, state)
    if not dist.main or best["score"] is None:
        return 0
    what = (f"validation {task.error_key} {-best['score']:.4f}" if val else
            f"training loss {-best['score']:.4f}")
    print(f"best epoch {best['epoch']} ({what}); checkpoints {args.out / 'best.pt'}, "
          f"{args.out / 'last.pt'}")
    return 0


def eval_main(args) -> int:
    from ...core.device import resolve_device
    from ...models.gaze_direction import load_direction_model
    from . import data as dd
    from . import train as fit
    from .evaluate import FIGURES, evaluate, format_report, write_predictions

    device = resolve_device(args.device)
    model, meta = load_direction_model(args.weights, args.model, device=device)
    if args.model == "l2cs":
        dataset = dd.AngleDataset(dd.read_angle_csv(args.data, args.image_root, args.units),
                                  meta.input_size)
        forward = fit.l2cs_forward(meta)
        names = [str(s.path) for s in dataset.samples]
    else:
        samples = dd.read_gazecapture(args.data)
        if args.split:
            samples = [s for s in samples if s.split == args.split]
            if not samples:
                raise DataError(f"no session of '{args.data}' is in split '{args.split}'")
        dataset = dd.CaptureDataset(samples, meta.face_size, meta.eye_size, meta.crop_scale)
        forward = fit.itracker_forward(meta)
        names = [str(s.frame) for s in samples]
    true = dataset.targets()
    pred, figures = evaluate(model, dataset, forward, args.model, device, args.batch_size,
                             args.workers, true)
    report = {"model": args.model, "weights": str(args.weights), "data": str(args.data),
              "samples": len(dataset), **figures}
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.csv:
        write_predictions(args.csv, names, FIGURES[args.model][2], true, pred)
    return 0
