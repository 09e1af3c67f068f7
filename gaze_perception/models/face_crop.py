"""What the face-crop models (gaze direction, gaze coding) share: timm backbones, checkpoints
and input tensors.

A checkpoint is a plain dict ``{"state_dict": ..., "meta": {"kind": ..., ...}, ...}`` that loads
with ``torch.load(weights_only=True)``; `meta` says how to rebuild and feed the model, so run
time cannot drift from training, and `kind` keeps one model line from loading another's file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..core import weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: timm has no ShuffleNet; these come from torchvision
TORCHVISION_BACKBONES = ("shufflenet_v2_x1_0",)


def create_backbone(name: str) -> Tuple[nn.Module, int]:
    """Untrained feature extractor `name` (timm model name or shufflenet_v2_x1_0) returning
    pooled (N, C) features, and C. Weights always come from our checkpoints."""
    if name in TORCHVISION_BACKBONES:
        import torchvision

        net = getattr(torchvision.models, name)(weights=None)
        features = net.fc.in_features
        net.fc = nn.Identity()
        return net, features
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown backbone '{name}': neither a timm model name nor one of "
                         f"{', '.join(TORCHVISION_BACKBONES)}")
    net = timm.create_model(name, pretrained=False, num_classes=0)
    # models with a conv head after pooling (GhostNet, MobileNetV3) output its width
    return net, int(getattr(net, "head_hidden_size", None) or net.num_features)


@dataclass
class CropMeta:
    """Base of the model descriptions stored in checkpoints (plain values only)."""

    def to_dict(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict) -> "CropMeta":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def read_checkpoint(spec: Union[str, Path], kinds: Sequence[str],
                    weights_dir: Optional[Path] = None) -> Dict:
    """The checkpoint dict of a file path or a manifest name (then sha256-checked), whose
    meta kind is one of `kinds`."""
    path = weights.locate(spec, weights_dir, f"{' or '.join(kinds)} weights")
    ckpt = weights.load_state_dict(path)
    meta = ckpt.get("meta")
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if "state_dict" not in ckpt or kind not in kinds:
        raise weights.WeightsError(f"'{path}' is not a {' or '.join(kinds)} checkpoint (it needs "
                                   f"'state_dict' and 'meta' with kind {'|'.join(kinds)}; "
                                   f"found kind {kind!r})")
    ckpt["path"] = str(path)
    return ckpt


def load_weights(model: nn.Module, ckpt: Dict) -> nn.Module:
    """Load a checkpoint's weights strictly into the model its meta describes (eval mode)."""
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise weights.WeightsError(f"checkpoint '{ckpt.get('path', '?')}' does not fit its "
                                   f"declared architecture: {exc}") from exc
    return model.eval()


def to_input(crops: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 RGB crops (N, H, W, 3) -> normalised float tensor (N, 3, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
    return normalize(x, mean, std)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Float images in [0, 1] (N, 3, H, W) -> (x - mean) / std per channel."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s
