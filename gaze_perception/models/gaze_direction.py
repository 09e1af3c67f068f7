"""Gaze-direction models on face crops, shared by the backends, training and the benchmark.

* `L2CSNet` (L2CS-Net, Abdelrahman et al. 2022): a backbone and two independent heads that
  classify yaw and pitch into angle bins; the angle is the softmax-weighted mean of the bin
  centres, and training adds a regression loss on that mean (`l2cs_loss`).
* `ITrackerNet` (iTracker, Krafka et al. 2016): face, both eyes and a 25x25 face grid -> the
  gaze point (x, y) in cm on the screen plane, relative to the camera.

Angles inside the models are degrees in the convention of `core.gaze_direction`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..core.gaze_direction import GRID
from .face_crop import IMAGENET_MEAN, IMAGENET_STD, CropMeta, create_backbone, load_crop_model

#: backbones the benchmark compares; any timm model name works too
BACKBONES = ("resnet18", "resnet50", "ghostnet_100", "mobilenetv3_large_100",
             "shufflenet_v2_x1_0")


@dataclass
class AngleBins:
    """`count` bins of `width` degrees, symmetric about 0: [-count*width/2, count*width/2)."""

    count: int = 90
    width: float = 4.0

    @property
    def limit(self) -> float:
        return self.count * self.width / 2.0

    def centers(self, device=None) -> torch.Tensor:
        return (torch.arange(self.count, device=device, dtype=torch.float32) + 0.5) \
            * self.width - self.limit

    def index(self, degrees: torch.Tensor) -> torch.Tensor:
        """Bin of each angle (angles outside the range fall into the end bins)."""
        idx = torch.floor((degrees + self.limit) / self.width).long()
        return idx.clamp(0, self.count - 1)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Expected angle in degrees: softmax over the bins times the bin centres.

        L2CS-Net uses the bins' left edges here, a half-bin bias its regression loss must
        absorb; centres make a confident bin decode to the middle of its range.
        """
        return torch.softmax(logits.float(), dim=-1) @ self.centers(logits.device)


class L2CSNet(nn.Module):
    """Backbone, global pooling, and two heads over the bins. forward -> (yaw, pitch) logits.

    Unlike L2CS-Net's code (which returns yaw first but names it pitch), the order and the
    names agree here.
    """

    def __init__(self, backbone: str = "resnet50", bins: int = 90) -> None:
        super().__init__()
        self.backbone, features = create_backbone(backbone)
        self.fc_yaw = nn.Linear(features, bins)
        self.fc_pitch = nn.Linear(features, bins)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        f = self.backbone(x)
        return self.fc_yaw(f), self.fc_pitch(f)


def l2cs_loss(yaw_logits: torch.Tensor, pitch_logits: torch.Tensor, target_deg: torch.Tensor,
              bins: AngleBins, alpha: float = 1.0) -> torch.Tensor:
    """Per angle: cross-entropy over the bins + alpha * MSE of the decoded angle (degrees);
    summed over yaw and pitch. `target_deg` is (N, 2): yaw, pitch."""
    total = yaw_logits.new_zeros(())
    for logits, target in ((yaw_logits, target_deg[:, 0]), (pitch_logits, target_deg[:, 1])):
        total = total + F.cross_entropy(logits.float(), bins.index(target)) \
            + alpha * F.mse_loss(bins.decode(logits), target)
    return total


def _alexnet_tower() -> nn.Sequential:
    """iTracker's conv tower (AlexNet-like): 11/4 96 -> 5 256 (2 groups) -> 3 384 -> 1 64."""
    lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # noqa: E731
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2), lrn(),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        lrn(), nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 64, 1), nn.ReLU(inplace=True), nn.Flatten())


def _mlp(*sizes: int) -> nn.Sequential:
    layers: List[nn.Module] = []
    for cin, cout in zip(sizes, sizes[1:]):
        layers += [nn.Linear(cin, cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class ITrackerNet(nn.Module):
    """forward(face, left_eye, right_eye, grid) -> (N, 2) gaze point in cm.

    The two eyes share one tower (as in iTracker); the face has its own. Crops are square,
    `face_size` and `eye_size` pixels (224 in the paper; at least 48).
    """

    MIN_SIZE = 48

    def __init__(self, face_size: int = 224, eye_size: int = 224, grid: int = GRID) -> None:
        super().__init__()
        if min(face_size, eye_size) < self.MIN_SIZE:
            raise ValueError(f"iTracker crops must be at least {self.MIN_SIZE} px, got face "
                             f"{face_size}, eyes {eye_size}")
        self.face_tower, self.eye_tower = _alexnet_tower(), _alexnet_tower()
        with torch.no_grad():
            face_f = self.face_tower(torch.zeros(1, 3, face_size, face_size)).shape[1]
            eye_f = self.eye_tower(torch.zeros(1, 3, eye_size, eye_size)).shape[1]
        self.eyes_fc = _mlp(2 * eye_f, 128)
        self.face_fc = _mlp(face_f, 128, 64)
        self.grid_fc = _mlp(grid * grid, 256, 128)
        self.head = nn.Sequential(_mlp(128 + 64 + 128, 128), nn.Linear(128, 2))

    def forward(self, face, left_eye, right_eye, grid) -> torch.Tensor:
        eyes = self.eyes_fc(torch.cat([self.eye_tower(left_eye), self.eye_tower(right_eye)], 1))
        return self.head(torch.cat([eyes, self.face_fc(self.face_tower(face)),
                                    self.grid_fc(grid.flatten(1).float())], 1))


@dataclass
class L2CSMeta(CropMeta):
    kind: str = "l2cs"
    backbone: str = "resnet50"
    bins: int = 90
    bin_width: float = 4.0
    input_size: int = 224
    crop_scale: float = 1.0  # run time: crop side / max(face box side)
    mean: List[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: List[float] = field(default_factory=lambda: list(IMAGENET_STD))

    @property
    def angle_bins(self) -> AngleBins:
        return AngleBins(int(self.bins), float(self.bin_width))


@dataclass
class ITrackerMeta(CropMeta):
    kind: str = "itracker"
    face_size: int = 224
    eye_size: int = 224
    crop_scale: float = 1.0
    mean: List[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: List[float] = field(default_factory=lambda: list(IMAGENET_STD))


DirectionMeta = Union[L2CSMeta, ITrackerMeta]


def build_model(meta: DirectionMeta) -> nn.Module:
    if isinstance(meta, L2CSMeta):
        return L2CSNet(meta.backbone, meta.bins)
    return ITrackerNet(meta.face_size, meta.eye_size)


def load_direction_model(spec: Union[str, Path], kind: str, weights_dir: Optional[Path] = None,
                         device: Union[str, torch.device] = "cpu"
                         ) -> Tuple[nn.Module, DirectionMeta]:
    """Model (eval mode, on `device`) and meta of a `kind` (l2cs | itracker) checkpoint."""
    return load_crop_model(spec, [kind], {"l2cs": L2CSMeta, "itracker": ITrackerMeta}.get,
                           build_model, weights_dir, device)
