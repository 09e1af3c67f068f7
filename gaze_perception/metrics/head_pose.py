"""Head-pose accuracy on AFLW2000-3D-style data: mean absolute error per angle (degrees) over
the usual protocol (images whose three labelled angles all lie within 99 degrees), overall and
per yaw band.

Data: a folder with the images and `labels_project.csv` (`file,yaw_deg,pitch_deg,roll_deg` in
this project's convention, `core/head_pose.py`), as `../shared/data/headpose_aflw2000_dev`.
Per image the face nearest the image centre is scored; images where no face is found are
counted as missed (and not in the means).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..core.csv_io import dict_reader

PROTOCOL_MAX_DEG = 99.0
YAW_BANDS = ((0.0, 30.0), (30.0, 60.0), (60.0, 99.0))
AXES = ("yaw", "pitch", "roll")


def read_labels(data_dir: Path) -> Dict[str, Tuple[float, float, float]]:
    path = Path(data_dir) / "labels_project.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no labels_project.csv in {data_dir}")
    with open(path, newline="") as fh:
        return {r["file"]: (float(r["yaw_deg"]), float(r["pitch_deg"]), float(r["roll_deg"]))
                for r in dict_reader(fh, str(path))}


def in_protocol(label: Sequence[float]) -> bool:
    return all(abs(v) <= PROTOCOL_MAX_DEG for v in label)


def split(files: Iterable[str], part: str) -> List[str]:
    """`fit`: images with an even number (imageNNNNN), what the shipped face reference was fitted
    on; `test`: the odd ones, never fitted; `all`."""
    files = sorted(files)
    if part == "all":
        return files
    if part not in ("fit", "test"):
        raise ValueError(f"split must be fit, test or all, got {part!r}")
    return [f for f in files if _number(f) % 2 == (0 if part == "fit" else 1)]


def _number(file: str) -> int:
    """The image number in a name like imageNNNNN.jpg (0 without digits)."""
    return int("".join(ch for ch in Path(file).stem if ch.isdigit()) or 0)


@dataclass
class HeadPoseScore:
    scored: int = 0
    missed: List[str] = field(default_factory=list)
    mae: Tuple[float, float, float] = (math.nan,) * 3
    bands: List[Tuple[str, int, float]] = field(default_factory=list)   # (band, n, mean MAE)

    @property
    def mean(self) -> float:
        return float(np.mean(self.mae))

    def table(self) -> str:
        rows = ["| set | faces | yaw | pitch | roll | mean |", "|---|---|---|---|---|---|",
                f"| all (protocol) | {self.scored} | " +
                " | ".join(f"{v:.2f}" for v in self.mae) + f" | {self.mean:.2f} |"]
        for band, n, m in self.bands:
            rows.append(f"| yaw {band} | {n} | | | | {m:.2f} |" if n else
                        f"| yaw {band} | 0 | | | | - |")
        rows.append(f"missed (no face found): {len(self.missed)}")
        return "\n".join(rows)


def score(estimates: Dict[str, Optional[Tuple[float, float, float]]],
          labels: Dict[str, Tuple[float, float, float]]) -> HeadPoseScore:
    """Scores per-file (yaw, pitch, roll) estimates in degrees (None = no face) against labels,
    on the protocol images among them."""
    files = [f for f in estimates if in_protocol(labels[f])]
    found = [f for f in files if estimates[f] is not None]
    out = HeadPoseScore(scored=len(found), missed=[f for f in files if estimates[f] is None])
    if not found:
        return out
    err = np.abs(np.array([estimates[f] for f in found]) - np.array([labels[f] for f in found]))
    out.mae = tuple(float(v) for v in err.mean(0))
    yaw = np.abs(np.array([labels[f][0] for f in found]))
    for lo, hi in YAW_BANDS:
        m = (yaw >= lo) & (yaw < hi) if hi < PROTOCOL_MAX_DEG else (yaw >= lo) & (yaw <= hi)
        out.bands.append((f"{lo:g}-{hi:g}", int(m.sum()),
                          float(err[m].mean()) if m.any() else math.nan))
    return out


def central_face(faces: Sequence, width: int, height: int):
    """The face whose centre is nearest the image centre, or None."""
    return min(faces, default=None, key=lambda f: math.hypot(f.center[0] - width / 2.0,
                                                              f.center[1] - height / 2.0))


def estimate_folder(data_dir: Path, files: Sequence[str],
                    estimate: Callable[[np.ndarray], Optional[Tuple[float, float, float]]],
                    progress: bool = False) -> Dict[str, Optional[Tuple[float, float, float]]]:
    """estimate(rgb) -> (yaw, pitch, roll) in degrees or None, for every file."""
    import cv2
    from tqdm import tqdm

    out = {}
    for f in tqdm(files, desc="head pose", unit="image", disable=not progress):
        bgr = cv2.imread(str(Path(data_dir) / f))
        out[f] = None if bgr is None else estimate(np.ascontiguousarray(bgr[:, :, ::-1]))
    return out
