"""The command-line arguments every trainer shares, and a run's settings.

`--out`, `--resume [RUN]`, `--device`, `--epochs`, `--batch-size`, `--lr`, `--seed`,
`--workers`, `--amp` and `--stop-after` mean the same in every `gaze-perception train TASK`.
A run's settings are the trainer's defaults overridden by the flags given; they are saved in
`train_state.pt`, and a resumed run keeps its own (only `--epochs` may change).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

from .run_log import resumed_settings

#: flags that say where and how to run, not what to train: never part of the settings
NOT_SETTINGS = {"out", "resume", "device", "workers", "amp", "stop_after", "verbose",
                "command", "task", "_module"}


def add_common_args(p: argparse.ArgumentParser, defaults: Dict[str, Any], *,
                    out: Optional[str], lr_help: str = "peak AdamW learning rate, cosine decay",
                    workers: int = 0) -> None:
    """The shared flags; `defaults` holds the trainer's epochs, batch_size, lr and seed."""
    d = defaults
    p.add_argument("--out", type=Path, default=Path(out) if out else None, required=out is None,
                   help="run folder" + (f" (default {out})" if out else ""))
    p.add_argument("--resume", nargs="?", const=True, metavar="RUN",
                   help="continue the interrupted run in --out (or in RUN: its folder or a file "
                        "in it) exactly where it stopped; its settings win, --epochs may grow")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda[:N]; under torchrun each "
                   "process takes the GPU of its local rank")
    p.add_argument("--epochs", type=int, help=f"total epochs (default {d['epochs']})")
    p.add_argument("--batch-size", type=int, help="samples per optimizer step, over all "
                   f"torchrun processes together (default {d['batch_size']})")
    p.add_argument("--lr", type=float, help=f"{lr_help} (default {d['lr']})")
    p.add_argument("--seed", type=int, help=f"order, augmentation and initial weights "
                                            f"(default {d['seed']})")
    p.add_argument("--workers", type=int, default=workers,
                   help=f"data-loading processes (default {workers})")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="mixed precision on CUDA: bf16, or fp16 with loss scaling (default on)")
    p.add_argument("--stop-after", type=int, metavar="EPOCH",
                   help="end this invocation after epoch EPOCH (e.g. a batch job's time limit); "
                        "--resume later continues the run exactly")


def resume_folder(args) -> Optional[Path]:
    """The run folder `--resume` names (None: a fresh run)."""
    if not args.resume:
        return None
    if args.resume is True:
        return Path(args.out)
    run = Path(args.resume)
    return run if run.is_dir() else run.parent


def run_settings(args, defaults: Dict[str, Any], saved: Optional[Dict[str, Any]],
                 keys: Iterable[str] = ()) -> Dict[str, Any]:
    """Settings of a run: `defaults` < the flags given (`defaults`' keys and `keys`, plain
    values so train_state.pt loads with weights_only); a resumed run keeps `saved`, bar
    epochs. Bad numbers are a ValueError naming the flag."""
    names = [k for k in list(defaults) + list(keys) if k not in NOT_SETTINGS]
    given = {k: _plain(v) for k in names if (v := getattr(args, k, None)) is not None}
    cfg = resumed_settings(saved, given) if saved is not None else {**defaults, **given}
    for key, low in (("epochs", 1), ("batch_size", 1)):
        if key in cfg and (not isinstance(cfg[key], int) or cfg[key] < low):
            raise ValueError(f"--{key.replace('_', '-')} must be at least {low}, got {cfg[key]}")
    if "lr" in cfg and not cfg["lr"] > 0:
        raise ValueError(f"--lr must be > 0, got {cfg['lr']}")
    if getattr(args, "workers", 0) < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    if getattr(args, "stop_after", None) is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be at least 1, got {args.stop_after}")
    return cfg


def start_run(args, defaults: Dict[str, Any], keys: Iterable[str] = ()
              ) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """(settings, saved train state or None) of `--out` / `--resume`; a fresh run refuses a
    folder that holds one already."""
    from .fit import check_fresh, read_state

    folder = resume_folder(args)
    state = read_state(folder) if folder is not None else None
    if state is None:
        check_fresh(args.out)
    return run_settings(args, defaults, state["config"] if state else None, keys), state


def _plain(value):
    return str(value) if isinstance(value, Path) else value


def fit_config(cfg: Dict[str, Any], args, **kw):
    """The `fit` loop's configuration of a run's settings and the shared flags."""
    from .fit import FitConfig

    return FitConfig(cfg["epochs"], cfg["batch_size"], cfg["seed"], amp=args.amp,
                     workers=args.workers, stop_after=args.stop_after, **kw)


def fit_adamw_cosine(task, cfg: Dict[str, Any], args, device, state):
    """`fit` with AdamW (cfg lr, weight_decay) and a per-step cosine decay to zero: the
    recipe of the eye-state, gaze-direction and gaze-coding trainers."""
    import torch

    from .fit import cosine_per_step, fit

    optimizer = torch.optim.AdamW(task.module.parameters(), lr=cfg["lr"],
                                  weight_decay=cfg["weight_decay"])
    return fit(task, optimizer, fit_config(cfg, args), args.out, device, cfg,
               cosine_per_step(cfg["epochs"]), state)
