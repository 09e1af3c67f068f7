"""Given head boxes per frame (the gaze benchmarks' protocol) instead of a face detector."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence

from .types import Face


class AnnotationError(ValueError):
    pass


class HeadBoxes:
    def __init__(self, by_file: Dict[str, List[Face]]):
        self.by_file = by_file

    def faces_for(self, name: str, index: int) -> List[Face]:
        """Boxes for a frame, looked up by file name (folders) or frame index (videos)."""
        return list(self.by_file.get(name, self.by_file.get(str(index), [])))


def read_head_boxes(paths: Sequence) -> HeadBoxes:
    """VideoAttentionTarget-style text files (`file,xmin,ymin,xmax,ymax[,gazex,gazey]`, no
    header), one per person."""
    by_file: Dict[str, List[Face]] = defaultdict(list)
    for part in paths:
        p = Path(part)
        if not p.is_file():
            raise AnnotationError(f"head-box file '{p}' does not exist")
        with open(p, newline="") as fh:
            for lineno, row in enumerate(csv.reader(fh), 1):
                if not row or not row[0].strip():
                    continue
                try:
                    x1, y1, x2, y2 = (float(v) for v in row[1:5])
                except (ValueError, IndexError):
                    raise AnnotationError(f"{p}:{lineno}: expected file,xmin,ymin,xmax,ymax, "
                                          f"got {','.join(row)!r}") from None
                if x2 <= x1 or y2 <= y1:
                    raise AnnotationError(f"{p}:{lineno}: empty box ({x1},{y1},{x2},{y2})")
                by_file[row[0].strip()].append(Face.from_xyxy(x1, y1, x2, y2))
    return HeadBoxes(dict(by_file))
