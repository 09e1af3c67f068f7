"""Eye state per face from landmark-aligned eye crops and an eye-state checkpoint.

Default weights: the shipped `eye_state_default` (our `eyenet` trained on 24x24 gray crops); any
checkpoint written by `gaze-perception train eye-state` (own or timm architecture) works.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..core.device import resolve_device
from ..core.eye_crops import LEFT, RIGHT, EyeCropError, crop_eye
from ..core.image import check_rgb
from ..core.types import CLOSED, OPEN, UNKNOWN, EyeState, Face
from ..models.eye_decision import (DEFAULT_THRESHOLD, DEFAULT_UNKNOWN_BELOW, check_thresholds,
                                   decide)
from ..models.eye_state import load_eye_model, to_tensor
from .base import EyeStateEstimator, check_batch
from .onnx_runtime import OrtModule, check_runtime, fingerprint, onnx_models
from .onnx_runtime import export as onnx_export

log = logging.getLogger(__name__)

#: pixels between the eye landmarks under which eyes are `unknown` (measured, README "Eye state")
MIN_EYE_DISTANCE = 18.0


class TimmEyeState(EyeStateEstimator):
    """Crops both eyes of every face (geometry in `core.eye_crops`), classifies all crops of a
    batch of frames in one forward pass and reports, per face, each eye and both together.

    `left`/`right` follow the landmarks: image-left and image-right eye. An eye whose crop is
    impossible (eye outside the frame, degenerate landmarks) is unknown with probability NaN.
    The combined state applies the same rule to the mean probabilities of the eyes that were
    seen, so one open and one closed eye give an uncertain, usually unknown, face.

    `min_eye_distance` (pixels between the two eye landmarks, default MIN_EYE_DISTANCE): a
    smaller face is too small to see its eyes and both are `unknown` (NaN), never `closed`
    (the 24x24 model reads a blurred open eye as closed: on real faces downscaled so, open eyes
    started reading `closed` below about 16 px, see the README).

    `runtime` torch (default) or onnxruntime: the classifier exported to ONNX from the loaded
    weights and run by ONNX Runtime (`backends/onnx_runtime.py`), crops and decisions
    unchanged; `onnx_dir` takes the file of `gaze-perception export eye-state` (exported from
    the same weights) instead.
    """

    def __init__(self, *, weights: Union[str, Path] = "eye_state_default",
                 weights_dir: Optional[Path] = None, device: str = "auto",
                 threshold: float = DEFAULT_THRESHOLD,
                 unknown_below: float = DEFAULT_UNKNOWN_BELOW,
                 min_eye_distance: float = MIN_EYE_DISTANCE, runtime: str = "torch",
                 onnx_dir: Optional[Path] = None) -> None:
        self.runtime = check_runtime(runtime)
        check_thresholds(threshold, unknown_below)
        if not 0.0 <= min_eye_distance < 1e6:
            raise ValueError(f"min_eye_distance must be >= 0 pixels, got {min_eye_distance}")
        self.min_eye_distance = float(min_eye_distance)
        self.threshold, self.unknown_below = float(threshold), float(unknown_below)
        self.device = resolve_device(device)
        self.weights = str(weights)
        self.model, self.meta = load_eye_model(weights, weights_dir, self.device)
        if runtime == "onnxruntime":
            (model,), mark = onnx_models(["eye_state"], onnx_dir, lambda: [self.export_onnx()],
                                         self.model)
            self.model = OrtModule(model, single=True, weights=mark)

    def export_onnx(self, folder: Optional[Path] = None) -> bytes:
        """The classifier as an ONNX model (dynamic batch of crops), written to
        folder/eye_state.onnx when `folder` is given."""
        m = self.meta
        example = torch.zeros(1, m.in_chans, m.input_size, m.input_size, device=self.device)
        return onnx_export(self.model, [example], ["logits"],
                           {"input": {0: "n"}, "logits": {0: "n"}},
                           None if folder is None else Path(folder) / "eye_state.onnx",
                           weights=fingerprint(self.model))

    def describe(self) -> str:
        return (f"TimmEyeState(weights={self.weights}, arch={self.meta.arch}, "
                f"device={self.device}, runtime={self.runtime}, threshold={self.threshold:g}, "
                f"unknown_below={self.unknown_below:g}, "
                f"min_eye_distance={self.min_eye_distance:g})")

    def estimate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]],
                 ctx=None) -> List[List[EyeState]]:
        check_batch(images, faces)
        crops, slots = [], []
        for i, (image, face_list) in enumerate(zip(images, faces)):
            check_rgb(image)
            for j, face in enumerate(face_list):
                if not self._big_enough(face):
                    continue
                for eye in (LEFT, RIGHT):
                    try:
                        crops.append(crop_eye(image, face.landmarks, eye, self.meta.input_size,
                                              self.meta.crop_scale, self.meta.in_chans == 1))
                    except EyeCropError as exc:
                        log.debug("image %d face %d: %s", i, j, exc)
                        continue
                    slots.append((i, j, eye))
        probs = dict(zip(slots, self._classify(crops)))
        return [[self._face_state(j, face, probs.get((i, j, LEFT)), probs.get((i, j, RIGHT)))
                 for j, face in enumerate(face_list)] for i, face_list in enumerate(faces)]

    def _big_enough(self, face: Face) -> bool:
        if len(face.landmarks) < 2:
            return False
        (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
        return math.hypot(rx - lx, ry - ly) >= self.min_eye_distance

    @torch.inference_mode()
    def _classify(self, crops: List[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, len(self.meta.classes)))
        x = to_tensor(np.stack(crops), self.meta).to(self.device)
        return torch.softmax(self.model(x).float(), dim=1).cpu().numpy()

    def _state(self, p: Optional[np.ndarray]) -> Tuple[str, float]:
        """(state, P(closed)) of one probability vector; (unknown, NaN) when there is none."""
        if p is None:
            return UNKNOWN, math.nan
        (index,), (unknown,) = decide(p[None], self.threshold, self.unknown_below)
        return (UNKNOWN if unknown else (OPEN, CLOSED)[index]), float(p[1])

    def _face_state(self, index: int, face: Face, left: Optional[np.ndarray],
                    right: Optional[np.ndarray]) -> EyeState:
        seen = [p for p in (left, right) if p is not None]
        both = self._state(np.mean(seen, axis=0) if seen else None)
        (l_state, l_prob), (r_state, r_prob) = self._state(left), self._state(right)
        return EyeState(face_index=index, state=both[0], closed_prob=both[1], left=l_state,
                        right=r_state, left_closed_prob=l_prob, right_closed_prob=r_prob,
                        track_id=face.track_id)
