"""Face annotations: WIDER FACE box files and five-point landmark files (no torch).

WIDER FACE (`wider_face_{train,val}_bbx_gt.txt`): an image path line, a count line, then one
line per face `x y w h blur expression illumination invalid occlusion pose`; a count of 0 is
followed by one all-zero line. Faces flagged `invalid` are kept as ignore regions: never a
positive, but a crop overlapping one is not a negative either, and a detection on one is
neither right nor wrong in evaluation. Only `x y w h` is required, so a plain four-column
box file works too.

Landmark files: one face per line, `file x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 x y w h` — the five
points in `Face.landmarks` order (image-left eye, image-right eye, nose, image-left mouth
corner, image-right mouth corner), then the face box. Blank lines and `#` comments are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import cv2
import numpy as np

from ..errors import DataError


@dataclass
class ImageFaces:
    """The faces of one image; boxes are (x1, y1, x2, y2) float pixels."""

    file: str
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    ignore: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    #: (K, 5, 2) points of faces with landmarks, and their boxes (K, 4)
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))
    point_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    #: listed in the landmark file only (its images may live in another folder)
    landmark_only: bool = False

    @property
    def valid_boxes(self) -> np.ndarray:
        return self.boxes[~self.ignore]

    def all_boxes(self) -> Tuple[np.ndarray, np.ndarray]:
        """Boxes of box-file and landmark faces with their ignore flags: a crop must stay clear
        of every known face to be a negative."""
        return (np.concatenate([self.boxes, self.point_boxes]),
                np.concatenate([self.ignore, np.zeros(len(self.point_boxes), bool)]))


def _lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, stripped text) of the lines that are not blank or comments."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DataError(f"cannot read '{path}': {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def _numbers(fields: List[str], path: Path, number: int, what: str) -> List[float]:
    try:
        return [float(v) for v in fields]
    except ValueError:
        raise DataError(f"{path} line {number}: {what} must be numbers, got "
                        f"'{' '.join(fields)}'") from None


def read_boxes(path: Path) -> List[ImageFaces]:
    """The images and face boxes of a WIDER FACE style box file."""
    path = Path(path)
    lines, out = list(_lines(path)), []
    i = 0
    while i < len(lines):
        number, file = lines[i]
        if i + 1 >= len(lines):
            raise DataError(f"{path} line {number}: image '{file}' has no face count line")
        count_no, count_text = lines[i + 1]
        if not count_text.isdigit():
            raise DataError(f"{path} line {count_no}: expected the face count of '{file}', "
                            f"got '{count_text}'")
        count = int(count_text)
        rows = lines[i + 2:i + 2 + max(count, 1)]
        if count == 0 and rows and _is_zero_row(rows[0][1]):
            rows, step = [], 3  # WIDER writes one all-zero line after a count of 0
        else:
            rows, step = rows[:count], 2 + count
        if len(rows) < count:
            raise DataError(f"{path} line {count_no}: '{file}' announces {count} faces but "
                            f"the file ends after {len(rows)}")
        boxes, ignore = [], []
        for row_no, row in rows:
            fields = row.split()
            if len(fields) not in (4, 10):
                raise DataError(f"{path} line {row_no}: expected 'x y w h' or the 10 WIDER "
                                f"FACE columns, got {len(fields)} fields: '{row}'")
            x, y, w, h, *flags = _numbers(fields, path, row_no, "box values")
            if w < 0 or h < 0:
                raise DataError(f"{path} line {row_no}: negative box size {w} x {h}")
            boxes.append((x, y, x + w, y + h))
            ignore.append(bool(flags and flags[3]) or w == 0 or h == 0)
        out.append(ImageFaces(file, np.array(boxes, np.float32).reshape(-1, 4),
                              np.array(ignore, bool)))
        i += step
    if not out:
        raise DataError(f"box file '{path}' lists no images")
    return out


def _is_zero_row(text: str) -> bool:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        return False
    return len(values) == 10 and not any(values)


def read_landmarks(path: Path) -> Dict[str, ImageFaces]:
    """Faces with five points, by image file."""
    path = Path(path)
    out: Dict[str, ImageFaces] = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 15:
            raise DataError(f"{path} line {number}: expected 'file x1 y1 ... x5 y5 x y w h' "
                            f"(15 fields), got {len(fields)}")
        values = _numbers(fields[1:], path, number, "points and box")
        x, y, w, h = values[10:]
        if w <= 0 or h <= 0:
            raise DataError(f"{path} line {number}: box size must be positive, got {w} x {h}")
        faces = out.setdefault(fields[0], ImageFaces(fields[0], landmark_only=True))
        faces.points = np.concatenate([faces.points,
                                       np.array(values[:10], np.float32).reshape(1, 5, 2)])
        faces.point_boxes = np.concatenate([faces.point_boxes,
                                            np.array([[x, y, x + w, y + h]], np.float32)])
    if not out:
        raise DataError(f"landmark file '{path}' lists no faces")
    return out


def merge(boxes: List[ImageFaces], landmarks: Dict[str, ImageFaces]) -> List[ImageFaces]:
    """Box-file images with the landmark faces of the same file, plus landmark-only images."""
    out = []
    for faces in boxes:
        extra = landmarks.get(faces.file)
        if extra is not None:
            faces = ImageFaces(faces.file, faces.boxes, faces.ignore, extra.points,
                               extra.point_boxes)
        out.append(faces)
    known = {f.file for f in boxes}
    return out + [f for name, f in landmarks.items() if name not in known]


def read_rgb(root: Path, file: str) -> np.ndarray:
    """The RGB uint8 image `root/file`; a missing or unreadable file is a DataError."""
    path = Path(root) / file
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image '{path}'")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
