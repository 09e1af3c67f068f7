"""Image helpers: validation of frames and conversion of raw ROS-style buffers (no ROS import)."""
from __future__ import annotations

import numpy as np

#: Largest frame we accept (pixels). Bigger frames are almost certainly a corrupt header.
MAX_PIXELS = 8192 * 8192

SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16")


class ImageError(ValueError):
    """A frame that cannot be processed (bad encoding, size or buffer)."""


def check_rgb(image: np.ndarray) -> np.ndarray:
    """Return `image` if it is an RGB uint8 HxWx3 array, else raise ImageError."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        raise ImageError(f"expected an RGB uint8 array of shape (H, W, 3), got "
                         f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"empty image ({image.shape[1]}x{image.shape[0]})")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"image too large ({image.shape[1]}x{image.shape[0]})")
    return image


def check_raw(size: int, width: int, height: int, step: int, encoding: str) -> int:
    """Validate the fields of a raw image buffer (sensor_msgs/Image) without touching its
    pixels; returns the bytes per pixel. Raises ImageError naming what is wrong."""
    enc = encoding.lower()
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 1}.get(enc)
    if channels is None:
        raise ImageError(f"unsupported encoding '{encoding}' (supported: "
                         f"{', '.join(SUPPORTED_ENCODINGS)})")
    if width <= 0 or height <= 0:
        raise ImageError(f"empty image ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ImageError(f"image too large ({width}x{height})")
    bpp = channels * (2 if enc == "mono16" else 1)
    if step < width * bpp:
        raise ImageError(f"step {step} is smaller than width*bytes_per_pixel {width * bpp}")
    if size != step * height:
        raise ImageError(f"data length {size} does not match step*height = {step * height}")
    return bpp


def decode_raw(data, width: int, height: int, step: int, encoding: str,
               is_bigendian: bool = False) -> np.ndarray:
    """Turn a raw image buffer (bytes or any buffer, e.g. an Image message's `data`) into RGB
    uint8. Supports rgb8, bgr8, rgba8, bgra8, mono8 and mono16 (scaled to 8 bit by its maximum).
    """
    enc = encoding.lower()
    bpp = check_raw(len(data), width, height, step, encoding)
    channels = bpp // (2 if enc == "mono16" else 1)
    buf = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, : width * bpp]
    if enc == "mono16":
        px = buf.copy().view(">u2" if is_bigendian else "<u2").reshape(height, width)
        top = int(px.max()) or 1
        gray = (px.astype(np.float32) * (255.0 / top)).round().astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    px = buf.reshape(height, width, channels)
    if enc == "mono8":
        return np.repeat(px, 3, axis=2)
    if enc in ("bgr8", "bgra8"):
        return np.ascontiguousarray(px[:, :, 2::-1])
    return np.ascontiguousarray(px[:, :, :3])
