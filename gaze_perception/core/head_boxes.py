"""VideoAttentionTarget person files: the one parser of the format, and the given head boxes
per frame (the gaze benchmarks' protocol) that replace a face detector.

A person file has no header and one row per frame: `frame,xmin,ymin,xmax,ymax[,gazex,gazey]`
in pixels, gaze `-1,-1` when the person looks outside the frame. `run --faces`, `bag eval`
and Gaze-LLE training all read it through `read_vat_rows`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .csv_io import reader as csv_reader
from .types import Face

VAT_COLUMNS = "frame, xmin, ymin, xmax, ymax, gazex, gazey"


class AnnotationError(ValueError):
    pass


@dataclass(frozen=True)
class VatRow:
    frame: str                                # frame name, index or stamp, as written
    box: Tuple[float, float, float, float]    # xmin, ymin, xmax, ymax as written
    gaze: Optional[Tuple[float, float]]       # pixels as written; None when not given
    where: str                                # "file:line", for messages


def read_vat_rows(path, gaze_required: bool = False,
                  nonempty_boxes: bool = True) -> List[VatRow]:
    """The rows of one person file. `gaze_required`: every row has the two gaze columns (the
    released dataset); `nonempty_boxes`: a box with xmax <= xmin or ymax <= ymin is an error
    (the dataset's own preprocessing orders inverted corners instead)."""
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(f"annotation file '{p}' does not exist")
    allowed = (7,) if gaze_required else (5, 7)
    rows = []
    with open(p, newline="") as fh:
        for lineno, row in enumerate(csv_reader(fh, str(p)), 1):
            if not any(v.strip() for v in row):
                continue
            where = f"{p}:{lineno}"
            if len(row) not in allowed or not row[0].strip():
                raise AnnotationError(
                    f"{where}: {len(row)} columns, but a VideoAttentionTarget person file has "
                    f"{' or '.join(map(str, allowed))} ({VAT_COLUMNS}"
                    f"{'' if gaze_required else '; the gaze columns may be left out'}) and "
                    f"names the frame first; got {','.join(row)!r}")
            try:
                values = [float(v) for v in row[1:]]
            except ValueError:
                raise AnnotationError(f"{where}: expected numbers in columns 2-{len(row)}, got "
                                      f"{','.join(row[1:])!r}") from None
            x1, y1, x2, y2 = values[:4]
            if nonempty_boxes and (x2 <= x1 or y2 <= y1):
                raise AnnotationError(f"{where}: empty box ({x1},{y1},{x2},{y2})")
            rows.append(VatRow(row[0].strip(), (x1, y1, x2, y2),
                               (values[4], values[5]) if len(values) == 6 else None, where))
    return rows


class HeadBoxes:
    def __init__(self, by_file: Dict[str, List[Face]]):
        self.by_file = by_file

    def faces_for(self, name: str, index: int) -> List[Face]:
        """Boxes for a frame, looked up by file name (folders) or frame index (videos)."""
        return list(self.by_file.get(name, self.by_file.get(str(index), [])))


def read_head_boxes(paths: Sequence) -> HeadBoxes:
    """Head boxes per frame of VideoAttentionTarget person files, one file per person."""
    by_file: Dict[str, List[Face]] = defaultdict(list)
    for path in paths:
        if not Path(path).is_file():
            raise AnnotationError(f"head-box file '{path}' does not exist")
        for row in read_vat_rows(path):
            by_file[row.frame].append(Face.from_xyxy(*row.box))
    return HeadBoxes(dict(by_file))
