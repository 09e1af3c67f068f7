"""Gaze-direction training data, read lazily as torch Datasets (public sets have millions of
images): a CSV of face crops with yaw and pitch, and GazeCapture-style session folders.

**Angle CSV.** A header with columns ``file,yaw,pitch`` and optionally ``group`` (e.g. the
subject: validation is then subject-disjoint). File paths are relative to the image root
(default: the CSV's folder); images are face crops, ideally square, resized to the model
input. Angles follow `core.gaze_direction`: camera frame, yaw > 0 looks towards image-right,
pitch > 0 looks down, (0, 0) looks into the camera; degrees, or radians with ``--units rad``.

Converting public datasets (write the crops to files, then one CSV row per crop):

* From a 3D gaze vector g in a camera frame with x right, y down, z forward (MPIIFaceGaze's
  ``gc - fc`` after data normalisation, ETH-XGaze's normalised gaze vector):
  ``yaw = atan2(g_x, -g_z)``, ``pitch = asin(g_y / |g|)`` (`core.gaze_direction.vector_to_angles`).
* ETH-XGaze ``face_gaze`` = (pitch, yaw) in radians, made as ``asin(-g_y)``,
  ``atan2(-g_x, -g_z)`` (its ``normalization_example.py``): ``yaw = -face_gaze[1]``,
  ``pitch = -face_gaze[0]``, ``--units rad``; crops are ``face_patch``.
* MPIIFaceGaze and Gaze360 as preprocessed by GazeHub (label column ``2DGaze``/``Gaze2D``
  = "a,b" in radians, a = yaw = ``atan2(-g_x, -g_z)``, b = pitch = ``asin(-g_y)``):
  ``yaw = -a``, ``pitch = -b``, ``--units rad``; ``group`` = the person (leave-one-person-out
  is how MPIIFaceGaze results are reported).
* Gaze360's own ``metadata.mat`` ``gaze_dir`` (x left, y up, z away from the camera, as GazeHub
  reads it): ``yaw = atan2(-x, -z)``, ``pitch = asin(-y)``.

Sign conventions are the usual trap: before training, draw a few converted labels as arrows
(``angles_to_vector``: image x = d[0], y = d[1]) on their crops and check them by eye.

**GazeCapture folder.** One folder per session (or the session folder itself) with
``appleFace.json``, ``appleLeftEye.json``, ``appleRightEye.json`` (eye boxes relative to the
face box; "left" = the subject's left), ``faceGrid.json`` (25 x 25 grid, 1-based), ``dotInfo.json``
(``XCam``, ``YCam``: target in cm from the camera), ``frames/`` and optionally ``frames.json``
and ``info.json`` (``Dataset``: train / val / test). Frames where any detection is invalid are
skipped.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, TypeVar

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ...core import csv_io
from ...core.face_crops import crop_square
from ...core.gaze_direction import GRID
from ...core.sources import SourceError, read_rgb
from ..splits import split_indices
from ..errors import DataError

log = logging.getLogger(__name__)

Box = Tuple[float, float, float, float]
T = TypeVar("T")
CAPTURE_FILES = ("appleFace.json", "appleLeftEye.json", "appleRightEye.json", "faceGrid.json",
                 "dotInfo.json")


def _image(path: Path) -> np.ndarray:
    try:
        return read_rgb(path)
    except SourceError as exc:
        raise DataError(str(exc)) from exc


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)


# -- angle CSV --------------------------------------------------------------------------------
@dataclass(frozen=True)
class AngleSample:
    path: Path
    yaw: float    # degrees
    pitch: float  # degrees
    group: Optional[str] = None


def read_angle_csv(path: Path, image_root: Optional[Path] = None,
                   units: str = "deg") -> List[AngleSample]:
    """Samples of an angle CSV (module docstring); angles are returned in degrees."""
    if units not in ("deg", "rad"):
        raise DataError(f"units must be deg or rad, got '{units}'")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"angle CSV '{path}' does not exist")
    root = Path(image_root or path.parent)
    with open(path, newline="") as fh:
        reader = csv_io.dict_reader(fh, str(path))
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in ("file", "yaw", "pitch") if c not in header]
        if missing:
            raise DataError(f"CSV '{path}' lacks column(s) {missing}; header is {header}")
        reader.fieldnames = header
        samples, absent = [], []
        for line, row in enumerate(reader, start=2):
            try:
                yaw, pitch = float(row["yaw"]), float(row["pitch"])
            except (TypeError, ValueError):
                raise DataError(f"{path}:{line}: yaw and pitch must be numbers, got "
                                f"{row.get('yaw')!r}, {row.get('pitch')!r}") from None
            if not (math.isfinite(yaw) and math.isfinite(pitch)):
                raise DataError(f"{path}:{line}: yaw and pitch must be finite")
            if units == "rad":
                yaw, pitch = math.degrees(yaw), math.degrees(pitch)
            file = root / (row["file"] or "").strip()
            if not file.is_file():
                absent.append(str(file))
            group = (row.get("group") or "").strip() if "group" in header else ""
            samples.append(AngleSample(file, yaw, pitch, group or None))
    if absent:
        raise DataError(f"{len(absent)} image(s) of '{path}' not found (first: {absent[:3]}); "
                        "set --image-root")
    if not samples:
        raise DataError(f"CSV '{path}' has no rows")
    if "group" in header and any(s.group is None for s in samples):
        raise DataError(f"CSV '{path}': every row needs a group when the column exists")
    return samples


def read_angles_within(path: Path, image_root: Optional[Path], units: str,
                       limit: float) -> List[AngleSample]:
    """The samples of an angle CSV whose yaw and pitch lie within +-`limit` degrees (the range
    of the L2CS bins); the others are left out with a warning."""
    samples = read_angle_csv(path, image_root, units)
    kept = [s for s in samples if abs(s.yaw) < limit and abs(s.pitch) < limit]
    if len(kept) < len(samples):
        log.warning("%d of %d samples lie outside the bins (+-%g deg) and are left out",
                    len(samples) - len(kept), len(samples), limit)
    if not kept:
        raise DataError(f"no sample of '{path}' lies within +-{limit:g} deg; check "
                        "--units and --bins")
    return kept


class AngleDataset(Dataset):
    """Items: image uint8 (3, S, S), target float (yaw, pitch) in degrees."""

    def __init__(self, samples: Sequence[AngleSample], size: int) -> None:
        self.samples, self.size = list(samples), int(size)

    def __len__(self) -> int:
        return len(self.samples)

    def targets(self) -> np.ndarray:
        """(N, 2) yaw, pitch in degrees."""
        return np.array([(s.yaw, s.pitch) for s in self.samples], dtype=np.float64)

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        s = self.samples[i]
        image = cv2.resize(_image(s.path), (self.size, self.size), interpolation=cv2.INTER_AREA)
        return {"image": _chw(image), "target": torch.tensor([s.yaw, s.pitch], dtype=torch.float32)}


# -- GazeCapture ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaptureSample:
    frame: Path
    face: Box                              # frame pixels
    left: Box                              # the subject's left eye, frame pixels
    right: Box
    grid: Tuple[int, int, int, int]        # x, y, w, h in grid cells, 1-based
    target: Tuple[float, float]            # cm from the camera
    session: str
    split: str                             # info.json Dataset, "" when unknown


def _load_json(path: Path) -> Dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read '{path}': {exc}") from exc


def _sessions(root: Path) -> List[Path]:
    if not root.is_dir():
        raise DataError(f"GazeCapture data '{root}' is not a folder")
    if (root / CAPTURE_FILES[0]).is_file():
        return [root]
    sessions = sorted(p for p in root.iterdir() if (p / CAPTURE_FILES[0]).is_file())
    if not sessions:
        raise DataError(f"'{root}' holds no GazeCapture session (a folder with "
                        f"{', '.join(CAPTURE_FILES)} and frames/)")
    return sessions


def _session_samples(folder: Path) -> List[CaptureSample]:
    missing = [f for f in CAPTURE_FILES if not (folder / f).is_file()]
    if missing or not (folder / "frames").is_dir():
        raise DataError(f"GazeCapture session '{folder}' lacks {missing or ['frames/']}")
    face, left, right, grid, dot = (_load_json(folder / f) for f in CAPTURE_FILES)
    names = (_load_json(folder / "frames.json") if (folder / "frames.json").is_file()
             else sorted(p.name for p in (folder / "frames").iterdir()))
    split = str(_load_json(folder / "info.json").get("Dataset", "")) \
        if (folder / "info.json").is_file() else ""
    try:
        lengths = {len(d[k]) for d in (face, left, right, grid) for k in ("X", "Y", "W", "H",
                                                                          "IsValid")}
        lengths |= {len(dot["XCam"]), len(dot["YCam"]), len(names)}
    except (KeyError, TypeError) as exc:
        raise DataError(f"GazeCapture session '{folder}': missing field {exc}") from None
    if len(lengths) != 1:
        raise DataError(f"GazeCapture session '{folder}': the JSON files disagree on the number "
                        f"of frames ({sorted(lengths)})")
    box = lambda d, i: tuple(float(d[k][i]) for k in "XYWH")  # noqa: E731
    samples = []
    for i, name in enumerate(names):
        if not all(int(d["IsValid"][i]) for d in (face, left, right, grid)):
            continue
        fx, fy, _, _ = f = box(face, i)
        lx, ly, lw, lh = box(left, i)
        rx, ry, rw, rh = box(right, i)
        samples.append(CaptureSample(
            folder / "frames" / name, f, (fx + lx, fy + ly, lw, lh), (fx + rx, fy + ry, rw, rh),
            tuple(int(v) for v in box(grid, i)), (float(dot["XCam"][i]), float(dot["YCam"][i])),
            folder.name, split))
    return samples


def read_gazecapture(root: Path) -> List[CaptureSample]:
    """Valid frames of every session under `root` (or of `root` itself)."""
    samples = [s for folder in _sessions(Path(root)) for s in _session_samples(folder)]
    if not samples:
        raise DataError(f"no frame of '{root}' has valid face, eye and grid detections")
    return samples


def grid_from_cells(x: int, y: int, w: int, h: int, size: int = GRID) -> np.ndarray:
    """GazeCapture's 1-based face-grid rectangle as a (size, size) uint8 raster."""
    grid = np.zeros((size, size), np.uint8)
    grid[max(y - 1, 0):max(y - 1 + h, 0), max(x - 1, 0):max(x - 1 + w, 0)] = 1
    return grid


class CaptureDataset(Dataset):
    """Items: face, left, right uint8 (3, S, S), grid uint8 (25, 25), target float (x, y) cm."""

    def __init__(self, samples: Sequence[CaptureSample], face_size: int, eye_size: int,
                 crop_scale: float = 1.0) -> None:
        self.samples = list(samples)
        self.face_size, self.eye_size, self.crop_scale = face_size, eye_size, crop_scale

    def __len__(self) -> int:
        return len(self.samples)

    def targets(self) -> np.ndarray:
        """(N, 2) gaze points in cm."""
        return np.array([s.target for s in self.samples], dtype=np.float64)

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        s = self.samples[i]
        frame = _image(s.frame)
        return {"face": _chw(crop_square(frame, s.face, self.face_size, self.crop_scale)),
                "left": _chw(crop_square(frame, s.left, self.eye_size)),
                "right": _chw(crop_square(frame, s.right, self.eye_size)),
                "grid": torch.from_numpy(grid_from_cells(*s.grid)),
                "target": torch.tensor(s.target, dtype=torch.float32)}


# -- validation split -------------------------------------------------------------------------
def split(items: Sequence[T], groups: Sequence[Optional[str]], val_fraction: float,
          seed: int) -> Tuple[List[T], List[T]]:
    """(train, val): whole groups go to validation when groups are given, else a random share
    (`training.splits` does the work)."""
    train, val = split_indices([0] * len(items), groups, val_fraction, seed)
    return [items[i] for i in train], [items[i] for i in val]


def capture_split(samples: List[CaptureSample], val_fraction: float, seed: int
                  ) -> Tuple[List[CaptureSample], List[CaptureSample]]:
    """(train, val): GazeCapture's own split when info.json gives one, else a session-disjoint
    split."""
    if any(s.split for s in samples):
        train = [s for s in samples if s.split == "train"]
        if not train:
            raise DataError("info.json files name a split but no session is 'train'")
        return train, [s for s in samples if s.split == "val"]
    return split(samples, [s.session for s in samples], val_fraction, seed)
