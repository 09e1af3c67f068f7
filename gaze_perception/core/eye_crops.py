"""Eye crops from five-point face landmarks, one geometry for training data and run time.

Geometry (pixels of the source image; L = image-left eye landmark, R = image-right eye):

* inter-ocular distance ``iod = |R - L|``, roll ``theta = atan2(R.y - L.y, R.x - L.x)``;
* each crop is a square of side ``scale * iod`` centred on its eye landmark, its x axis along
  the eye line (L to R) and its y axis perpendicular to it, pointing down the face; so the crop
  is roll-aligned: the same face rotated in the image plane gives the same crop;
* the square is resampled to ``size x size`` pixels (bilinear, then area averaging when the
  square is larger than the output so that big faces do not alias); parts outside the frame
  repeat the border pixels;
* neither eye is mirrored: a model sees left and right eyes as they appear in the image.

``DEFAULT_SCALE`` = 0.6 makes an eye (corner to corner about 0.45 iod) span about 3/4 of the
crop width with the brow at its top edge, which is how the 24x24 crops the shipped model was
trained on look (checked by eye against YuNet landmarks on a frontal face).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import cv2
import numpy as np

DEFAULT_SCALE = 0.6
#: below this inter-ocular distance (pixels) an eye is a few pixels wide and no crop is made
MIN_IOD = 4.0
#: the intermediate square is at most this many times the output size before area resizing
_MAX_OVERSAMPLE = 4

LEFT, RIGHT = 0, 1


class EyeCropError(ValueError):
    """No usable crop: missing or degenerate landmarks, or the eye lies outside the frame."""


def _eye_line(landmarks: Sequence[Tuple[float, float]]) -> Tuple[float, float, float, float]:
    """(lx, ly, dx, dy) of the eye line, checked: two finite landmarks at least MIN_IOD apart."""
    if len(landmarks) < 2:
        raise EyeCropError(f"need the two eye landmarks, got {len(landmarks)} landmark(s)")
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    if not all(math.isfinite(v) for v in (lx, ly, rx, ry)):
        raise EyeCropError("eye landmarks are not finite")
    dx, dy = rx - lx, ry - ly
    if math.hypot(dx, dy) < MIN_IOD:
        raise EyeCropError(f"inter-ocular distance {math.hypot(dx, dy):.1f} px is below "
                           f"{MIN_IOD} px")
    return lx, ly, dx, dy


def eye_transform(landmarks: Sequence[Tuple[float, float]], eye: int, side: int,
                  scale: float = DEFAULT_SCALE) -> np.ndarray:
    """2x3 map from crop pixels (side x side) to source-image pixels for eye LEFT or RIGHT."""
    lx, ly, dx, dy = _eye_line(landmarks)
    iod = math.hypot(dx, dy)
    k = scale * iod / side                      # source pixels per crop pixel
    cos, sin = dx / iod * k, dy / iod * k       # crop x axis -> eye line, y axis -> its normal
    cx, cy = (lx, ly) if eye == LEFT else (lx + dx, ly + dy)
    half = (side - 1) / 2.0                     # pixel centres sit on integer coordinates
    return np.array([[cos, -sin, cx - (cos - sin) * half],
                     [sin, cos, cy - (sin + cos) * half]], dtype=np.float64)


def crop_eye(image: np.ndarray, landmarks: Sequence[Tuple[float, float]], eye: int,
             size: int = 24, scale: float = DEFAULT_SCALE, gray: bool = True) -> np.ndarray:
    """Roll-aligned square crop of one eye of an RGB uint8 frame: (size, size) uint8 when
    `gray`, else (size, size, 3). Raises EyeCropError when no meaningful crop exists."""
    lx, ly, dx, dy = _eye_line(landmarks)
    ex, ey = (lx, ly) if eye == LEFT else (lx + dx, ly + dy)
    h, w = image.shape[:2]
    if not (0 <= ex < w and 0 <= ey < h):
        raise EyeCropError(f"{'left' if eye == LEFT else 'right'} eye at ({ex:.1f}, {ey:.1f}) "
                           f"is outside the {w}x{h} frame")
    side = int(min(max(size, round(scale * math.hypot(dx, dy))), _MAX_OVERSAMPLE * size))
    m = eye_transform(landmarks, eye, side, scale)
    crop = cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    if side != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if gray else crop
