"""`gaze-perception train eye-state` and `eval eye-state`.

Training writes to `--out`: `best.pt` (best validation balanced accuracy) and `last.pt`, weights
and meta ready for the `timm_eye` backend, `train_state.pt` (for `--resume`), `metrics.csv`
and, when tensorboard is installed, `tensorboard/`. Torch is imported inside the commands so
that the CLI starts fast.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List

import numpy as np

from ...core.eye_crops import DEFAULT_SCALE
from ...models.eye_decision import (DEFAULT_THRESHOLD, DEFAULT_UNKNOWN_BELOW, check_thresholds,
                                    decide)
from ..splits import split
from . import data as ds

log = logging.getLogger(__name__)

#: run settings; saved in train_state.pt, so `--resume` continues the same run (only --epochs
#: may grow)
TRAIN_DEFAULTS = {
    "arch": "eyenet", "classes": "open,closed", "channels": 1, "input_size": 24,
    "crop_scale": DEFAULT_SCALE, "epochs": 30, "batch_size": 128, "lr": 3e-3,
    "weight_decay": 5e-4, "balance": "weights", "augment": True, "val_fraction": 0.1,
    "seed": 0, "group_column": None, "group_regex": None,
}


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path,
                   help="folder of class folders (open|opened, closed|close, optional third "
                        "class) or a CSV with columns file,label")
    p.add_argument("--image-root", type=Path,
                   help="folder the CSV's file paths are relative to (default: the CSV's folder)")
    p.add_argument("--only-files", type=Path, help="list file: use only these names")
    p.add_argument("--exclude-files", type=Path, help="list file: leave these names out "
                                                      "(e.g. a held-out test list)")


def add_train_args(p: argparse.ArgumentParser) -> None:
    from ..args import add_common_args

    _add_data_args(p)
    d = TRAIN_DEFAULTS
    add_common_args(p, d, out="runs/eye_state")
    p.add_argument("--arch", help=f"eyenet or any timm model name (default {d['arch']})")
    p.add_argument("--classes", help="class order: open,closed or open,closed,NAME for an "
                                     f"explicit third class (default {d['classes']})")
    p.add_argument("--channels", type=int, choices=(1, 3),
                   help=f"1 = grayscale, 3 = RGB (default {d['channels']})")
    p.add_argument("--input-size", type=int,
                   help=f"crop side in pixels (default {d['input_size']})")
    p.add_argument("--crop-scale", type=float, help="crop side / inter-ocular distance that "
                   f"run time should use with this model (default {d['crop_scale']})")
    p.add_argument("--weight-decay", type=float, help=f"default {d['weight_decay']}")
    p.add_argument("--balance", choices=("weights", "sampler", "none"),
                   help="class imbalance: loss weights, balanced sampler, or none "
                        f"(default {d['balance']})")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction,
                   help="flips, small rotations/zoom/shifts, brightness and contrast (default on)")
    p.add_argument("--val-fraction", type=float,
                   help=f"share held out for validation (default {d['val_fraction']})")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--group-column", help="CSV column naming each image's group (subject); "
                                              "validation is then group-disjoint")
    group.add_argument("--group-regex", help=r"pattern whose group 1 in the file name is the "
                       r"group, e.g. '(s\d+)_' for MRL Eye; validation is then group-disjoint")


def add_eval_args(p: argparse.ArgumentParser) -> None:
    _add_data_args(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    p.add_argument("--weights", required=True,
                   help="checkpoint file or manifest name (e.g. eye_state_default)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"closed when P(closed) >= this (default {DEFAULT_THRESHOLD})")
    p.add_argument("--unknown-below", type=float, default=DEFAULT_UNKNOWN_BELOW,
                   help=f"unknown when the top probability is under this (default "
                        f"{DEFAULT_UNKNOWN_BELOW})")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--csv", type=Path, help="per-image predictions (default: beside --json, "
                                            "same name with .csv)")


def _samples(args, classes: List[str], group_column=None, group_regex=None) -> List[ds.Sample]:
    samples = ds.load_samples(args.data, classes, args.image_root, group_column, group_regex)
    only = ds.read_file_list(args.only_files) if args.only_files else None
    exclude = ds.read_file_list(args.exclude_files) if args.exclude_files else None
    samples = ds.select(samples, only, exclude)
    if not samples:
        raise ds.DataError(f"no images left in '{args.data}' after the file lists")
    return samples


def _train_val(args, cfg: Dict, classes: List[str]):
    """(train, val) samples; every class must have training images."""
    train_s, val_s = split(_samples(args, classes, cfg["group_column"], cfg["group_regex"]),
                              cfg["val_fraction"], cfg["seed"])
    counts = np.bincount([s.label for s in train_s], minlength=len(classes))
    if (counts == 0).any():
        raise ds.DataError(f"no training images of class(es) "
                           f"{[c for c, n in zip(classes, counts) if n == 0]}")
    groups = len({s.group for s in train_s + val_s} - {None})
    log.info("%d training images %s, %d validation%s", len(train_s),
             dict(zip(classes, counts.tolist())), len(val_s),
             f" (group-disjoint over {groups} groups)" if groups else "")
    return train_s, val_s, counts


def _new_model(cfg: Dict, classes: List[str], x_train):
    """Untrained model (seeded) whose meta carries the training pixels' mean and std."""
    import torch

    from ...models.eye_state import EyeModelMeta, build_model

    pixels = x_train.float() / 255.0
    meta = EyeModelMeta(arch=cfg["arch"], classes=classes, in_chans=cfg["channels"],
                        input_size=cfg["input_size"], crop_scale=cfg["crop_scale"],
                        mean=pixels.mean(dim=(0, 2, 3)).tolist(),
                        std=pixels.std(dim=(0, 2, 3)).tolist())
    torch.manual_seed(cfg["seed"])
    return build_model(meta), meta


def train_main(args) -> int:
    import torch

    from ...models.eye_state import to_nchw
    from ..args import fit_adamw_cosine, start_run
    from ..distributed import setup
    from .train import EyeTask

    cfg, state = start_run(args, TRAIN_DEFAULTS, ("data", "image_root", "only_files",
                                                  "exclude_files"))
    classes = [c.strip() for c in str(cfg["classes"]).split(",")]
    device, dist = setup(args.device)
    train_s, val_s, counts = _train_val(args, cfg, classes)
    x_train = to_nchw(ds.load_images(train_s, cfg["input_size"], cfg["channels"]))
    y_train = torch.tensor([s.label for s in train_s])
    x_val = to_nchw(ds.load_images(val_s, cfg["input_size"], cfg["channels"]))
    y_val = np.array([s.label for s in val_s], dtype=np.int64)
    model, meta = _new_model(cfg, classes, x_train)  # a resumed run's weights come from its state
    model.to(device)

    class_w = torch.tensor(len(train_s) / (len(classes) * counts), dtype=torch.float32)
    task = EyeTask(model, meta, x_train, y_train, x_val, y_val, device, cfg["augment"],
                   class_w if cfg["balance"] == "weights" else None,
                   class_w[y_train] if cfg["balance"] == "sampler" else None,
                   info={"train_images": len(train_s), "val_images": len(val_s),
                         "data": str(cfg["data"])})
    best = fit_adamw_cosine(task, cfg, args, device, state)
    if not dist.main or best["score"] is None:
        return 0
    print(f"best {'validation' if len(val_s) else 'training'} balanced accuracy "
          f"{best['score']:.4f}; checkpoints {args.out / 'best.pt'}, {args.out / 'last.pt'}")
    return 0


def eval_main(args) -> int:
    from ...core.device import resolve_device
    from ...models.eye_state import load_eye_model, to_nchw
    from .evaluate import decision_figures, format_report, predict, write_predictions

    check_thresholds(args.threshold, args.unknown_below)
    device = resolve_device(args.device)
    model, meta = load_eye_model(args.weights, device=device)
    samples = _samples(args, meta.classes)
    images = to_nchw(ds.load_images(samples, meta.input_size, meta.in_chans))
    probs = predict(model, images, meta, device, args.batch_size)
    labels = np.array([s.label for s in samples])
    preds, unknown = decide(probs, args.threshold, args.unknown_below)
    report = {
        "images": len(samples), "weights": str(args.weights), "data": str(args.data),
        "classes": meta.classes, "threshold": args.threshold,
        "unknown_below": args.unknown_below,
        **decision_figures(labels, preds, unknown, meta.classes),
    }
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    csv_path = args.csv or (args.json.with_suffix(".csv") if args.json else None)
    if csv_path:
        write_predictions(csv_path, samples, meta.classes, preds, unknown, probs)
        print(f"per-image predictions: {csv_path}")
    return 0
