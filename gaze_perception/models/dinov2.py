"""DINOv2 as a timm VisionTransformer that loads the official torch-hub release files.

Gaze-LLE was trained on the hub model's patch features, so two hub behaviours are kept exactly:
the position embedding (37x37 tokens for 518 px) is resized *at run time* by bicubic
interpolation with a scale factor of (grid + 0.1) / 37 and no antialias, and register tokens
(when present) are inserted after the class token *after* the position embedding is added.
timm's own DINOv2 loader resamples at load time instead, which changes features by up to 0.12.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Union

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from ..core.weights import load_state_dict
from .state_dict import load_strict

PATCH = 14
HUB_IMG_SIZE = 518  # 37 x 37 patches: the grid the release files' position embedding has
INTERPOLATE_OFFSET = 0.1  # dinov2 hub `interpolate_offset`

CONFIGS = {
    "vits14": dict(embed_dim=384, depth=12, num_heads=6),
    "vitb14": dict(embed_dim=768, depth=12, num_heads=12),
    "vitl14": dict(embed_dim=1024, depth=24, num_heads=16),
}
#: keys of the hub release that only pre-training uses (iBOT masking)
HUB_ONLY_KEYS = ("mask_token",)

StateDictSource = Union[str, Path, Mapping[str, torch.Tensor], None]


class DinoV2(VisionTransformer):
    """timm ViT with LayerScale, hub key names and the hub's run-time position interpolation."""

    def __init__(self, embed_dim: int, depth: int, num_heads: int, registers: int = 0,
                 weight_init: str = ""):
        super().__init__(img_size=HUB_IMG_SIZE, patch_size=PATCH, embed_dim=embed_dim,
                         depth=depth, num_heads=num_heads, mlp_ratio=4.0, init_values=1.0,
                         num_classes=0, dynamic_img_size=True, weight_init=weight_init)
        # Hub layout: registers carry no position embedding, so keep them out of timm's
        # `reg_token` (whose position table would need extra rows) under the hub's own name.
        self.register_tokens = (nn.Parameter(torch.zeros(1, registers, embed_dim))
                                if registers else None)
        self.num_prefix_tokens += registers

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        x = torch.cat([self.cls_token.expand(b, -1, -1), x.reshape(b, h * w, c)], dim=1)
        x = x + hub_position_embedding(self.pos_embed, h, w).to(x.dtype)
        if self.register_tokens is not None:
            x = torch.cat([x[:, :1], self.register_tokens.expand(b, -1, -1), x[:, 1:]], dim=1)
        return self.pos_drop(x)

    def forward_patch_features(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised patch tokens (the hub's `x_norm_patchtokens`) as (B, C, H/14, W/14)."""
        b, _, height, width = images.shape
        tokens = self.forward_features(images)[:, self.num_prefix_tokens:]
        return tokens.transpose(1, 2).reshape(b, self.embed_dim, height // PATCH, width // PATCH)


def hub_position_embedding(pos_embed: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The hub's `interpolate_pos_encoding`: class entry kept, patch grid resized to (h, w)."""
    # ints, also under ONNX tracing (whose shapes are tensors): the exported backbone's input
    # size is fixed, so the resized embedding is computed for that one grid
    grid, h, w = int(round((int(pos_embed.shape[1]) - 1) ** 0.5)), int(h), int(w)
    if (h, w) == (grid, grid):
        return pos_embed
    pos = pos_embed.float()
    patch = pos[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
    scale = ((h + INTERPOLATE_OFFSET) / grid, (w + INTERPOLATE_OFFSET) / grid)
    patch = F.interpolate(patch, scale_factor=scale, mode="bicubic", antialias=False)
    if patch.shape[-2:] != (h, w):
        raise ValueError(f"position embedding resized to {tuple(patch.shape[-2:])}, not {(h, w)}")
    return torch.cat([pos[:, :1], patch.flatten(2).transpose(1, 2)], dim=1).to(pos_embed.dtype)


def load_hub_state_dict(model: DinoV2, state_dict: Mapping[str, torch.Tensor],
                        source: str = "DINOv2 state dict") -> DinoV2:
    """Load a torch-hub release state dict (`dinov2_vit*14[_reg4]_pretrain.pth`) strictly."""
    load_strict(model, {k: v for k, v in state_dict.items() if k not in HUB_ONLY_KEYS}, source)
    return model


def create_dinov2(variant: str = "vitb14", weights: StateDictSource = None, *,
                  depth: Optional[int] = None, registers: int = 0) -> DinoV2:
    """Build DINOv2 `variant` (vits14|vitb14|vitl14), optionally from hub-format `weights`
    (a path or a state dict); `depth` overrides the block count (small test models)."""
    if variant not in CONFIGS:
        raise ValueError(f"unknown DINOv2 variant '{variant}'; known: {', '.join(CONFIGS)}")
    cfg = dict(CONFIGS[variant])
    if depth is not None:
        cfg["depth"] = depth
    # Random init of a ViT-L takes seconds; skip it when weights overwrite everything anyway.
    model = DinoV2(**cfg, registers=registers, weight_init="skip" if weights is not None else "")
    if weights is not None:
        if isinstance(weights, Mapping):
            load_hub_state_dict(model, weights)
        else:
            state = load_state_dict(Path(weights))
            load_hub_state_dict(model, state, source=f"weights file '{weights}'")
    return model.eval()
