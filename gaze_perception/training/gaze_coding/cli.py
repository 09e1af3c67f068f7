"""`gaze-perception train gaze-coding` and `eval gaze-coding`.

Training reads a folder of labelled clips (`training.gaze_coding.data`), detects and picks the
infant's face in every labelled frame once, keeps the crops in memory, and trains the
classifier; validation holds out whole clips (or, with a single clip, a stratified share of
its frames). `--out` receives `best.pt` (the epoch with the best validation Cohen's kappa),
`last.pt`, `metrics.csv` and `tensorboard/`; `best.pt` loads into the `icatcher` backend.

Evaluation compares two code files frame by frame (percent agreement and Cohen's kappa over
the frames both code as away, left or right), e.g. `code-video` output against human labels.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from ...backends.detector_choice import add_detector_args, make_detector
from ...core.gaze_coding import GAZE_CLASSES, SELECTIONS
from . import data as cd

log = logging.getLogger(__name__)


#: run settings (saved in train_state.pt; a resumed run keeps them, bar --epochs)
TRAIN_DEFAULTS = {"epochs": 20, "batch_size": 32, "lr": 1e-3, "seed": 0}
SETTINGS = ("data", "arch", "input_size", "crop_scale", "detector", "detector_params", "select",
            "every", "weight_decay", "augment", "balance", "val_fraction")


def add_train_args(p: argparse.ArgumentParser) -> None:
    from ..args import add_common_args

    p.add_argument("--data", required=True, type=Path,
                   help="folder of clips (videos or frame folders) with NAME.csv labels")
    add_common_args(p, TRAIN_DEFAULTS, out="runs/gaze_coding")
    p.add_argument("--arch", default="resnet18",
                   help="timm model name, e.g. resnet18 (default), regnety_016, regnety_160")
    p.add_argument("--input-size", type=int, default=100, help="crop side (default 100)")
    p.add_argument("--crop-scale", type=float, default=1.0,
                   help="crop side / face box side (default 1)")
    add_detector_args(p)
    p.add_argument("--select", choices=sorted(SELECTIONS), default="icatcher",
                   help="which face is the infant (default icatcher: low and square)")
    p.add_argument("--every", type=int, default=1,
                   help="use every N-th labelled frame (neighbours are near duplicates)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="default 1e-4")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="mirror half the crops (swapping left and right), brightness and "
                        "contrast (default on)")
    p.add_argument("--balance", action=argparse.BooleanOptionalAction, default=True,
                   help="weight the loss by inverse class frequency (default on)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share held out for validation (default 0.2)")


def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pred", required=True, type=Path,
                   help="predicted codes: code-video CSV or iCatcher+ output")
    p.add_argument("--labels", required=True, type=Path,
                   help="reference codes, same formats (frame,code CSV)")
    p.add_argument("--json", type=Path, help="write the figures here")


def train_main(args) -> int:
    import torch

    from ...models.gaze_coding import CodingMeta, build_model
    from ..args import fit_adamw_cosine, start_run
    from ..distributed import setup
    from .train import CodingTask

    cfg, state = start_run(args, TRAIN_DEFAULTS, SETTINGS)
    args = argparse.Namespace(**{**vars(args), **cfg})
    device, dist = setup(args.device)
    if args.every < 1:
        raise ValueError(f"--every must be >= 1, got {args.every}")
    meta = CodingMeta(arch=args.arch, input_size=args.input_size, crop_scale=args.crop_scale)
    torch.manual_seed(args.seed)
    model = build_model(meta).to(device)  # a bad --arch fails before the slow crop extraction
    clips = cd.find_clips(args.data)
    crops = cd.extract_crops(clips, make_detector(args), args.select, meta.input_size,
                             meta.crop_scale, args.every)
    train_idx, val_idx = cd.split_crops(crops, args.val_fraction, args.seed)
    counts = np.bincount(crops.labels[train_idx], minlength=len(GAZE_CLASSES))
    log.info("%d training crops %s, %d validation; %d labelled frames without a face",
             len(train_idx), dict(zip(GAZE_CLASSES, counts.tolist())), len(val_idx),
             crops.skipped)
    if len(train_idx) < 2:
        raise cd.DataError(f"need at least 2 training crops, got {len(train_idx)}")
    missing = [c for c, n in zip(GAZE_CLASSES, counts) if n == 0]
    if missing:
        log.warning("no training crops of %s: the model cannot learn them", missing)
    weight = None
    if args.balance:
        weight = torch.tensor([len(train_idx) / (len(counts) * n) if n else 0.0 for n in counts],
                              dtype=torch.float32, device=device)

    images = torch.from_numpy(crops.images).permute(0, 3, 1, 2)
    labels = torch.from_numpy(crops.labels)
    task = CodingTask(model, meta, images[train_idx], labels[train_idx], images[val_idx],
                      labels[val_idx], weight, args.augment, device, args.batch_size,
                      info={"data": str(args.data), "clips": [c.name for c in clips]})
    best = fit_adamw_cosine(task, cfg, args, device, state)
    if not dist.main or best["score"] is None:
        return 0
    what = (f"{task.key} {best['score']:.4f}" if task.val is not None
            else f"training loss {-best['score']:.4f}")
    print(f"best epoch {best['epoch']} ({what}); checkpoints {args.out / 'best.pt'}, "
          f"{args.out / 'last.pt'}")
    return 0


def eval_main(args) -> int:
    from .evaluate import compare, format_report

    report = compare(args.pred, args.labels)
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
