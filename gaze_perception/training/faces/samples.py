"""MTCNN training samples: square crops labelled by their overlap with the annotated faces.

As in Zhang et al. (2016): a crop whose IoU with a face is >= 0.65 is a positive, 0.4-0.65 a
part face (both carry box offsets), < 0.3 with every face a negative; crops in between are
dropped, and so is a crop that overlaps an ignored face (WIDER FACE `invalid`) by 0.4 or more.
Landmark samples are crops around faces with five points. Candidates from the earlier
cascade stages (hard examples) are labelled by the same rule and fill the negatives first.
No torch here: the miner is any function from an image to candidate boxes.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ...core.boxes import iou_matrix
from .data import ImageFaces, read_rgb

NEG, POS, PART, LANDMARK = 0, 1, 2, 3
KINDS = ("negative", "positive", "part", "landmark")
POS_IOU, PART_IOU, NEG_IOU = 0.65, 0.4, 0.3

Miner = Callable[[np.ndarray], np.ndarray]


@dataclass
class SampleConfig:
    size: int                  # crop side the stage sees: 12, 24 or 48
    neg_ratio: float = 3.0     # negatives per positive, per image
    crops_per_face: int = 10   # jittered crops tried around each face
    min_face: float = 20.0     # faces smaller than this (shorter side, px) give no crops
    landmarks: bool = False    # make landmark samples (O-Net has a landmark head)


@dataclass
class Samples:
    images: np.ndarray   # (N, S, S, 3) uint8 RGB
    kind: np.ndarray     # (N,) int8, NEG / POS / PART / LANDMARK
    offsets: np.ndarray  # (N, 4) float32 (face - crop) / crop size, x1 y1 x2 y2; 0 for NEG
    points: np.ndarray   # (N, 10) float32 x1..x5 then y1..y5 as crop fractions; LANDMARK only
    crops: np.ndarray    # (N, 4) float32 crop boxes x1 y1 x2 y2 in the source image
    source: np.ndarray   # (N,) int32 index of the source image
    iou: np.ndarray      # (N,) float32 best IoU with a face (with its own face for LANDMARK)

    @classmethod
    def empty(cls, size: int) -> "Samples":
        return cls(np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int8),
                   np.zeros((0, 4), np.float32), np.zeros((0, 10), np.float32),
                   np.zeros((0, 4), np.float32), np.zeros(0, np.int32),
                   np.zeros(0, np.float32))

    @classmethod
    def concat(cls, parts: Sequence["Samples"], size: int) -> "Samples":
        parts = [cls.empty(size)] + list(parts)
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def subset(self, idx: np.ndarray) -> "Samples":
        return Samples(*(getattr(self, f.name)[idx] for f in fields(self)))

    def __len__(self) -> int:
        return len(self.kind)

    def counts(self) -> Dict[str, int]:
        return {name: int((self.kind == k).sum()) for k, name in enumerate(KINDS)}


def crop_resized(image: np.ndarray, box: np.ndarray, size: int) -> Optional[np.ndarray]:
    """`box` clipped to the image and resized to size x size (as the detector crops its
    candidates); None when nothing of it lies inside the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = np.round(box).astype(int)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 <= x1 or y2 <= y1:
        return None
    return cv2.resize(image[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_AREA)


def image_samples(image: np.ndarray, faces: ImageFaces, cfg: SampleConfig,
                  rng: np.random.Generator, mined: Optional[np.ndarray] = None) -> Samples:
    """All samples of one image; `mined` are candidate boxes of the earlier stages."""
    boxes, ignore = faces.all_boxes()
    valid = faces.valid_boxes
    big = valid[(valid[:, 2:] - valid[:, :2]).min(axis=1) >= cfg.min_face]
    jittered = [_jitter(box, rng) for box in big for _ in range(cfg.crops_per_face)]
    jittered = _inside(np.array(jittered, np.float32).reshape(-1, 4), image.shape)
    if mined is None:
        mined = np.zeros((0, 4), np.float32)
    crops = np.concatenate([mined, jittered])
    kind, best, overlap = _label(crops, boxes, ignore)
    keep_face = np.nonzero(np.isin(kind, (POS, PART)))[0]
    target = int(round(cfg.neg_ratio * max(int((kind == POS).sum()), 1)))
    # hard negatives first: the cascade's own mistakes, then crops next to faces
    is_neg = kind == NEG
    near = np.concatenate([rng.permutation(np.nonzero(is_neg[:len(mined)])[0]),
                           rng.permutation(np.nonzero(is_neg[len(mined):])[0] + len(mined))])
    near = near[:target].astype(int)
    random_neg = _random_negatives(boxes, image.shape, cfg.size, target - len(near), rng)

    parts = [_make(image, crops[keep_face], kind[keep_face], boxes[best[keep_face]],
                   overlap[keep_face], cfg.size),
             _make(image, crops[near], kind[near], None, overlap[near], cfg.size),
             _make(image, random_neg, np.full(len(random_neg), NEG), None,
                   _best_iou(random_neg, boxes), cfg.size)]
    if cfg.landmarks:
        parts.append(_landmark_samples(image, faces, cfg, rng))
    return Samples.concat(parts, cfg.size)


def generate(dataset: Sequence[ImageFaces], root: Path, cfg: SampleConfig, seed: int,
             miner: Optional[Miner] = None, landmark_root: Optional[Path] = None,
             desc: str = "samples") -> Samples:
    """Samples of every image; image i draws from its own seeded generator, so the samples of
    an image do not depend on the others. Landmark-only images are read from
    `landmark_root` (default `root`)."""
    parts = []
    for i, faces in enumerate(tqdm(dataset, desc=desc, unit="img", leave=False, disable=None)):
        image = read_rgb((landmark_root or root) if faces.landmark_only else root, faces.file)
        rng = np.random.default_rng([seed, i])
        mined = miner(image) if miner is not None else None
        samples = image_samples(image, faces, cfg, rng, mined)
        samples.source[:] = i
        parts.append(samples)
    return Samples.concat(parts, cfg.size)


def _jitter(box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A square near `box`: side 0.8 x shorter to 1.25 x longer side, centre moved by up to
    a fifth of the box (the usual MTCNN recipe; gives positives, parts and some negatives)."""
    w, h = box[2] - box[0], box[3] - box[1]
    side = np.floor(rng.uniform(0.8 * min(w, h), 1.25 * max(w, h)))
    cx = box[0] + w / 2 + rng.uniform(-0.2, 0.2) * w
    cy = box[1] + h / 2 + rng.uniform(-0.2, 0.2) * h
    x1, y1 = np.floor(cx - side / 2), np.floor(cy - side / 2)
    return np.array([x1, y1, x1 + side, y1 + side], np.float32)


def _inside(boxes: np.ndarray, shape) -> np.ndarray:
    h, w = shape[:2]
    ok = (boxes[:, 0] >= 0) & (boxes[:, 1] >= 0) & (boxes[:, 2] <= w) & (boxes[:, 3] <= h) \
        & (boxes[:, 2] > boxes[:, 0])
    return boxes[ok]


def _label(crops: np.ndarray, boxes: np.ndarray, ignore: np.ndarray):
    """(kind, index of the best face, its IoU) per crop; kind -1 = dropped."""
    if len(boxes) == 0:
        zeros = np.zeros(len(crops))
        return np.full(len(crops), NEG), zeros.astype(int), zeros
    overlaps = iou_matrix(crops, boxes)
    best = overlaps.argmax(axis=1)
    top = overlaps[np.arange(len(crops)), best]
    kind = np.full(len(crops), -1)
    kind[top < NEG_IOU] = NEG
    usable = ~ignore[best]
    kind[usable & (top >= PART_IOU)] = PART
    kind[usable & (top >= POS_IOU)] = POS
    return kind, best, top


def _best_iou(crops: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if len(boxes) == 0 or len(crops) == 0:
        return np.zeros(len(crops), np.float32)
    return iou_matrix(crops, boxes).max(axis=1)


def _random_negatives(boxes: np.ndarray, shape, size: int, count: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Up to `count` random squares inside the image with IoU < 0.3 to every face."""
    h, w = shape[:2]
    largest = min(h, w)
    if count <= 0 or largest < size:
        return np.zeros((0, 4), np.float32)
    out = []
    for _ in range(count * 5):  # bounded: crowded images may have little background
        side = rng.integers(size, max(largest // 2, size) + 1)
        x1, y1 = rng.integers(0, w - side + 1), rng.integers(0, h - side + 1)
        box = np.array([[x1, y1, x1 + side, y1 + side]], np.float32)
        if _best_iou(box, boxes)[0] < NEG_IOU:
            out.append(box[0])
            if len(out) == count:
                break
    return np.array(out, np.float32).reshape(-1, 4)


def _landmark_samples(image: np.ndarray, faces: ImageFaces, cfg: SampleConfig,
                      rng: np.random.Generator) -> Samples:
    """Jittered crops that overlap their face's box by >= 0.65, with the five points."""
    parts = []
    for box, pts in zip(faces.point_boxes, faces.points):
        crops = [_jitter(box, rng) for _ in range(cfg.crops_per_face)]
        crops = _inside(np.array(crops, np.float32).reshape(-1, 4), image.shape)
        overlap = _best_iou(crops, box[None])
        crops, overlap = crops[overlap >= POS_IOU], overlap[overlap >= POS_IOU]
        targets = np.repeat(box[None], len(crops), axis=0)
        samples = _make(image, crops, np.full(len(crops), LANDMARK), targets, overlap, cfg.size)
        side = samples.crops[:, 2:] - samples.crops[:, :2]
        rel = (pts[None] - samples.crops[:, None, :2]) / side[:, None, :]
        samples.points[:] = np.concatenate([rel[..., 0], rel[..., 1]], axis=1)
        parts.append(samples)
    return Samples.concat(parts, cfg.size)


def _make(image: np.ndarray, crops: np.ndarray, kind: np.ndarray,
          faces: Optional[np.ndarray], overlap: np.ndarray, size: int) -> Samples:
    """Samples of the given crops; `faces` (N, 4) gives the offset targets (None: zeros)."""
    pixels, keep = [], []
    for i, box in enumerate(crops):
        patch = crop_resized(image, box, size)
        if patch is not None:
            pixels.append(patch)
            keep.append(i)
    crops, kind, overlap = crops[keep], kind[keep], overlap[keep]
    offsets = np.zeros((len(keep), 4), np.float32)
    if faces is not None and len(keep):
        wh = np.tile(crops[:, 2:] - crops[:, :2], 2)
        offsets = ((faces[keep] - crops) / wh).astype(np.float32)
    images = np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8)
    return Samples(images, kind.astype(np.int8), offsets,
                   np.zeros((len(keep), 10), np.float32), crops.astype(np.float32),
                   np.zeros(len(keep), np.int32), overlap.astype(np.float32))
