"""Eye-crop geometry: centred on the landmark, roll-aligned, clear errors for impossible crops."""
import math

import cv2
import numpy as np
import pytest

from gaze_perception.core.eye_crops import LEFT, RIGHT, EyeCropError, crop_eye


def _texture(size=240, seed=0) -> np.ndarray:
    """Smooth random RGB image: bilinear resampling of it barely changes it."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC),
                            (0, 0), 2)


def _rotate(image, points, degrees):
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    rotated = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
    return rotated, [tuple(m @ np.array([x, y, 1.0])) for x, y in points]


@pytest.mark.parametrize("degrees", [15, -30, 90])
def test_rotated_face_gives_the_same_crops(degrees):
    image = _texture()
    eyes = [(95.0, 118.0), (150.0, 114.0)]
    rotated, turned = _rotate(image, eyes, degrees)
    for eye in (LEFT, RIGHT):
        a = crop_eye(image, eyes, eye, size=24).astype(float)
        b = crop_eye(rotated, turned, eye, size=24).astype(float)
        assert np.abs(a - b).mean() < 2.0, (degrees, eye, np.abs(a - b).mean())


def test_crop_is_centred_on_the_eye_and_scaled_by_the_eye_distance():
    image = np.zeros((200, 300, 3), np.uint8)
    eyes = [(100.0, 90.0), (200.0, 90.0)]          # iod 100 -> crop side 60 px at scale 0.6
    cv2.rectangle(image, (70, 60), (130, 120), (80, 80, 80), -1)  # 60 px square on the eye
    cv2.circle(image, (100, 90), 3, (255, 255, 255), -1)
    crop = crop_eye(image, eyes, LEFT, size=30, scale=0.6)
    y, x = np.unravel_index(np.argmax(crop), crop.shape)
    assert abs(x - 14.5) <= 1 and abs(y - 14.5) <= 1
    assert crop.min() >= 55                                    # all of it inside the square
    assert crop_eye(image, eyes, LEFT, size=30, scale=0.8)[0, 0] == 0  # a larger scale is not


def test_rgb_and_gray_outputs():
    image = _texture()
    eyes = [(95.0, 118.0), (150.0, 114.0)]
    assert crop_eye(image, eyes, RIGHT, size=32).shape == (32, 32)
    assert crop_eye(image, eyes, RIGHT, size=32, gray=False).shape == (32, 32, 3)


@pytest.mark.parametrize("eyes, message", [
    ([], "two eye landmarks"),
    ([(10.0, 10.0), (11.0, 10.0)], "inter-ocular distance"),
    ([(math.nan, 10.0), (50.0, 10.0)], "not finite"),
    ([(-30.0, 10.0), (20.0, 10.0)], "outside"),
])
def test_impossible_crops_raise(eyes, message):
    with pytest.raises(EyeCropError, match=message):
        crop_eye(_texture(), eyes, LEFT)


def test_eye_near_the_border_still_crops():
    crop = crop_eye(_texture(), [(2.0, 3.0), (60.0, 3.0)], LEFT, size=24)
    assert crop.shape == (24, 24)
