"""Frozen-backbone features for Gaze-LLE training and its per-epoch evaluation.

The backbone never trains, so an un-augmented image always gives the same features. With a
cache folder they are computed once (float16 `.npy` files, 1.5 MB per image for ViT-B, 2 MB
for ViT-L) and every later epoch runs the decoder only, which is what makes training on a CPU
or a small GPU practical. Crop and flip change the image, so with the cache only the head-box
jitter remains. The cache records which backbone made it and refuses to serve another.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ...models.dinov2 import DinoV2
from ...models.gazelle import preprocess
from .data import GazeSample, load_image


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """Mixed precision when `dtype` is set (CUDA AMP), a no-op context otherwise."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class FeatureCache:
    """`<folder>/<image path>.npy` per image, and `cache.json` naming the backbone."""

    def __init__(self, folder: Path, identity: Dict[str, str]):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "cache.json"
        if meta.exists():
            saved = json.loads(meta.read_text())
            if saved != identity:
                raise ValueError(f"feature cache '{self.folder}' holds features of {saved}, not "
                                 f"of {identity}; pick another cache folder")
        else:
            meta.write_text(json.dumps(identity, indent=2) + "\n")

    def path(self, image: str) -> Path:
        return self.folder / f"{image}.npy"

    def load(self, image: str) -> torch.Tensor:
        return torch.from_numpy(np.load(self.path(image)).astype(np.float32))

    def save(self, image: str, features: torch.Tensor) -> None:
        """Written under a temporary name first, so an interrupted run leaves no torn file."""
        path = self.path(image)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as fh:
            np.save(fh, features.cpu().numpy().astype(np.float16))
        os.replace(tmp, path)


class FeatureSource:
    """Backbone features of preprocessed batches or of whole images (cached when possible)."""

    def __init__(self, backbone: DinoV2, root: Path, device: torch.device,
                 amp: Optional[torch.dtype] = None, cache: Optional[FeatureCache] = None):
        self.backbone, self.root, self.device = backbone.eval(), Path(root), device
        self.amp, self.cache = amp, cache

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 448, 448) preprocessed images -> (B, C, 32, 32) float32 features."""
        with autocast(self.device, self.amp):
            return self.backbone.forward_patch_features(x.to(self.device)).float()

    def images(self, samples: Sequence[GazeSample]) -> torch.Tensor:
        """Features of each sample's whole image, on the device."""
        if self.cache is not None:
            return torch.stack([self.cache.load(s.image) for s in samples]).to(self.device)
        pixels = [load_image(self.root, s) for s in samples]
        return self.encode(preprocess(pixels))

    def fill_cache(self, samples: Sequence[GazeSample], batch_size: int) -> None:
        """Compute and store the features of every image not cached yet."""
        todo: List[GazeSample] = list({s.image: s for s in samples
                                       if not self.cache.path(s.image).exists()}.values())
        starts = range(0, len(todo), batch_size)
        for start in tqdm(starts, desc="caching backbone features", unit="batch", disable=None):
            chunk = todo[start:start + batch_size]
            feats = self.encode(preprocess([load_image(self.root, s) for s in chunk]))
            for s, f in zip(chunk, feats):
                self.cache.save(s.image, f)
