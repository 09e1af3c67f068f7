"""Strict state-dict loading with messages that name the offending keys, and atomic saving.

PyTorch's own strict load reports problems as one long RuntimeError; users who picked the wrong
checkpoint need to read which keys are missing, unexpected or of the wrong shape, and where from.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..core.weights import WeightsError


def load_strict(module, state_dict: Mapping, source: str) -> None:
    """Load `state_dict` into `module`, refusing any missing, unexpected or mis-shaped key."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mis_shaped = [f"{k} {tuple(state_dict[k].shape)} != {tuple(own[k].shape)}"
                  for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if mis_shaped:
        problems.append(f"wrong shapes (file != model): {'; '.join(mis_shaped)}")
    if problems:
        raise WeightsError(f"{source} does not fit {type(module).__name__}: "
                           + " | ".join(problems))
    module.load_state_dict(state_dict, strict=True)


def save_atomic(obj, path: Path) -> None:
    """torch.save under a temporary name beside `path` (its folder created), then rename: a
    crash never leaves a torn file."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, model, meta, **extra) -> None:
    """Write {"state_dict" (CPU tensors), "meta": meta.to_dict(), **extra} atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_atomic({"state_dict": state, "meta": meta.to_dict(), **extra}, path)
