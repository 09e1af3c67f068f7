"""RetinaFace with a MobileNet-0.25 backbone (Deng et al., 2019), laid out so that the published
`mobilenet0.25_Final.pth` of biubug6/Face-Detector-1MB-with-landmark loads with `strict=True`.

Module names (`body.stage1..3`, `fpn`, `ssh1..3`, `ClassHead`/`BboxHead`/`LandmarkHead`) and the
index layout of every `nn.Sequential` are the file's keys, so they must not change. That
release trains with plain ReLU after every batch norm (its Pytorch_Retinaface parent used
LeakyReLU 0.1); the anchors are its `cfg_mnet`.
"""
from __future__ import annotations

import math
from typing import List, Mapping, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: anchor sides in input pixels per pyramid level, and the levels' strides (`cfg_mnet`)
MIN_SIZES: Tuple[Tuple[int, ...], ...] = ((10, 20), (32, 64), (128, 256))
STEPS: Tuple[int, ...] = (8, 16, 32)
#: SSD-style box encoding variances (centre, size)
VARIANCES = (0.1, 0.2)
#: per-channel mean subtracted from BGR float pixels, as the reference's detect.py does
BGR_MEAN = (104.0, 117.0, 123.0)


def _conv_bn(inp: int, out: int, stride: int = 1, kernel: int = 3, relu: bool = True
             ) -> nn.Sequential:
    layers = [nn.Conv2d(inp, out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def _conv_dw(inp: int, out: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
        nn.ReLU(inplace=True),
        nn.Conv2d(inp, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True))


class MobileNetV1Body(nn.Module):
    """MobileNet-0.25 trunk; returns the stride 8, 16 and 32 feature maps (64, 128, 256 ch)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(_conv_bn(3, 8, 2), _conv_dw(8, 16, 1), _conv_dw(16, 32, 2),
                                    _conv_dw(32, 32, 1), _conv_dw(32, 64, 2),
                                    _conv_dw(64, 64, 1))
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2),
                                    *(_conv_dw(128, 128, 1) for _ in range(5)))
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: Tensor) -> List[Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class FPN(nn.Module):
    """Top-down feature pyramid: 1x1 lateral convs, nearest upsampling, 3x3 merge convs."""

    def __init__(self, in_channels: Tuple[int, int, int], out: int) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out, kernel=1)
        self.output2 = _conv_bn(in_channels[1], out, kernel=1)
        self.output3 = _conv_bn(in_channels[2], out, kernel=1)
        self.merge1 = _conv_bn(out, out)
        self.merge2 = _conv_bn(out, out)

    def forward(self, feats: List[Tensor]) -> List[Tensor]:
        p1, p2, p3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p2 = self.merge2(p2 + F.interpolate(p3, size=p2.shape[2:], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=p1.shape[2:], mode="nearest"))
        return [p1, p2, p3]


class SSH(nn.Module):
    """Context module: parallel 3x3, stacked 5x5- and 7x7-equivalent branches, concatenated."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(inp, out // 2, relu=False)
        self.conv5X5_1 = _conv_bn(inp, out // 4)
        self.conv5X5_2 = _conv_bn(out // 4, out // 4, relu=False)
        self.conv7X7_2 = _conv_bn(out // 4, out // 4)
        self.conv7x7_3 = _conv_bn(out // 4, out // 4, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        mid = self.conv5X5_1(x)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(mid),
                                 self.conv7x7_3(self.conv7X7_2(mid))], dim=1))


class _Head(nn.Module):
    """1x1 conv predicting `per_anchor` values for each of `anchors` anchors per cell."""

    def __init__(self, inp: int, anchors: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(inp, anchors * per_anchor, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, H*W*anchors, per_anchor), anchors fastest, as the priors are."""
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """Raw head outputs for every prior: box offsets (N,P,4), class logits (N,P,2) with column
    1 = face, landmark offsets (N,P,10) as x,y pairs. Input: BGR minus `BGR_MEAN`, NCHW."""

    def __init__(self) -> None:
        super().__init__()
        anchors = len(MIN_SIZES[0])
        self.body = MobileNetV1Body()
        self.fpn = FPN((64, 128, 256), 64)
        self.ssh1, self.ssh2, self.ssh3 = SSH(64, 64), SSH(64, 64), SSH(64, 64)
        self.ClassHead = nn.ModuleList(_Head(64, anchors, 2) for _ in STEPS)
        self.BboxHead = nn.ModuleList(_Head(64, anchors, 4) for _ in STEPS)
        self.LandmarkHead = nn.ModuleList(_Head(64, anchors, 10) for _ in STEPS)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        p = self.fpn(self.body(x))
        feats = [self.ssh1(p[0]), self.ssh2(p[1]), self.ssh3(p[2])]
        return (torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1),
                torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1),
                torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1))


def strip_module_prefix(state: Mapping[str, Tensor]) -> dict:
    """Keys without the `module.` that nn.DataParallel training puts in front of every key
    (the Pytorch_Retinaface releases have it; the 1MB release does not)."""
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def priors(height: int, width: int) -> Tensor:
    """Anchors (P, 4) as (cx, cy, w, h) in pixels of a height x width input, ordered as the
    heads' outputs: level, row, column, anchor size."""
    out = []
    for sizes, step in zip(MIN_SIZES, STEPS):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = torch.meshgrid((torch.arange(rows) + 0.5) * step,
                                (torch.arange(cols) + 0.5) * step, indexing="ij")
        for_size = [torch.stack([cx, cy, torch.full_like(cx, s), torch.full_like(cx, s)], -1)
                    for s in sizes]
        out.append(torch.stack(for_size, dim=2).reshape(-1, 4))
    return torch.cat(out)


def decode_boxes(loc: Tensor, anchors: Tensor) -> Tensor:
    """(..., P, 4) offsets -> (..., P, 4) boxes x1, y1, x2, y2 in the anchors' pixels."""
    centre = anchors[:, :2] + loc[..., :2] * VARIANCES[0] * anchors[:, 2:]
    size = anchors[:, 2:] * torch.exp(loc[..., 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


def decode_landmarks(pre: Tensor, anchors: Tensor) -> Tensor:
    """(..., P, 10) offsets -> (..., P, 5, 2) points in the anchors' pixels."""
    pts = pre.reshape(*pre.shape[:-1], 5, 2)
    return anchors[:, None, :2] + pts * VARIANCES[0] * anchors[:, None, 2:]
