"""Appearance-based gaze per face: `l2cs` (yaw, pitch, unit direction) and `itracker` (gaze
point on the screen plane in cm). Both need a checkpoint written by
`gaze-perception train gaze-direction`: no pretrained weights ship with the package.
"""
from __future__ import annotations

import logging
import math
from abc import abstractmethod
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch

from ..core.device import resolve_device
from ..core.face_crops import crop_square
from ..core.gaze_direction import (GRID, GazeDirection, angles_to_vector, eye_boxes,
                                   face_grid)
from ..core.image import check_rgb
from ..core.types import Face
from ..models.face_crop import to_input
from ..models.gaze_direction import load_direction_model
from .base import GazeDirectionEstimator, check_batch
from .onnx_runtime import OrtModule, check_runtime, fingerprint, onnx_models
from .onnx_runtime import export as onnx_export

log = logging.getLogger(__name__)


class _CropModel(GazeDirectionEstimator):
    """Loads a `kind` checkpoint and runs its model over the crops of a batch of frames.

    `runtime` torch (default) or onnxruntime: the network exported to ONNX from the loaded
    weights and run by ONNX Runtime (`backends/onnx_runtime.py`), crops and decoding
    unchanged; `onnx_dir` takes the file of `gaze-perception export <kind>` (exported from the
    same weights) instead."""

    kind = ""

    def __init__(self, *, weights: Union[str, Path, None] = None,
                 weights_dir: Optional[Path] = None, device: str = "auto",
                 batch_size: int = 32, runtime: str = "torch",
                 onnx_dir: Optional[Path] = None) -> None:
        self.runtime = check_runtime(runtime)
        if not weights:
            raise ValueError(f"the {self.kind} backend needs `weights`: a checkpoint written by "
                             "`gaze-perception train gaze-direction` (none ship with the package)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.weights, self.batch_size = str(weights), int(batch_size)
        self.model, self.meta = load_direction_model(weights, self.kind, weights_dir, self.device)
        if runtime == "onnxruntime":
            (model,), mark = onnx_models([self.kind], onnx_dir, lambda: [self.export_onnx()],
                                         self.model)
            self.model = OrtModule(model, single=len(self._outputs) == 1, weights=mark)

    def export_onnx(self, folder: Optional[Path] = None) -> bytes:
        """The network as an ONNX model (dynamic batch), written to folder/<kind>.onnx when
        `folder` is given."""
        example = [x.to(self.device) for x in self._examples()]
        names = [f"input{i}" if i else "input" for i in range(len(example))]
        dynamic = {k: {0: "n"} for k in [*names, *self._outputs]}
        return onnx_export(self.model, example, self._outputs, dynamic,
                           None if folder is None else Path(folder) / f"{self.kind}.onnx", names,
                           fingerprint(self.model))

    def describe(self) -> str:
        return (f"{type(self).__name__}(weights={self.weights}, device={self.device}, "
                f"runtime={self.runtime})")

    def estimate(self, images, faces, ctx=None):
        check_batch(images, faces)
        inputs, slots = [], []
        for i, (image, face_list) in enumerate(zip(images, faces)):
            check_rgb(image)
            for j, face in enumerate(face_list):
                try:
                    inputs.append(self._inputs(image, face))
                except ValueError as exc:  # CropError, or no eye landmarks
                    log.debug("image %d face %d: %s", i, j, exc)
                    continue
                slots.append((i, j))
        outputs = {}
        for start in range(0, len(inputs), self.batch_size):
            chunk = inputs[start:start + self.batch_size]
            batch = [np.stack(parts) for parts in zip(*chunk)]
            outputs.update(zip(slots[start:start + self.batch_size], self._run(batch)))
        return [[self._result(j, face, outputs.get((i, j))) for j, face in enumerate(face_list)]
                for i, face_list in enumerate(faces)]

    #: the network's outputs, as named in its ONNX export
    _outputs: List[str] = []

    @abstractmethod
    def _examples(self) -> List[torch.Tensor]:
        """One face's input to each of the network's inputs (batch of one, the dtypes `_run`
        gives)."""

    @abstractmethod
    def _inputs(self, image: np.ndarray, face: Face) -> tuple:
        """The model inputs of one face as numpy arrays; ValueError when there are none."""

    @abstractmethod
    def _run(self, batch: List[np.ndarray]) -> np.ndarray:
        """Model outputs (N, 2) for stacked inputs."""

    @abstractmethod
    def _result(self, index: int, face: Face, out: Optional[np.ndarray]) -> GazeDirection:
        """The result of one face from its outputs (None: no crop was possible)."""


class L2CSGazeDirection(_CropModel):
    """Yaw and pitch (radians, camera frame, see `core.gaze_direction`) and the unit direction
    of every face, from a square crop around its box (`crop_scale` of the checkpoint)."""

    kind = "l2cs"
    _outputs = ["yaw", "pitch"]

    def _examples(self):
        return [torch.zeros(1, 3, self.meta.input_size, self.meta.input_size)]

    def _inputs(self, image, face):
        box = (face.x, face.y, face.width, face.height)
        return (crop_square(image, box, self.meta.input_size, self.meta.crop_scale),)

    @torch.inference_mode()
    def _run(self, batch):
        yaw, pitch = self.model(to_input(batch[0], self.meta.mean, self.meta.std)
                                .to(self.device))
        bins = self.meta.angle_bins
        return torch.stack([bins.decode(yaw), bins.decode(pitch)], 1).cpu().numpy()

    def _result(self, index, face, out):
        if out is None:
            return GazeDirection(index, track_id=face.track_id)
        yaw, pitch = (math.radians(float(v)) for v in out)
        return GazeDirection(index, yaw, pitch, tuple(angles_to_vector(yaw, pitch).tolist()),
                             track_id=face.track_id)


class ITrackerScreenPoint(_CropModel):
    """Gaze point (x, y) in cm on the screen plane, relative to the camera (GazeCapture's
    XCam, YCam), from the face crop, both eye crops (from the eye landmarks) and the face grid.

    Meaningful only for the screen-and-camera geometry the model was trained on (e.g. a phone
    or tablet held like in GazeCapture).
    """

    kind = "itracker"
    _outputs = ["point"]

    def _examples(self):
        m = self.meta
        return [torch.zeros(1, 3, m.face_size, m.face_size),
                torch.zeros(1, 3, m.eye_size, m.eye_size),
                torch.zeros(1, 3, m.eye_size, m.eye_size),
                torch.zeros(1, GRID, GRID, dtype=torch.uint8)]  # face_grid's raster

    def _inputs(self, image, face):
        box = (face.x, face.y, face.width, face.height)
        left, right = eye_boxes(face)
        m = self.meta
        return (crop_square(image, box, m.face_size, m.crop_scale),
                crop_square(image, left, m.eye_size), crop_square(image, right, m.eye_size),
                face_grid(box, image.shape[1], image.shape[0]))

    @torch.inference_mode()
    def _run(self, batch):
        face, left, right = (to_input(b, self.meta.mean, self.meta.std).to(self.device)
                             for b in batch[:3])
        grid = torch.from_numpy(batch[3]).to(self.device)
        return self.model(face, left, right, grid).float().cpu().numpy()

    def _result(self, index, face, out):
        if out is None:
            return GazeDirection(index, track_id=face.track_id)
        return GazeDirection(index, point_cm=(float(out[0]), float(out[1])),
                             track_id=face.track_id)
