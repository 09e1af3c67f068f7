"""Strict state-dict loading with messages that name the offending keys, atomic saving, and
the one checkpoint-with-metadata format of the project.

PyTorch's own strict load reports problems as one long RuntimeError; users who picked the wrong
checkpoint need to read which keys are missing, unexpected or of the wrong shape, and where from.

A checkpoint (eye state, gaze direction, gaze coding) is a plain dict ``{"state_dict": ...,
"meta": {...}, ...}`` that loads with ``torch.load(weights_only=True)``; `meta` (a `ModelMeta`)
says how to rebuild and feed the model, so run time cannot drift from training, and its
`kind`, where the line has one, keeps one model line from loading another's file.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

from ..core import weights
from ..core.weights import WeightsError

M = TypeVar("M", bound="ModelMeta")


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


@dataclass
class ModelMeta:
    """Base of the model descriptions stored in checkpoints (plain values only)."""

    def to_dict(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_dict(cls: Type[M], d: Dict) -> M:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def read_checkpoint(spec: Union[str, Path], what: str, weights_dir: Optional[Path] = None,
                    kinds: Optional[Sequence[str]] = None) -> Dict:
    """The checkpoint dict of a file path or a manifest name (then sha256-checked), with its
    "path"; `kinds`: the meta's kind must be one of these."""
    path = weights.locate(spec, weights_dir, f"{what} weights")
    ckpt = weights.load_state_dict(path)
    meta = ckpt.get("meta")
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if "state_dict" not in ckpt or not isinstance(meta, dict) or (kinds and kind not in kinds):
        need = f" with kind {'|'.join(kinds)}; found kind {kind!r}" if kinds else ""
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise WeightsError(f"'{path}' is not {article} {what} checkpoint (it needs "
                           f"'state_dict' and 'meta' entries{need})")
    ckpt["path"] = str(path)
    return ckpt


def model_from_checkpoint(ckpt: Dict, meta_cls: Type[M],
                          build: Callable[[M], object]) -> Tuple[object, M]:
    """Rebuild the model a checkpoint's meta describes and load its weights strictly (eval
    mode, CPU); a meta or weights that do not fit are a WeightsError."""
    try:
        meta = meta_cls.from_dict(ckpt["meta"])
        model = build(meta)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise WeightsError(f"checkpoint '{ckpt.get('path', '?')}' does not fit its declared "
                           f"architecture: {exc}") from exc
    return model.eval(), meta
