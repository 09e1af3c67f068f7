"""`gaze-perception train face-detector` (one MTCNN stage) and `eval face-detector` (any face
backend).

Training writes a weights folder (`--out`): `mtcnn/<stage>.pt` (a plain state dict with the
published keys), `manifest.yaml` pinning the sha256 of all three stages (stages not trained
yet are copied from the package weights) and `<stage>_metrics.csv`. That folder is a complete
`weights_dir` for the `mtcnn` backend, and by default the cascade that mines hard examples
for the next stage. Torch is imported inside the commands so that the CLI starts fast.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ...core import weights
from ...core.safe_yaml import load_yaml_text
from ..errors import DataError

log = logging.getLogger(__name__)

STAGE_NAMES = ("pnet", "rnet", "onet")


#: run settings (saved in train_state.pt; a resumed run keeps them, bar --epochs)
TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 256, "lr": 1e-3, "seed": 0}
SETTINGS = ("stage", "boxes", "images", "landmarks", "landmark_images", "mine", "mining_weights",
            "init", "neg_ratio", "crops_per_face", "min_face", "loss_weights", "box_loss",
            "cls_weights", "ohem", "weight_decay", "flip", "val_fraction")


def add_train_args(p: argparse.ArgumentParser) -> None:
    from ..args import add_common_args

    p.add_argument("--stage", required=True, choices=STAGE_NAMES, help="cascade stage to train")
    p.add_argument("--boxes", required=True, type=Path,
                   help="WIDER FACE style box file (e.g. wider_face_train_bbx_gt.txt)")
    p.add_argument("--images", required=True, type=Path,
                   help="folder the box file's image paths are relative to")
    p.add_argument("--landmarks", type=Path, help="five-point file, one face per line: "
                   "'file x1 y1 ... x5 y5 x y w h' (landmark samples for onet)")
    p.add_argument("--landmark-images", type=Path,
                   help="folder the landmark file's paths are relative to (default --images)")
    add_common_args(p, TRAIN_DEFAULTS, out="runs/face_detector",
                    lr_help="Adam learning rate, constant")
    p.add_argument("--mine", action=argparse.BooleanOptionalAction, default=True,
                   help="rnet/onet: add the earlier stages' candidates as hard examples "
                        "(default on)")
    p.add_argument("--mining-weights", type=Path, help="weights folder of the cascade that "
                   "mines (default: --out when it holds a manifest.yaml, else the package's)")
    p.add_argument("--init", help="start from these weights, a manifest name (e.g. "
                                  "mtcnn_onet) or a file (default: random)")
    p.add_argument("--neg-ratio", type=float, default=3.0,
                   help="negatives per positive (default 3, i.e. 1:3)")
    p.add_argument("--crops-per-face", type=int, default=10,
                   help="jittered crops tried around each face (default 10)")
    p.add_argument("--min-face", type=float, default=20.0,
                   help="faces with a shorter side below this (px) give no crops (default 20)")
    p.add_argument("--loss-weights", help="classification,box,landmark weights (default "
                   "1,0.5,0.5 for pnet and rnet, 1,0.5,1 for onet)")
    p.add_argument("--box-loss", choices=("mse", "smooth_l1"), default="mse",
                   help="loss on the box offsets (default mse)")
    p.add_argument("--cls-weights", help="non_face,face cross-entropy weights "
                                         "(default: unweighted)")
    p.add_argument("--ohem", type=float, default=0.7, help="share of the classification "
                   "losses kept in each batch, hardest first (default 0.7; 1 = no OHEM)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="random horizontal flips (default on)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the images held out for validation (default 0.1)")


def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="folder of the images")
    p.add_argument("--boxes", type=Path,
                   help="WIDER FACE style box file (default DATA/boxes.txt)")
    p.add_argument("--landmarks", type=Path, help="five-point file ('file x1 y1 ... x5 y5 x y "
                                                  "w h'): adds the mean landmark error")
    p.add_argument("--backend", default="mtcnn", help="face detector backend (default mtcnn)")
    p.add_argument("--weights-dir", type=Path,
                   help="weights folder, e.g. the --out of train face-detector")
    p.add_argument("--weights", help="manifest name or file (yunet, retinaface)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="backend parameter (YAML value), e.g. score_threshold=0.3; repeatable")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]")
    p.add_argument("--json", type=Path, help="write the figures here")


def _floats(text: Optional[str], n: int, flag: str) -> Optional[tuple]:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n or any(v < 0 for v in values):
        raise ValueError(f"{flag} needs {n} non-negative comma-separated numbers, got '{text}'")
    return values


def _check_train_args(args) -> None:
    checks = [(0 < args.ohem <= 1, "--ohem must lie in (0, 1]"),
              (args.neg_ratio >= 0, "--neg-ratio must be >= 0"),
              (args.crops_per_face >= 1, "--crops-per-face must be >= 1"),
              (0 <= args.val_fraction < 1, "--val-fraction must lie in [0, 1)")]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def run_folder(out: Path, stage: str) -> Path:
    """Where the training run of one stage keeps its figures, checkpoints and state."""
    return Path(out) / "runs" / stage


def train_main(args) -> int:
    import torch

    from ..args import fit_config, start_run
    from ..distributed import setup
    from ..fit import fit
    from . import data as face_data
    from . import samples as face_samples
    from . import train as face_train

    weights_dir = Path(args.out)
    run = run_folder(weights_dir, args.stage)
    cfg, state = start_run(argparse.Namespace(**{**vars(args), "out": run}), TRAIN_DEFAULTS,
                           SETTINGS)
    args = argparse.Namespace(**{**vars(args), **cfg})
    for key in ("boxes", "images", "landmarks", "landmark_images", "mining_weights"):
        if getattr(args, key) is not None:
            setattr(args, key, Path(getattr(args, key)))
    args.out = weights_dir
    _check_train_args(args)
    loss_cfg = face_train.LossConfig(
        _floats(args.loss_weights, 3, "--loss-weights")
        or face_train.DEFAULT_LOSS_WEIGHTS[args.stage],
        args.box_loss, _floats(args.cls_weights, 2, "--cls-weights"), args.ohem)
    device, dist = setup(args.device)
    dataset = face_data.read_boxes(args.boxes)
    if args.landmarks:
        if args.stage != "onet":
            log.warning("--landmarks ignored: only O-Net has a landmark head")
        else:
            dataset = face_data.merge(dataset, face_data.read_landmarks(args.landmarks))
    net_cls, size = face_train.STAGES[args.stage]
    sample_cfg = face_samples.SampleConfig(size, args.neg_ratio, args.crops_per_face,
                                           args.min_face, landmarks=args.stage == "onet")
    miner = _miner(args, device) if args.stage != "pnet" and args.mine else None
    samples = face_samples.generate(dataset, args.images, sample_cfg, args.seed, miner,
                                    args.landmark_images, desc=f"{args.stage} samples")
    val_images = _held_out(len(dataset), args.val_fraction, args.seed)
    is_val = np.isin(samples.source, val_images)
    train_s, val_s = samples.subset(~is_val), samples.subset(is_val)
    log.info("%d images -> %d training samples %s, %d validation samples %s", len(dataset),
             len(train_s), train_s.counts(), len(val_s), val_s.counts())
    if not train_s.counts()["positive"] or not train_s.counts()["negative"]:
        raise DataError(f"the training samples need positives and negatives, got "
                        f"{train_s.counts()} (faces below --min-face {args.min_face:g} px "
                        "give no crops)")

    torch.manual_seed(args.seed)
    net = net_cls()
    if args.init:
        _load_init(net, args.init)
    net.to(device)
    task = face_train.FaceTask(net, train_s, val_s, loss_cfg, args.flip, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    fit(task, optimizer, fit_config(cfg, args), run, device, cfg, None, state)
    if args.stop_after is not None and args.stop_after < cfg["epochs"]:
        print(f"stopped after epoch {args.stop_after}; continue with --resume")
        return 0
    if not dist.main:
        return 0
    best = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(best)
    scored = val_s if len(val_s) else train_s
    figures = face_train.evaluate(net, scored, loss_cfg, device)
    path = face_train.install(args.out, args.stage, best, f"trained by `gaze-perception "
                              f"train face-detector --stage {args.stage}` on {args.boxes}")
    print(f"{'validation' if len(val_s) else 'training'} samples {scored.counts()}")
    print(face_train.format_sample_figures(figures))
    print(f"weights {path}; use `--weights-dir {args.out}` (backend parameter weights_dir) "
          f"to run or evaluate the cascade; figures and checkpoints in {run}")
    return 0


def _held_out(n: int, fraction: float, seed: int) -> np.ndarray:
    """Indices of the validation images: whole images, so no face is on both sides."""
    if fraction <= 0 or n < 2:
        return np.zeros(0, int)
    k = min(max(1, round(fraction * n)), n - 1)
    return np.random.default_rng(seed).permutation(n)[:k]


def _miner(args, device):
    """Candidate boxes of the stages before `args.stage`, as the cascade would pass them on.

    Calls MTCNNDetector's stage methods (`propose`, `refine`) rather than a copy of them, so
    the candidates are exactly what the trained stage will be given at run time.
    """
    import torch

    from ...backends.mtcnn import MTCNNDetector

    wdir = args.mining_weights
    if wdir is None and (args.out / "manifest.yaml").is_file():
        wdir = args.out
    detector = MTCNNDetector(weights_dir=wdir, device=str(device))
    log.info("mining hard examples with the cascade in %s", wdir or weights.default_weights_dir())

    @torch.inference_mode()
    def mine(image: np.ndarray) -> np.ndarray:
        imgs = torch.from_numpy(image[None]).to(detector.device).permute(0, 3, 1, 2).float()
        boxes, inds = detector.propose(imgs)
        if args.stage == "onet":
            boxes, inds = detector.refine(imgs, boxes, inds)
        boxes = boxes[:, :4].cpu().numpy()
        boxes[:, :2] -= 1  # 1-based inclusive corners -> the pixel span the detector crops
        return boxes

    return mine


def _load_init(net, spec: str) -> None:
    from ...models.state_dict import load_strict

    path = weights.locate(spec, what="--init weights")
    load_strict(net, weights.load_state_dict(path), f"--init '{path}'")


def eval_main(args) -> int:
    from ...core import registry
    from . import data as face_data
    from . import evaluate as face_eval

    boxes = args.boxes or args.data / "boxes.txt"
    dataset = face_data.read_boxes(boxes)
    if args.landmarks:
        dataset = face_data.merge(dataset, face_data.read_landmarks(args.landmarks))
    params = {"device": args.device, **_params(args.param)}
    if args.weights_dir:
        params["weights_dir"] = args.weights_dir
    if args.weights:
        params["weights"] = args.weights
    detector = registry.create("face_detector", args.backend, **params)
    dets = face_eval.detect_all(detector, dataset, args.data)
    report = face_eval.report(dets, dataset)
    report = {"backend": args.backend, "detector": detector.describe(), "data": str(args.data),
              "boxes": str(boxes), **report}
    print(face_eval.format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _params(pairs) -> Dict[str, object]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param needs KEY=VALUE, got '{pair}'")
        out[key.strip()] = load_yaml_text(value, f"--param {key.strip()}")
    return out
