"""Annotation files for `bag eval`.

Heads and gaze: VideoAttentionTarget text, one file per person, no header:
`frame,xmin,ymin,xmax,ymax,gazex,gazey` in pixels, gaze `-1,-1` when the person looks outside
the frame (the gaze columns may be left out). Eye labels: CSV `frame,face_index,label` with
label open|closed|unknown and an optional header row. `frame` is a frame name or index, or a
stamp in seconds, depending on how frames are matched (see evaluate.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ..core.csv_io import reader as csv_reader
from ..core.head_boxes import AnnotationError, read_vat_rows
from ..core.types import EYE_STATES

Box = Tuple[float, float, float, float]  # x1, y1, x2, y2


@dataclass(frozen=True)
class HeadAnnotation:
    frame: str
    person: int  # index of the file it came from
    box: Box
    in_frame: Optional[bool]  # None: gaze not annotated
    gaze: Optional[Tuple[float, float]] = None  # pixels, when in the frame


@dataclass(frozen=True)
class EyeLabel:
    frame: str
    face_index: int
    label: str


def read_heads(paths: Sequence) -> List[HeadAnnotation]:
    rows = []
    for person, path in enumerate(paths):
        for row in read_vat_rows(path):
            inside = None if row.gaze is None else row.gaze[0] >= 0 and row.gaze[1] >= 0
            rows.append(HeadAnnotation(row.frame, person, row.box, inside,
                                       row.gaze if inside else None))
    return rows


def read_eye_labels(path) -> List[EyeLabel]:
    labels = []
    for where, row in _rows(path):
        if not labels and row[0].strip().lower() == "frame":
            continue  # header
        try:
            frame, index, label = row[0].strip(), int(row[1]), row[2].strip().lower()
        except (ValueError, IndexError):
            raise AnnotationError(f"{where}: expected frame,face_index,label, "
                                  f"got {','.join(row)!r}") from None
        if label not in EYE_STATES:
            raise AnnotationError(f"{where}: label '{label}' is not one of {', '.join(EYE_STATES)}")
        labels.append(EyeLabel(frame, index, label))
    return labels


def _rows(path):
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(f"annotation file '{p}' does not exist")
    with open(p, newline="") as fh:
        for lineno, row in enumerate(csv_reader(fh, str(p)), 1):
            if row and row[0].strip():
                yield f"{p}:{lineno}", row
