"""`gaze-perception train gaze-target` and `eval gaze-target`: Gaze-LLE on GazeFollow and
VideoAttentionTarget, by the official recipe and evaluation protocol.

Training writes to `--out`: `best.pt` and `last.pt`, decoder-only state dicts in the published
format (load them in the `gazelle` backend as `decoder_weights`), `train_state.pt` (optimizer,
epoch, best score and run settings, for `--resume`), `metrics.csv` and `tensorboard/`. It prints
the reference's log lines word for word (`TRAIN EPOCH ...`, `EVAL EPOCH ...`, `Completed
training. ...`), so epochs count from 0 as there. Torch is imported inside the commands so that
the CLI starts fast.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Dict, Optional

from ..errors import DataError
from .data import DATASETS, NAMES, VAT_BOX_SMOOTHING, read_split
from ..run_log import resumed_settings

log = logging.getLogger(__name__)

#: models.gazelle.VARIANTS, repeated so that building the CLI imports no torch
VARIANTS = ("vitb14", "vitl14", "vits14_depth2")
#: the official recipes (gazelle_training.md); every value can be overridden by its flag.
#: VAT fine-tunes from the GazeFollow decoder with constant rates, 1e-2 for the in/out head.
RECIPES = {
    "gazefollow": {"epochs": 15, "batch_size": 60, "lr": 1e-3, "inout_lr": None,
                   "schedule": "cosine", "frame_stride": 1},
    "vat": {"epochs": 8, "batch_size": 60, "lr": 1e-5, "inout_lr": 1e-2,
            "schedule": "constant", "frame_stride": 6},
}
#: settings shared by both recipes; weight decay 0 makes AdamW the reference's Adam
COMMON = {"variant": "vitb14", "backbone_weights": None, "weights": None, "min_lr": 1e-7,
          "weight_decay": 0.0, "inout_weight": 1.0, "box_smoothing": VAT_BOX_SMOOTHING,
          "augment": True, "cache_features": None, "limit": None, "seed": 0}


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS,
                   help="gazefollow (train/test_annotations_release.txt, either column layout) "
                        "or vat (VideoAttentionTarget: annotations/<split>/<show>/<clip>/*.txt)")
    p.add_argument("--root", required=True, type=Path, help="dataset folder as released")
    p.add_argument("--variant", choices=VARIANTS,
                   help="backbone size: vitb14 (default) or vitl14; vits14_depth2 is a tiny "
                        "model for tests")
    p.add_argument("--backbone-weights", help="DINOv2 hub release file or manifest name "
                   "(default dinov2_<variant>_pretrain)")
    p.add_argument("--limit", type=int, help="use only the first N people of each split")
    p.add_argument("--box-smoothing", type=int, help="VAT: moving-average window over each "
                   f"track's head boxes (default {VAT_BOX_SMOOTHING}, as the official code)")


def add_train_args(p: argparse.ArgumentParser) -> None:
    from ..args import add_common_args

    _add_data_args(p)
    add_common_args(p, {"epochs": "15 (GazeFollow), 8 (VAT)", "batch_size": 60,
                        "lr": "1e-3 (GazeFollow), 1e-5 (VAT)", "seed": 0}, out=None,
                    lr_help="decoder learning rate", workers=4)
    p.add_argument("--weights", help="decoder to start from (published format: file or "
                   "manifest name). The VAT recipe starts from the GazeFollow decoder, e.g. "
                   "gazelle_dinov2_vitb14; an in/out head it lacks starts fresh")
    p.add_argument("--inout-lr", type=float, help="in/out head and token (default 1e-2)")
    p.add_argument("--schedule", choices=("cosine", "constant"),
                   help="per-epoch cosine annealing down to --min-lr (GazeFollow default) or "
                        "constant rates (VAT default)")
    p.add_argument("--min-lr", type=float, help="end of the cosine schedule (default 1e-7)")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0: Adam)")
    p.add_argument("--inout-weight", type=float, help="weight of the in/out loss (default 1)")
    p.add_argument("--frame-stride", type=int, help="VAT: every N-th frame (default 6)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction,
                   help="random crop, flip and head-box jitter, each p=0.5 (default on)")
    p.add_argument("--cache-features", type=Path, metavar="DIR",
                   help="compute backbone features once and keep them here (float16); "
                        "epochs then run the decoder only, and of the augmentations only the "
                        "head-box jitter remains")
    p.add_argument("--eval-batch", type=int, default=8, help="images per evaluation pass")


def add_eval_args(p: argparse.ArgumentParser) -> None:
    _add_data_args(p)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    p.add_argument("--weights", help="decoder file or manifest name (default "
                   "gazelle_dinov2_<variant> for GazeFollow, ..._inout for VAT)")
    p.add_argument("--frame-stride", type=int, default=1,
                   help="VAT: every N-th frame (default 1, the official final evaluation)")
    p.add_argument("--precision", choices=("fp32", "auto", "bf16", "fp16"), default="fp32",
                   help="fp32 (default, the published protocol); auto: fp16 on CUDA, bf16 on "
                   "CPUs with AMX / AVX512_BF16, else fp32")
    p.add_argument("--batch", type=int, default=8, help="images per model call (default 8)")
    p.add_argument("--json", type=Path, help="write the figures here")


def eval_main(args) -> int:
    from ...backends.gazelle import GazeLLEBackend
    from .evaluate import backend_predictor, evaluate, format_report

    variant = args.variant or COMMON["variant"]
    smoothing = VAT_BOX_SMOOTHING if args.box_smoothing is None else args.box_smoothing
    samples = read_split(args.dataset, args.root, "test", args.frame_stride, smoothing,
                         args.limit)
    if not samples:
        raise DataError(f"no people in the {NAMES[args.dataset]} test split under '{args.root}'")
    weights = args.weights or f"gazelle_dinov2_{variant}" + ("_inout" if args.dataset == "vat"
                                                             else "")
    backend = GazeLLEBackend(variant=variant, backbone_weights=args.backbone_weights,
                             decoder_weights=weights, device=args.device,
                             precision=args.precision, heatmaps=True)
    log.info("%s", backend.describe())
    start = time.monotonic()
    result = evaluate(samples, args.dataset, backend_predictor(backend, args.root), args.batch,
                      desc=f"{NAMES[args.dataset]} test")
    print(format_report(args.dataset, result))
    if args.json:
        report = {"dataset": args.dataset, "split": "test", "root": str(args.root),
                  "variant": variant, "weights": weights,
                  "backbone_weights": args.backbone_weights or f"dinov2_{variant}_pretrain",
                  "precision": args.precision, "frame_stride": args.frame_stride,
                  "limit": args.limit, "seconds": round(time.monotonic() - start, 2),
                  "metrics": result}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def train_main(args) -> int:
    import torch

    from ..args import fit_config, resume_folder
    from ..distributed import setup
    from ..fit import amp_dtype, check_fresh, fit, read_state
    from .evaluate import BEST, eval_line, evaluate, model_predictor
    from .train import LOG_EVERY, GazeTask, TrainSet, param_groups, schedule

    folder = resume_folder(args)
    saved = read_state(folder) if folder is not None else None
    if saved is None:
        check_fresh(args.out)
    cfg = _settings(args, saved["config"] if saved else None)
    device, dist = setup(args.device)
    amp = amp_dtype(device, args.amp)
    dataset, root = cfg["dataset"], Path(cfg["root"])
    train, test = _splits(cfg)

    torch.manual_seed(cfg["seed"])
    model, backbone_file = _build_model(cfg)
    model.to(device)
    features, cache = _features(model, cfg, backbone_file, root, device, amp, train + test, dist)
    train_set = TrainSet(train, root, cfg["seed"], cfg["augment"], cache)
    optimizer = torch.optim.AdamW(param_groups(model, cfg["lr"], cfg["inout_lr"]),
                                  lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    predict = model_predictor(model, features)
    task = GazeTask(model, train_set, features, cfg["inout_weight"],
                    lambda: evaluate(test, dataset, predict, args.eval_batch, desc="eval"),
                    BEST[dataset], lambda epoch, scores: eval_line(dataset, epoch, scores))
    settings = fit_config(cfg, args, schedule_per="epoch", log_every=LOG_EVERY, epoch_base=0,
                          tb_prefix="epoch/", drop_single=False)  # no batch norm here
    best = fit(task, optimizer, settings, args.out, device, cfg,
               schedule(cfg["schedule"], cfg["epochs"], cfg["min_lr"]), saved)
    if dist.main and (args.stop_after is None or args.stop_after >= cfg["epochs"]):
        metric, metric_name, _ = BEST[dataset]
        value = best["figures"].get(metric) if best["figures"] else None
        shown = None if value is None else round(value, 4)
        print(f"Completed training. Best {metric_name} of {shown} obtained at epoch "
              f"{best['epoch']}")
    return 0


def _settings(args, saved: Optional[Dict]) -> Dict:
    """Run settings: recipe defaults < given flags; a resumed run keeps its own (bar epochs)."""
    fresh = {"dataset": args.dataset, "root": str(args.root), **COMMON, **RECIPES[args.dataset]}
    given = {k: str(v) if isinstance(v, Path) else v  # plain values: train_state.pt loads
             for k in fresh if (v := getattr(args, k, None)) is not None}  # with weights_only
    if saved is None:
        cfg = {**fresh, **given}
        for key in ("epochs", "batch_size", "frame_stride"):
            if cfg[key] < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be at least 1, got {cfg[key]}")
        return cfg
    return resumed_settings(saved, given)


def _splits(cfg: Dict):
    """Training and test people; GazeFollow trains on in-frame rows only, as the reference."""
    dataset, root = cfg["dataset"], Path(cfg["root"])
    train, test = (read_split(dataset, root, split, cfg["frame_stride"], cfg["box_smoothing"],
                              cfg["limit"]) for split in ("train", "test"))
    if dataset == "gazefollow":
        train = [s for s in train if s.inout]
    for split, people in (("train", train), ("test", test)):
        if not people:
            raise DataError(f"the {NAMES[dataset]} {split} split under '{root}' has no "
                            "usable people")
    log.info("%d training and %d test people", len(train), len(test))
    return train, test


def _build_model(cfg: Dict):
    """Gaze-LLE with the frozen backbone and the decoder to train (in/out head for VAT): the
    --weights decoder, else a fresh one (a resumed run's decoder comes from its state)."""
    from ...core.weights import default_weights_dir, load_state_dict, locate
    from ...models.gazelle import create_gazelle, load_decoder_state_dict

    wdir = default_weights_dir()
    variant = cfg["variant"]
    backbone_file = locate(cfg["backbone_weights"] or f"dinov2_{variant}_pretrain", wdir,
                           "DINOv2 backbone weights")
    model = create_gazelle(variant, backbone_file, inout=cfg["dataset"] == "vat")
    model.backbone.requires_grad_(False)
    if cfg["weights"]:
        path = locate(cfg["weights"], wdir, "Gaze-LLE decoder weights")
        state = load_state_dict(path)
        fresh = {k: v for k, v in model.decoder.state_dict().items()
                 if k.startswith("inout_") and k not in state}
        if fresh:
            log.info("'%s' has no in/out head: it starts fresh", path)
        load_decoder_state_dict(model.decoder, {**state, **fresh}, f"weights file '{path}'")
    elif cfg["dataset"] == "vat":
        log.warning("training the VAT decoder from scratch; the official recipe starts from "
                    "the GazeFollow decoder (--weights gazelle_dinov2_%s)", variant)
    log.info("learnable parameters: %d",
             sum(p.numel() for p in model.parameters() if p.requires_grad))
    return model, backbone_file


def _features(model, cfg: Dict, backbone_file: Path, root: Path, device, amp, samples, dist):
    """The feature source, with its cache filled when --cache-features is set."""
    from ...core.weights import sha256_of
    from ...models.gazelle import IN_SIZE
    from .features import FeatureCache, FeatureSource

    cache = None
    if cfg["cache_features"]:
        cache = FeatureCache(Path(cfg["cache_features"]),
                             {"variant": cfg["variant"], "input_size": str(IN_SIZE),
                              "backbone_sha256": sha256_of(backbone_file)})
    features = FeatureSource(model.backbone, root, device, amp, cache)
    if cache is not None and dist.main:
        features.fill_cache(samples, batch_size=8)
    dist.barrier()  # the other processes read what rank 0 cached
    return features, cache
