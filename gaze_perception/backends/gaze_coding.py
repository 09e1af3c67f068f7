"""`icatcher`: infant gaze coding per frame (away / left / right / no_face), iCatcher+-style.

Per frame the backend picks the infant's face (`select`, iCatcher+'s rule by default) and
classifies a square crop of it. It is stateless: temporal smoothing belongs to whoever sees
the stream (`core.gaze_coding.Smoother`, used by the node and `code-video`). It needs a
checkpoint written by `gaze-perception train gaze-coding`; iCatcher+'s own published models
(five-frame RegNet/ResNet with box features, GPL-3.0) are a different architecture.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch

from ..core.device import resolve_device
from ..core.face_crops import CropError, crop_square
from ..core.gaze_coding import FrameCode, check_selection, select_infant
from ..core.image import check_rgb
from ..models.face_crop import to_input
from ..models.gaze_coding import load_coding_model
from .base import GazeCoder, check_batch
from .onnx_runtime import OrtModule, check_runtime, fingerprint, onnx_models
from .onnx_runtime import export as onnx_export


class InfantGazeCoder(GazeCoder):
    """`select`: which face is the infant (`core.gaze_coding.SELECTIONS`); `weights`: a
    gaze-coding checkpoint file or manifest name. `runtime` torch (default) or onnxruntime: the
    classifier exported to ONNX from the loaded weights and run by ONNX Runtime
    (`backends/onnx_runtime.py`), crops and codes unchanged; `onnx_dir` takes the file of
    `gaze-perception export gaze-coding` (exported from the same weights) instead."""

    def __init__(self, *, weights: Union[str, Path, None] = None,
                 weights_dir: Optional[Path] = None, device: str = "auto",
                 select: str = "icatcher", batch_size: int = 32, runtime: str = "torch",
                 onnx_dir: Optional[Path] = None) -> None:
        self.runtime = check_runtime(runtime)
        if not weights:
            raise ValueError("the icatcher backend needs `weights`: a checkpoint written by "
                             "`gaze-perception train gaze-coding` (none ship with the package)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.select = check_selection(select)
        self.device = resolve_device(device)
        self.weights, self.batch_size = str(weights), int(batch_size)
        self.model, self.meta = load_coding_model(weights, weights_dir, self.device)
        if runtime == "onnxruntime":
            (model,), mark = onnx_models(["gaze_coding"], onnx_dir,
                                         lambda: [self.export_onnx()], self.model)
            self.model = OrtModule(model, single=True, weights=mark)

    def export_onnx(self, folder: Optional[Path] = None) -> bytes:
        """The classifier as an ONNX model (dynamic batch of crops), written to
        folder/gaze_coding.onnx when `folder` is given."""
        size = self.meta.input_size
        return onnx_export(self.model, [torch.zeros(1, 3, size, size, device=self.device)],
                           ["logits"], {"input": {0: "n"}, "logits": {0: "n"}},
                           None if folder is None else Path(folder) / "gaze_coding.onnx",
                           weights=fingerprint(self.model))

    def describe(self) -> str:
        return (f"InfantGazeCoder(weights={self.weights}, arch={self.meta.arch}, "
                f"select={self.select}, device={self.device}, runtime={self.runtime})")

    def estimate(self, images, faces, ctx=None):
        check_batch(images, faces)
        crops, chosen = [], []
        for image, face_list in zip(images, faces):
            check_rgb(image)
            index = select_infant(face_list, self.select)
            if index is not None:
                f = face_list[index]
                try:
                    crops.append(crop_square(image, (f.x, f.y, f.width, f.height),
                                             self.meta.input_size, self.meta.crop_scale))
                except CropError:
                    index = None
            chosen.append(index)
        probs = iter(self._classify(crops))
        return [FrameCode.no_face() if k is None else
                FrameCode.from_probs(face_list[k], k, next(probs))
                for k, face_list in zip(chosen, faces)]

    @torch.inference_mode()
    def _classify(self, crops: List[np.ndarray]) -> np.ndarray:
        out = [np.zeros((0, 3), np.float32)]
        for start in range(0, len(crops), self.batch_size):
            x = to_input(np.stack(crops[start:start + self.batch_size]), self.meta.mean,
                         self.meta.std).to(self.device)
            out.append(torch.softmax(self.model(x).float(), dim=1).cpu().numpy())
        return np.concatenate(out)
