"""Frame sources without ROS: an image file, a folder of images, or a video file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


class SourceError(ValueError):
    pass


@dataclass
class Frame:
    index: int
    name: str
    stamp: float  # seconds from the start of the source
    rgb: np.ndarray


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"cannot read image '{path}'")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class FrameSource:
    """Iterates frames of `path`; `len()` is the frame count when known (for progress bars)."""

    def __init__(self, path, fps: float = 0.0):
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"source '{path}' does not exist")
        if self.path.is_dir():
            self.kind = "folder"
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            if not self.files:
                raise SourceError(f"folder '{path}' holds no images ({', '.join(sorted(IMAGE_EXTS))})")
        elif self.path.suffix.lower() in IMAGE_EXTS:
            self.kind, self.files = "image", [self.path]
        elif self.path.suffix.lower() in VIDEO_EXTS:
            self.kind, self.files = "video", []
        else:
            raise SourceError(f"'{path}' is not an image, a folder of images or a video "
                              f"({', '.join(sorted(VIDEO_EXTS))})")
        self.fps = fps

    def __len__(self) -> int:
        if self.kind != "video":
            return len(self.files)
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return max(n, 0)

    def __iter__(self) -> Iterator[Frame]:
        if self.kind != "video":
            period = 1.0 / self.fps if self.fps > 0 else 0.0
            for i, f in enumerate(self.files):
                yield Frame(i, f.name, i * period, read_rgb(f))
            return
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"cannot open video '{self.path}'")
        fps = self.fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
        try:
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield Frame(i, f"{self.path.name}#{i}", i / fps,
                            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                i += 1
        finally:
            cap.release()


def batched(frames, size: int) -> Iterator[list]:
    batch = []
    for f in frames:
        batch.append(f)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


