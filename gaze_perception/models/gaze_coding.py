"""The infant gaze-coding classifier: a timm backbone over one face crop -> away, left, right.

iCatcher+ feeds five frames and the face boxes to its network; here each frame is classified
alone and time is handled by `core.gaze_coding.Smoother`, which keeps the model small enough
for a CPU and lets the smoothing be chosen after training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch
from torch import nn

from ..core.gaze_coding import GAZE_CLASSES
from .face_crop import IMAGENET_MEAN, IMAGENET_STD, CropMeta, load_crop_model

#: iCatcher+'s backbones (ResNet-18, RegNetY-16GF) and a mid-size RegNet; any timm name works
BACKBONES = ("resnet18", "regnety_016", "regnety_160")


@dataclass
class CodingMeta(CropMeta):
    kind: str = "gaze_coding"
    arch: str = "resnet18"
    classes: List[str] = field(default_factory=lambda: list(GAZE_CLASSES))
    input_size: int = 100    # iCatcher+ crops faces to 100 x 100
    crop_scale: float = 1.0  # crop side / max(face box side)
    mean: List[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: List[float] = field(default_factory=lambda: list(IMAGENET_STD))

    def __post_init__(self) -> None:
        if list(self.classes) != list(GAZE_CLASSES):
            raise ValueError(f"gaze-coding classes must be {list(GAZE_CLASSES)}, got "
                             f"{self.classes}")


def build_model(meta: CodingMeta) -> nn.Module:
    import timm

    if not timm.is_model(meta.arch):
        raise ValueError(f"unknown architecture '{meta.arch}': not a timm model name "
                         f"(e.g. {', '.join(BACKBONES)})")
    return timm.create_model(meta.arch, pretrained=False, num_classes=len(GAZE_CLASSES))


def load_coding_model(spec: Union[str, Path], weights_dir: Optional[Path] = None,
                      device: Union[str, torch.device] = "cpu") -> Tuple[nn.Module, CodingMeta]:
    """Model (eval mode, on `device`) and meta of a gaze-coding checkpoint."""
    return load_crop_model(spec, ["gaze_coding"], lambda kind: CodingMeta, build_model,
                           weights_dir, device)
