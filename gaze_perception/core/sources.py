"""Frame sources without ROS: an image file, a folder of images, or a video file.

A bad file of a folder or an undecodable frame of a video does not end the iteration: it is
reported once (to `on_skip`, by default the log), recorded in `FrameSource.skipped`, and the
iteration goes on with the next one; frame indices stay those of the source. A video that ends
before the frame count its container declares is recorded there too."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from .image import ImageError, check_rgb

log = logging.getLogger(__name__)

#: still-image formats OpenCV reads (a single file of another extension is accepted when
#: OpenCV recognises its signature)
IMAGE_EXTS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif",
              ".avif", ".jp2", ".ppm", ".pgm", ".pbm", ".pnm", ".pfm", ".sr", ".ras", ".hdr",
              ".pic"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
#: undecodable frames in a row after which a video is taken to have ended
MAX_BAD_FRAMES_IN_A_ROW = 250


class SourceError(ValueError):
    pass


@dataclass
class Frame:
    index: int
    name: str
    stamp: float  # seconds from the start of the source
    rgb: np.ndarray


def _decode(path: Path) -> np.ndarray:
    """An image file as RGB uint8, or SourceError with the reason alone."""
    try:
        if not path.is_file():
            raise SourceError("it is a folder" if path.is_dir() else "no such file")
        if path.stat().st_size == 0:
            raise SourceError("the file is empty")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # e.g. over OpenCV's pixel limit
        raise SourceError(str(exc).strip().splitlines()[-1]) from None
    if bgr is None:
        raise SourceError("not a readable image (damaged, or a format OpenCV cannot decode)")
    try:
        return check_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    except ImageError as exc:
        raise SourceError(str(exc)) from None


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8; SourceError naming the file and the reason otherwise."""
    try:
        return _decode(Path(path))
    except SourceError as exc:
        raise SourceError(f"cannot read image '{path}': {exc}") from None


def is_image_file(path: Path) -> bool:
    """An image by its extension, or (for other names) by a signature OpenCV can decode."""
    if path.suffix.lower() in IMAGE_EXTS:
        return True
    try:
        return path.suffix.lower() not in VIDEO_EXTS and cv2.haveImageReader(str(path))
    except cv2.error:
        return False


def video_frame_name(video: str, index: int) -> str:
    """The `source` of a video frame in outputs: `clip.mp4#12`."""
    return f"{video}#{index}"


class FrameSource:
    """Iterates frames of `path`; `len()` is the frame count when known (for progress bars).

    `skipped` lists (name, reason) of every file or frame left out, in order; `on_skip(name,
    reason)` is called once for each (default: a warning in the log)."""

    def __init__(self, path, fps: float = 0.0,
                 on_skip: Optional[Callable[[str, str], None]] = None):
        self.path = Path(path)
        self.on_skip = on_skip
        self.skipped: List[Tuple[str, str]] = []
        if not self.path.exists():
            raise SourceError(f"source '{path}' does not exist")
        if self.path.is_dir():
            self.kind = "folder"
            self.files = sorted(p for p in self.path.iterdir()
                                if p.suffix.lower() in IMAGE_EXTS and not p.is_dir())
            if not self.files:
                raise SourceError(f"folder '{path}' holds no images ({', '.join(sorted(IMAGE_EXTS))})")
        elif self.path.suffix.lower() in VIDEO_EXTS:
            self.kind, self.files = "video", []
        elif is_image_file(self.path):
            self.kind, self.files = "image", [self.path]
        else:
            raise SourceError(f"'{path}' is not an image, a folder of images or a video "
                              f"({', '.join(sorted(VIDEO_EXTS))})")
        self.fps = fps

    def _skip(self, name: str, reason: str) -> None:
        self.skipped.append((name, reason))
        if self.on_skip is not None:
            self.on_skip(name, reason)
        else:
            log.warning("skipped %s: %s", name, reason)

    def declared_frames(self) -> int:
        """Frames the video's container declares (0 when unknown or not a video)."""
        if self.kind != "video":
            return 0
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return max(n, 0)

    def __len__(self) -> int:
        return len(self.files) if self.kind != "video" else self.declared_frames()

    def __iter__(self) -> Iterator[Frame]:
        if self.kind != "video":
            period = 1.0 / self.fps if self.fps > 0 else 0.0
            for i, f in enumerate(self.files):
                if self.kind == "image":  # a single image: nothing else to process
                    rgb = read_rgb(f)
                else:
                    try:
                        rgb = _decode(f)
                    except SourceError as exc:
                        self._skip(f.name, str(exc))
                        continue
                yield Frame(i, f.name, i * period, rgb)
            return
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"cannot open video '{self.path}' (damaged, or a codec OpenCV "
                              "cannot decode)")
        declared = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        fps = self.fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
        name = self.path.name
        try:
            i, bad = 0, 0  # next frame index; undecodable frames since the last good one
            while bad < MAX_BAD_FRAMES_IN_A_ROW and not (declared and i + bad >= declared):
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    bad += 1  # a damaged frame, or the end: told apart by a good frame after it
                    continue
                for j in range(i, i + bad):
                    self._skip(video_frame_name(name, j), "frame cannot be decoded")
                i, bad = i + bad, 0
                try:
                    rgb = check_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                except (ImageError, cv2.error) as exc:
                    self._skip(video_frame_name(name, i), str(exc))
                else:
                    yield Frame(i, video_frame_name(name, i), i / fps, rgb)
                i += 1
        finally:
            cap.release()
        if declared and i < declared:
            self._skip(f"{name}#{i}-{declared - 1}",
                       f"the video ended after {i} of the {declared} frames it declares "
                       "(the rest is damaged or missing)")


def batched(frames, size: int) -> Iterator[list]:
    batch = []
    for f in frames:
        batch.append(f)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
