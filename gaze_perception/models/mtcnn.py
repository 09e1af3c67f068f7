"""MTCNN's three cascade networks (Zhang et al., 2016), laid out so that the facenet-pytorch
state dicts (`weights/mtcnn/{pnet,rnet,onet}.pt`) load with `strict=True`.

Layer names, shapes and the (N, W, H, C) flatten order of R-Net and O-Net follow those files,
which were converted from the original Caffe models; changing either breaks the weights.

Every `forward` returns the box regression first and the face/non-face output last. The
class output is softmax probabilities (column 1 = face) unless `logits=True`, which returns the
raw scores a cross-entropy loss wants when training.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn


def _classify(x: Tensor, logits: bool) -> Tensor:
    return x if logits else torch.softmax(x, dim=1)


def _flatten_whc(x: Tensor) -> Tensor:
    """Flatten in (W, H, C) order: the dense layers were trained on that layout."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor, logits: bool = False) -> Tuple[Tensor, Tensor]:
        """(N,3,H,W) normalised image -> (reg (N,4,h,w), class (N,2,h,w))."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), _classify(self.conv4_1(x), logits)


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor, logits: bool = False) -> Tuple[Tensor, Tensor]:
        """(N,3,24,24) normalised crops -> (reg (N,4), class (N,2))."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_whc(x)))
        return self.dense5_2(x), _classify(self.dense5_1(x), logits)


class ONet(nn.Module):
    """Output net on 48x48 crops; also regresses the five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor, logits: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
        """(N,3,48,48) normalised crops -> (reg (N,4), landmarks (N,10), class (N,2)).

        Landmarks are fractions of the crop: x of the five points, then y of the five points.
        """
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_whc(x)))
        return self.dense6_2(x), self.dense6_3(x), _classify(self.dense6_1(x), logits)
