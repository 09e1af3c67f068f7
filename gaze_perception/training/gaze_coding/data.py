"""Gaze-coding data: per-frame code files, and face crops of labelled clips.

**Code files** (labels, or predictions to evaluate), one row per frame, frames numbered from 0:

* a CSV with a header naming a ``frame`` column and a ``code`` (or ``label`` / ``class``)
  column, e.g. what `gaze-perception code-video` writes;
* iCatcher+'s raw output without a header: ``frame, class, confidence`` (``4, left, 0.84``).

Codes: away, left, right, no_face (also iCatcher+'s noface / nobabyface); none marks a frame
that is not coded. Frames that a file does not list are not coded either.

**Training folder.** Clips are video files or sub-folders of frame images; clip ``NAME`` is
labelled by ``NAME.csv`` beside it (a code file). Clips without one are skipped with a warning.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ...core import csv_io
from ...core.face_crops import CropError, crop_square
from ...core.gaze_coding import AWAY, LEFT, NO_FACE, RIGHT, is_gaze, select_infant
from ...core.sources import VIDEO_EXTS, FrameSource, batched
from ...core.types import Face
from ..splits import split_indices
from ..errors import DataError

log = logging.getLogger(__name__)

#: spellings in code files -> code; None = the frame is not coded
CODE_NAMES: Dict[str, Optional[int]] = {
    "away": AWAY, "left": LEFT, "right": RIGHT, "no_face": NO_FACE, "noface": NO_FACE,
    "nobabyface": NO_FACE, "none": None}
CODE_COLUMNS = ("code", "label", "class")


def _int(text: str) -> Optional[int]:
    try:
        return int(text)
    except ValueError:
        return None


def read_codes(path: Path) -> Dict[int, int]:
    """frame -> code of a code file (module docstring); uncoded frames are left out."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"code file '{path}' does not exist")
    with open(path, newline="") as fh:
        rows = [[c.strip() for c in r] for r in csv_io.reader(fh, str(path))
                if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"code file '{path}' is empty")
    if _int(rows[0][0]) is not None:  # iCatcher+ raw output: frame, class, confidence
        frame_col, code_col, first = 0, 1, 1
    else:
        header = [h.lower() for h in rows[0]]
        code_col = next((header.index(c) for c in CODE_COLUMNS if c in header), None)
        if "frame" not in header or code_col is None:
            raise DataError(f"{path}: the header needs a 'frame' column and one of "
                            f"{', '.join(CODE_COLUMNS)}; got {rows[0]}")
        frame_col, first, rows = header.index("frame"), 2, rows[1:]
    codes: Dict[int, int] = {}
    for line, row in enumerate(rows, start=first):
        where = f"{path}:{line}"
        if len(row) <= max(frame_col, code_col):
            raise DataError(f"{where}: expected a frame and a code, got {row}")
        frame, name = _int(row[frame_col]), row[code_col].lower()
        if frame is None or frame < 0:
            raise DataError(f"{where}: frame must be a number >= 0, got '{row[frame_col]}'")
        if name not in CODE_NAMES:
            raise DataError(f"{where}: unknown code '{row[code_col]}'; use "
                            f"{', '.join(CODE_NAMES)}")
        if frame in codes:
            raise DataError(f"{where}: frame {frame} is coded twice")
        if CODE_NAMES[name] is not None:
            codes[frame] = CODE_NAMES[name]
    return codes


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path                # video file or folder of frames
    codes: Dict[int, int]     # frame -> code


def find_clips(folder: Path) -> List[Clip]:
    """Labelled clips of a training folder (module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"clip folder '{folder}' does not exist")
    candidates = sorted(p for p in folder.iterdir()
                        if p.suffix.lower() in VIDEO_EXTS or (p.is_dir() and
                                                              not p.name.startswith(".")))
    clips, unlabelled = [], []
    for path in candidates:
        labels = path.with_name(path.stem + ".csv") if path.is_file() else \
            path.with_name(path.name + ".csv")
        if labels.is_file():
            clips.append(Clip(path.stem if path.is_file() else path.name, path,
                              read_codes(labels)))
        else:
            unlabelled.append(path.name)
    if unlabelled:
        log.warning("%d clip(s) without a NAME.csv label file skipped: %s", len(unlabelled),
                    ", ".join(unlabelled[:5]))
    if not clips:
        raise DataError(f"'{folder}' holds no labelled clip (a video or frame folder NAME with "
                        "NAME.csv beside it)")
    return clips


@dataclass
class Crops:
    images: np.ndarray     # (N, S, S, 3) uint8
    labels: np.ndarray     # (N,) gaze class: away, left, right
    groups: List[str]      # clip of each crop
    skipped: int = 0       # labelled gaze frames without a usable face


def extract_crops(clips: Sequence[Clip], detector, select: str, size: int, scale: float,
                  every: int = 1, batch: int = 8) -> Crops:
    """Face crops of every `every`-th frame coded away / left / right, faces found by
    `detector` (a face-detector backend)."""
    images, labels, groups, skipped = [], [], [], 0
    total = sum(sum(1 for f, c in clip.codes.items() if is_gaze(c) and f % every == 0)
                for clip in clips)
    bar = tqdm(total=total, desc="face crops", unit="frame", disable=None)
    for clip in clips:
        wanted = (f for f in FrameSource(clip.path)
                  if is_gaze(clip.codes.get(f.index)) and f.index % every == 0)
        for frames in batched(wanted, batch):
            rgbs = [f.rgb for f in frames]
            for frame, rgb, found in zip(frames, rgbs, detector.detect(rgbs)):
                crop = _crop(rgb, found, select, size, scale)
                if crop is None:
                    skipped += 1
                else:
                    images.append(crop)
                    labels.append(clip.codes[frame.index])
                    groups.append(clip.name)
            bar.update(len(frames))
    bar.close()
    if not images:
        raise DataError(f"no labelled away/left/right frame with a usable face in "
                        f"{len(clips)} clip(s) ({skipped} without a face)")
    return Crops(np.stack(images), np.array(labels, np.int64), groups, skipped)


def _crop(rgb: np.ndarray, faces: List[Face], select: str, size: int,
          scale: float) -> Optional[np.ndarray]:
    k = select_infant(faces, select)
    if k is None:
        return None
    f = faces[k]
    try:
        return crop_square(rgb, (f.x, f.y, f.width, f.height), size, scale)
    except CropError:
        return None


def split_crops(crops: Crops, val_fraction: float, seed: int
                ) -> Tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices): whole clips go to validation when there are several,
    else a class-stratified share of the frames."""
    groups = crops.groups if len(set(crops.groups)) > 1 else [None] * len(crops.groups)
    train, val = split_indices(crops.labels, groups, val_fraction, seed)
    return np.array(train, np.int64), np.array(val, np.int64)
