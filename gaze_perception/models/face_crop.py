"""What the face-crop models (gaze direction, gaze coding) share: timm backbones, the meta
base of their checkpoints (the project's one format, `models.state_dict`, with a `kind`) and
input tensors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from .state_dict import ModelMeta, model_from_checkpoint, read_checkpoint

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


class CropMeta(ModelMeta):
    """Base of the face-crop models' metas; each has a `kind` (l2cs, itracker, gaze_coding)."""


def load_crop_model(spec: Union[str, Path], kinds: Sequence[str], meta_of: Callable,
                    build: Callable, weights_dir: Optional[Path] = None,
                    device: Union[str, torch.device] = "cpu") -> Tuple[nn.Module, CropMeta]:
    """Model (eval mode, on `device`) and meta of a checkpoint whose kind is one of `kinds`;
    `meta_of(kind)` is the meta class of a kind, `build(meta)` the untrained model."""
    ckpt = read_checkpoint(spec, " or ".join(kinds), weights_dir, kinds)
    model, meta = model_from_checkpoint(ckpt, meta_of(ckpt["meta"]["kind"]), build)
    return model.to(device), meta


def to_input(crops: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 RGB crops (N, H, W, 3) -> normalised float tensor (N, 3, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
    return normalize(x, mean, std)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Float images in [0, 1] (N, 3, H, W) -> (x - mean) / std per channel."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s
