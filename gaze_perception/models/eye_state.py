"""Eye-state classifiers and their checkpoints, shared by the backend, training and evaluation.

One door, `create_eye_model(arch, num_classes, in_chans)`: the project's own small CNN by name
(`eyenet`, fast on 24..64 px crops) or any timm model name. Checkpoints are the project's one
format (`models.state_dict`), `EyeModelMeta` their meta (no kind: the shipped files have none).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..core.eye_crops import DEFAULT_SCALE
from .state_dict import ModelMeta, model_from_checkpoint, read_checkpoint

OPEN, CLOSED = "open", "closed"


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class EyeNet(nn.Module):
    """Small VGG-style CNN: three stages at full, 1/2 and 1/4 resolution, global average pooling.

    About 0.14 M parameters; size-agnostic, so one architecture serves 24 to 64 px crops.
    """

    def __init__(self, num_classes: int = 2, in_chans: int = 1, width: int = 32,
                 drop: float = 0.2) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(in_chans, w), _conv(w, w), nn.MaxPool2d(2),
            _conv(w, 2 * w), _conv(2 * w, 2 * w), nn.MaxPool2d(2),
            _conv(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(4 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


#: the project's own architectures; any other name goes to timm
OWN_MODELS = {"eyenet": EyeNet}


def create_eye_model(arch: str, num_classes: int = 2, in_chans: int = 1) -> nn.Module:
    """Untrained classifier `arch` (own name or timm name) with `num_classes` outputs."""
    if arch in OWN_MODELS:
        return OWN_MODELS[arch](num_classes=num_classes, in_chans=in_chans)
    import timm

    if not timm.is_model(arch):
        raise ValueError(f"unknown eye-state architecture '{arch}': neither one of "
                         f"{sorted(OWN_MODELS)} nor a timm model name")
    return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans)


@dataclass
class EyeModelMeta(ModelMeta):
    """How to rebuild and feed a checkpoint: architecture, class order, input format, crop scale.

    `classes[0]` and `classes[1]` are always open and closed; an optional third class is an
    explicit "cannot tell" label (e.g. occluded) that run time reports as unknown.
    """

    arch: str = "eyenet"
    classes: List[str] = field(default_factory=lambda: [OPEN, CLOSED])
    in_chans: int = 1
    input_size: int = 24
    mean: List[float] = field(default_factory=lambda: [0.5])
    std: List[float] = field(default_factory=lambda: [0.25])
    crop_scale: float = DEFAULT_SCALE

    def __post_init__(self) -> None:
        self.classes = [str(c) for c in self.classes]
        if self.classes[:2] != [OPEN, CLOSED] or len(self.classes) > 3:
            raise ValueError(f"classes must be [open, closed] plus at most one more, "
                             f"got {self.classes}")
        if self.in_chans not in (1, 3) or len(self.mean) != self.in_chans \
                or len(self.std) != self.in_chans:
            raise ValueError(f"in_chans must be 1 or 3 with one mean/std per channel, got "
                             f"in_chans={self.in_chans}, mean={self.mean}, std={self.std}")


def build_model(meta: EyeModelMeta) -> nn.Module:
    return create_eye_model(meta.arch, len(meta.classes), meta.in_chans)


def load_eye_model(spec: Union[str, Path], weights_dir: Optional[Path] = None,
                   device: Union[str, torch.device] = "cpu") -> Tuple[nn.Module, EyeModelMeta]:
    """Model and meta from a checkpoint file or manifest name, on `device`, in eval mode."""
    model, meta = model_from_checkpoint(read_checkpoint(spec, "eye-state", weights_dir),
                                        EyeModelMeta, build_model)
    return model.to(device), meta


def to_nchw(crops: np.ndarray) -> torch.Tensor:
    """uint8 crops (N, H, W) or (N, H, W, C) -> uint8 tensor (N, C, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(crops))
    return (x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)).contiguous()


def to_tensor(crops: np.ndarray, meta: EyeModelMeta) -> torch.Tensor:
    """uint8 crops (N, H, W) or (N, H, W, C) -> normalised float tensor (N, C, H, W)."""
    return normalize(to_nchw(crops).float() / 255.0, meta)


def normalize(x: torch.Tensor, meta: EyeModelMeta) -> torch.Tensor:
    mean = torch.tensor(meta.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(meta.std, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std
