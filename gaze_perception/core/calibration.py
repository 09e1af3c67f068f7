"""Camera calibration files: the ROS camera_calibration YAML (`camera_matrix: {rows, cols,
data}`, ...) and OpenCV FileStorage YAML (`!!opencv-matrix` values, keys `camera_matrix` or `K`,
`distortion_coefficients` or `D`), which plain YAML parsers refuse."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

import cv2
import numpy as np
from .safe_yaml import MAX_BYTES, load_yaml_text


@dataclass
class Calibration:
    width: int
    height: int
    k: List[float]  # 3x3 row-major
    d: List[float]
    r: List[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    p: List[float] = ()  # 3x4 row-major; from K when the file has none
    distortion_model: str = "plumb_bob"

    def __post_init__(self):
        if len(self.k) != 9 or len(self.r) != 9 or len(self.p) not in (0, 12):
            raise ValueError("calibration: camera_matrix must be 3x3, rectification 3x3, "
                             "projection 3x4")
        if not self.p:
            k = self.k
            self.p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0]


def load_calibration(path) -> Calibration:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"calibration file '{p}' " + (
            "is a folder; expected a YAML file" if p.is_dir() else "does not exist"))
    if p.stat().st_size > MAX_BYTES:
        raise ValueError(f"calibration file '{p}' is {p.stat().st_size} bytes, over the "
                         f"{MAX_BYTES} allowed; refused")
    text = p.read_text()
    if "!!opencv-matrix" in text or text.lstrip().startswith("%YAML:"):
        return _from_opencv(p)
    data = load_yaml_text(text, f"calibration file '{p}'") or {}
    try:
        mat = lambda key: [float(v) for v in data[key]["data"]]  # noqa: E731
        return Calibration(int(data["image_width"]), int(data["image_height"]),
                           mat("camera_matrix"), mat("distortion_coefficients"),
                           mat("rectification_matrix") if "rectification_matrix" in data
                           else Calibration.r,
                           mat("projection_matrix") if "projection_matrix" in data else (),
                           str(data.get("distortion_model", "plumb_bob")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"'{p}' is not a camera_calibration YAML: {exc}") from None


def _from_opencv(path: Path) -> Calibration:
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        def node(*names):
            for name in names:
                n = fs.getNode(name)
                if not n.empty():
                    return n
            raise ValueError(f"'{path}' has none of {names}")
        k, d = node("camera_matrix", "K").mat(), node("distortion_coefficients", "D").mat()
        return Calibration(int(node("image_width").real()), int(node("image_height").real()),
                           np.asarray(k, float).ravel().tolist(),
                           np.asarray(d, float).ravel().tolist())
    finally:
        fs.release()
