"""Gaze-LLE (Ryan et al., CVPR 2025): a frozen DINOv2 encoder and a small decoder prompted
by each person's head box. Used by the inference backend and by training alike.

`GazeLLEDecoder.state_dict()` is the published checkpoint format
(`gazelle_dinov2_vit{b,l}14[_inout].pt` hold only these keys), so official decoders and ours
are interchangeable. The details that decide parity with the official code (Python's
half-to-even `round` for the head map, the end-exclusive fill, preprocessing on the float
tensor) are kept on purpose; tests compare against a fixture made by the official code.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from ..core.weights import WeightsError, load_state_dict
from .dinov2 import PATCH, DinoV2, StateDictSource, create_dinov2
from .state_dict import load_strict

IN_SIZE = 448
OUT_SIZE = 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: variant -> (DINOv2 config, block-count override). The depth-2 ViT-S is the parity
#: fixture's tiny model, for tests only.
VARIANTS = {
    "vitb14": ("vitb14", None),
    "vitl14": ("vitl14", None),
    "vits14_depth2": ("vits14", 2),
}

Box = Optional[Tuple[float, float, float, float]]  # normalised (xmin, ymin, xmax, ymax)


def preprocess(images: Sequence[np.ndarray], device="cpu", size: int = IN_SIZE) -> torch.Tensor:
    """RGB uint8 HxWx3 images -> (B, 3, size, size), the official order: to [0, 1], ImageNet
    normalisation, then a bilinear antialiased resize of the float tensor (resizing the uint8
    image first changes inputs by up to 0.0175)."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(3, 1, 1)
    out = []
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)
        x = x.float() / 255.0
        x = ((x - mean) / std).unsqueeze(0)
        out.append(F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=True))
    return torch.cat(out)


def head_maps(boxes: Sequence[Box], grid: int) -> torch.Tensor:
    """(N, grid, grid) binary head prompts: coordinates x grid through Python's `round`
    (half to even), filled end-exclusive; `None` gives an empty map (no prompt)."""
    maps = torch.zeros(len(boxes), grid, grid)
    for i, box in enumerate(boxes):
        if box is not None:
            x0, y0, x1, y1 = (round(v * grid) for v in box)
            maps[i, y0:y1, x0:x1] = 1.0
    return maps


def positional_encoding_2d(dim: int, height: int, width: int) -> torch.Tensor:
    """(dim, height, width) fixed sin/cos encoding: first half of the channels encodes x,
    second half y, alternating sin and cos (the decoder's `pos_embed` buffer)."""
    if dim % 4:
        raise ValueError(f"2D sin/cos encoding needs a dimension divisible by 4, got {dim}")
    half = dim // 2
    freq = torch.exp(torch.arange(0.0, half, 2) * -(math.log(10000.0) / half))  # (half/2,)
    wx = torch.arange(0.0, width)[:, None] * freq  # (width, half/2)
    wy = torch.arange(0.0, height)[:, None] * freq
    pe = torch.zeros(dim, height, width)
    pe[0:half:2] = torch.sin(wx).T[:, None, :].expand(-1, height, -1)
    pe[1:half:2] = torch.cos(wx).T[:, None, :].expand(-1, height, -1)
    pe[half::2] = torch.sin(wy).T[:, :, None].expand(-1, -1, width)
    pe[half + 1::2] = torch.cos(wy).T[:, :, None].expand(-1, -1, width)
    return pe


class GazeLLEDecoder(nn.Module):
    """Projects backbone features, adds position and head-prompt embeddings, runs three
    transformer blocks over the scene tokens and decodes a 64x64 heatmap (and in/out)."""

    def __init__(self, in_dim: int, inout: bool = False, dim: int = 256, num_layers: int = 3,
                 grid: int = IN_SIZE // PATCH, out_size: int = OUT_SIZE):
        super().__init__()
        self.grid, self.out_size, self.inout = grid, out_size, inout
        #: inference shares the first block's prompt-free work among a frame's heads
        self.share_first_block = True
        self.linear = nn.Conv2d(in_dim, dim, 1)
        self.register_buffer("pos_embed", positional_encoding_2d(dim, grid, grid))
        # The official blocks: torch's LayerNorm (eps 1e-5, not timm's 1e-6), no qkv bias.
        self.transformer = nn.Sequential(*[
            Block(dim=dim, num_heads=8, mlp_ratio=4, drop_path=0.1, norm_layer=nn.LayerNorm)
            for _ in range(num_layers)])
        self.heatmap_head = nn.Sequential(
            nn.ConvTranspose2d(dim, dim, kernel_size=2, stride=2),
            nn.Conv2d(dim, 1, kernel_size=1, bias=False),
            nn.Sigmoid())
        self.head_token = nn.Embedding(1, dim)
        if inout:
            self.inout_head = nn.Sequential(
                nn.Linear(dim, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 1), nn.Sigmoid())
            self.inout_token = nn.Embedding(1, dim)

    @property
    def in_dim(self) -> int:
        return self.linear.in_channels

    def forward(self, features: torch.Tensor, maps: torch.Tensor, people_per_image: Sequence[int]
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """features (B, C, g, g), maps (sum(people), g, g) -> heatmaps (sum(people), 64, 64),
        in/out (sum(people),) or None. Image features are projected once and shared by its heads;
        work per head is kept in token layout (no per-head transposes)."""
        counts = torch.as_tensor(list(people_per_image), dtype=torch.long,
                                 device=features.device)
        return self.forward_heads(features, maps, image_of_heads(counts), counts)

    def forward_heads(self, features: torch.Tensor, maps: torch.Tensor, image: torch.Tensor,
                      counts: Optional[torch.Tensor] = None
                      ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """`forward` with each head's image index `image` (P,), heads grouped by image. With
        the `counts` of heads per image the first block is shared among an image's heads
        (inference); without them (the ONNX graph, whose shapes cannot depend on the boxes)
        every head runs it in full: the same function within float rounding."""
        x = self.linear(features) + self.pos_embed
        base = x.flatten(2).transpose(1, 2)  # (B, g*g, dim): the image's tokens, no prompt yet
        prompt = maps.to(base).flatten(1)  # (P, g*g): 1 under the head box
        if self.inout:  # a leading in/out token, never prompted
            base = torch.cat([self.inout_token.weight.expand(base.shape[0], 1, -1), base], dim=1)
            prompt = F.pad(prompt, (1, 0))
        tokens = base.index_select(0, image).addcmul(  # (P, tokens, dim)
            prompt[:, :, None], self.head_token.weight[0])
        blocks = list(self.transformer)
        if self.share_first_block and not self.training and counts is not None and len(tokens):
            tokens = self._first_block_shared(blocks.pop(0), base, tokens, prompt, counts)
        for block in blocks:
            tokens = block(tokens)
        inout = None
        if self.inout:
            inout = self.inout_head(tokens[:, 0]).squeeze(-1)
            tokens = tokens[:, 1:]
        heat = self._heatmaps(tokens)
        if heat.shape[-1] != self.out_size:
            heat = F.interpolate(heat[:, None], size=(self.out_size, self.out_size),
                                 mode="bilinear", align_corners=False, antialias=True)[:, 0]
        return heat, inout

    def _first_block_shared(self, block: Block, base: torch.Tensor, tokens: torch.Tensor,
                            prompt: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The first block for every head, sharing what its heads have in common (inference).

        A head's prompt changes only the tokens under its head box, so before the first
        attention all other tokens (and their queries, keys and values) are the image's, for
        every head. The image's own attention is computed once (softmax numerator and
        denominator, flash-attention style); each head then swaps in its few prompted key
        columns (subtract the image's, add its own) and attends fully only from its prompted
        rows. Same function as running the block per head (merged in fp32, ~1e-7): the first
        attention of a frame costs one head's plus a little per head, instead of one per head
        (a fifth of a head's decoder work; the MLPs stay per head)."""
        attn = block.attn
        nh, hd = attn.num_heads, attn.head_dim
        n_tok, dim = base.shape[1:]

        def qkv(x):  # (..., n, dim) -> three (..., nh, n, hd) in fp32
            q, k, v = attn.qkv(block.norm1(x.float())).float().unflatten(-1, (3, nh, hd)).unbind(-3)
            return attn.q_norm(q.transpose(-3, -2)), attn.k_norm(k.transpose(-3, -2)), \
                v.transpose(-3, -2)

        # prompted rows per head, padded by repeating the first (duplicates are masked below)
        marked = prompt > 0
        r = max(int(marked.sum(1).max()), 1)
        if r > n_tok // 2:  # head boxes over half the frame: little to share, and the swap
            return block(tokens)  # would subtract most of a softmax from itself
        order = torch.argsort(marked.to(torch.uint8), dim=1, descending=True, stable=True)
        idx = order[:, :r]
        valid = torch.gather(marked, 1, idx)
        idx = torch.where(valid, idx, idx[:, :1])
        with torch.autocast(base.device.type, enabled=False):
            q0, k0, v0 = qkv(base)  # (B, nh, n, hd)
            rows = torch.gather(tokens, 1, idx[:, :, None].expand(-1, -1, dim))  # (P, r, dim)
            qr, kr, vr = qkv(rows)  # (P, nh, r, hd)
            outs, first = [], 0
            for b, count in enumerate(counts.tolist()):  # heads are grouped by image
                heads = slice(first, first + count)
                first += count
                if count:
                    outs.append(_swapped_attention(q0[b], k0[b], v0[b], qr[heads], kr[heads],
                                                   vr[heads], idx[heads], valid[heads],
                                                   attn.scale))
            out = torch.cat(outs)  # (P, nh, n, hd)
        out = attn.norm(out.transpose(1, 2).reshape(len(tokens), n_tok, nh * hd))
        x = tokens + block.drop_path1(block.ls1(attn.proj_drop(attn.proj(out.to(tokens)))))
        return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))

    def _heatmaps(self, tokens: torch.Tensor) -> torch.Tensor:
        """`heatmap_head` (2x2 stride-2 transposed conv, 1x1 conv, sigmoid) applied as the one
        linear map it is: nothing non-linear sits between the two convolutions, so they compose
        into dim -> 4 weights (one per output pixel of a token's 2x2 cell). Same function and
        gradients as running the layers, without a dim-channel 64x64 map per head (a tenth of
        the decoder's time for 30 heads on a CPU)."""
        up, proj = self.heatmap_head[0], self.heatmap_head[1]
        # In fp32 even under bf16/fp16 autocast (a tiny product): rounding the heatmap to 8
        # mantissa bits would tie neighbouring pixels and move the argmax.
        with torch.autocast(tokens.device.type, enabled=False):
            w = proj.weight[0, :, 0, 0].float()
            kernel = torch.einsum("ioyx,o->iyx", up.weight.float(), w).flatten(1)  # (dim, 4)
            cells = tokens.float() @ kernel + up.bias.float() @ w  # (P, g*g, 4): (ky, kx)
        g = self.grid
        heat = cells.view(-1, g, g, 2, 2).permute(0, 1, 3, 2, 4).reshape(-1, 2 * g, 2 * g)
        return self.heatmap_head[2](heat)


def _swapped_attention(q0, k0, v0, qr, kr, vr, idx, valid, scale: float) -> torch.Tensor:
    """Attention of P prompted copies of one image's tokens, from the image's own attention.

    q0, k0, v0 (nh, n, hd): the image's queries, keys, values; qr, kr, vr (P, nh, r, hd): each
    copy's prompted rows `idx` (P, r), padding marked by `valid` False. Returns (P, nh, n, hd).
    Unprompted rows keep the image's softmax numerator and denominator with the prompted key
    columns swapped (image's out, copy's in, rescaled to a common maximum); prompted rows attend
    in full. The copies' batch is folded into the matmuls' rows, so nothing n x n is copied."""
    p, nh, r, hd = qr.shape
    n = q0.shape[1]

    def fold(t):  # (P, nh, r, x) -> (nh, P*r, x)
        return t.transpose(0, 1).reshape(nh, p * r, t.shape[-1])

    def unfold(t):  # (nh, n, P*r) -> (P, nh, n, r)
        return t.view(nh, n, p, r).permute(2, 0, 1, 3)

    q0s, qrs = q0 * scale, qr * scale
    a0 = q0s @ k0.transpose(-1, -2)  # (nh, n, n), once per image
    m0 = a0.amax(-1, keepdim=True)
    e0 = torch.exp(a0 - m0)
    num0, den0 = e0 @ v0, e0.sum(-1, keepdim=True)
    del a0, e0
    k0r, v0r = k0[:, idx].transpose(0, 1), v0[:, idx].transpose(0, 1)  # (P, nh, r, hd)
    keep = valid[:, None, None, :]  # (P, 1, 1, r)
    old = unfold(q0s @ fold(k0r).transpose(-1, -2))  # (P, nh, n, r)
    new = unfold(q0s @ fold(kr).transpose(-1, -2)).masked_fill(~keep, float("-inf"))
    m = torch.maximum(m0, new.amax(-1, keepdim=True))
    alpha = torch.exp(m0 - m)
    e_old = torch.exp(old - m0) * keep
    e_new = torch.exp(new - m)
    out = alpha * (num0 - e_old @ v0r) + e_new @ vr
    out /= alpha * (den0 - e_old.sum(-1, keepdim=True)) + e_new.sum(-1, keepdim=True)
    # prompted rows: full attention over the copy's own keys and values
    cols = idx[:, None, None, :].expand(-1, nh, r, -1)
    scores = (fold(qrs) @ k0.transpose(-1, -2)).view(nh, p, r, n).transpose(0, 1)
    scores = scores.scatter(-1, cols, qrs @ kr.transpose(-1, -2))  # (P, nh, r, n)
    w = scores.softmax(-1)
    out_r = (fold(w) @ v0).view(nh, p, r, hd).transpose(0, 1)
    out_r = out_r + (torch.gather(w, -1, cols) * keep) @ (vr - v0r)
    return out.scatter_(2, idx[:, None, :, None].expand(-1, nh, -1, hd), out_r)


def image_of_heads(counts: torch.Tensor) -> torch.Tensor:
    """Each head's image index from the heads per image (heads grouped by image)."""
    return torch.arange(len(counts), device=counts.device).repeat_interleave(counts)


class GazeLLEOutput(NamedTuple):
    heatmaps: torch.Tensor  # (sum(people), 64, 64) in 0..1
    inout: Optional[torch.Tensor]  # (sum(people),) in 0..1, None without an in/out head
    counts: List[int]  # people per image, to split the flat tensors

    def per_image(self) -> List[Tuple[torch.Tensor, Optional[torch.Tensor]]]:
        heat = self.heatmaps.split(self.counts)
        inout = self.inout.split(self.counts) if self.inout is not None else [None] * len(heat)
        return list(zip(heat, inout))


class GazeLLE(nn.Module):
    """Backbone + decoder: one backbone pass per image, one decoder pass for all heads."""

    def __init__(self, backbone: DinoV2, decoder: GazeLLEDecoder):
        super().__init__()
        self.backbone, self.decoder = backbone, decoder

    def forward(self, images: torch.Tensor, head_boxes: Sequence[Sequence[Box]]) -> GazeLLEOutput:
        """images: preprocessed (B, 3, 448, 448); head_boxes: per image, normalised boxes."""
        return self.decode(self.backbone.forward_patch_features(images), head_boxes)

    def decode(self, features: torch.Tensor, head_boxes: Sequence[Sequence[Box]]) -> GazeLLEOutput:
        """The decoder alone, on (possibly cached) backbone features."""
        counts = [len(boxes) for boxes in head_boxes]
        maps = head_maps([b for boxes in head_boxes for b in boxes], self.decoder.grid)
        heat, inout = self.decoder(features, maps.to(features.device), counts)
        return GazeLLEOutput(heat, inout, counts)


def has_inout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("inout_head.", "inout_token.")) for k in state_dict)


def load_decoder_state_dict(decoder: GazeLLEDecoder, state_dict: Mapping[str, torch.Tensor],
                            source: str = "Gaze-LLE decoder state dict") -> GazeLLEDecoder:
    """Strict load of a published-format decoder; names missing / unexpected keys and says
    which backbone a checkpoint was trained for when the sizes disagree."""
    proj = state_dict.get("linear.weight")
    if proj is not None and proj.shape[1] != decoder.in_dim:
        raise WeightsError(f"{source} was trained on a {proj.shape[1]}-dim backbone but this "
                           f"model's backbone gives {decoder.in_dim}-dim features: pick the "
                           "matching variant (768 = ViT-B/14, 1024 = ViT-L/14)")
    load_strict(decoder, state_dict, source)
    return decoder


def create_gazelle(variant: str = "vitb14", backbone_weights: StateDictSource = None,
                   decoder_weights: StateDictSource = None, *, inout: Optional[bool] = None
                   ) -> GazeLLE:
    """Build Gaze-LLE `variant` (vitb14|vitl14) from a hub-format DINOv2 file and a published
    decoder file (paths or state dicts; either may be None for random weights). `inout`
    defaults to whether the decoder file has an in/out head; asking for one it lacks fails."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown Gaze-LLE variant '{variant}'; known: vitb14, vitl14")
    name, depth = VARIANTS[variant]
    backbone = create_dinov2(name, backbone_weights, depth=depth)
    state, source = None, "Gaze-LLE decoder state dict"
    if isinstance(decoder_weights, Mapping):
        state = decoder_weights
    elif decoder_weights is not None:
        state = load_state_dict(Path(decoder_weights))
        source = f"weights file '{decoder_weights}'"
    if inout is None:
        inout = state is not None and has_inout(state)
    decoder = GazeLLEDecoder(backbone.embed_dim, inout=inout)
    if state is not None:
        load_decoder_state_dict(decoder, state, source)
    return GazeLLE(backbone, decoder).eval()

