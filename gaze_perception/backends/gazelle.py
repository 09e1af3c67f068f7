"""Gaze-LLE gaze-target backend: where every person in a frame looks, from the official weights.

All frames of a call share one backbone pass and one decoder pass (every head of every frame);
the point is the heatmap's argmax scaled to the image, as the published metrics read it.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..core import weights
from ..core.device import resolve_device
from ..core.precision import resolve_precision
from ..core.types import Face, GazeTarget
from ..models.gazelle import IN_SIZE, VARIANTS, create_gazelle, image_of_heads, preprocess
from .base import GazeTargetEstimator, check_batch
from .onnx_runtime import OrtModule, check_runtime, fingerprint, onnx_models
from .onnx_runtime import export as onnx_export

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class GazeLLEBackend(GazeTargetEstimator):
    """Gaze-LLE on a frozen DINOv2 (`variant` vitb14 | vitl14).

    `backbone_weights` / `decoder_weights` are manifest names or file paths (default: the
    official `dinov2_<variant>_pretrain` and `gazelle_dinov2_<variant>_inout`). `precision`
    auto | fp32 | bf16 | fp16 (fp16 on CUDA only) runs the model under autocast, the frozen
    backbone's weights stored in that precision; `auto` (the default, core/precision.py) is
    fp16 on CUDA, bf16 on CPUs with AMX / AVX512_BF16, fp32 otherwise (`self.precision` is the
    one chosen). `heatmaps=True` attaches the 64x64 heatmap to each
    target; `subpixel=True` refines the argmax with a parabola through its neighbours (off by
    default: the published metrics use the raw argmax).
    A target whose in/out probability is below `inout_threshold` keeps its point (for display)
    but gets score 0: the model says the person looks outside the frame.
    `runtime` torch (default) or onnxruntime: the backbone and the decoder exported to ONNX
    from the loaded weights (`export_onnx`) and run by ONNX Runtime (`backends/onnx_runtime.py`),
    preprocessing and points unchanged; the exported graphs are fp32 (precision auto or fp32)
    and the decoder runs its first block per head (no sharing: shapes cannot depend on the
    boxes). `onnx_dir` takes the files of `gaze-perception export gazelle` (exported from the
    same weights) instead.
    """


    def __init__(self, variant: str = "vitb14", backbone_weights: Optional[str] = None,
                 decoder_weights: Optional[str] = None, weights_dir: Optional[Path] = None,
                 device: str = "auto", precision: str = "auto", heatmaps: bool = False,
                 subpixel: bool = False, inout_threshold: float = 0.5, runtime: str = "torch",
                 onnx_dir: Optional[Path] = None) -> None:
        self.runtime = check_runtime(runtime)
        if runtime == "onnxruntime" and precision not in ("auto", "fp32"):
            raise ValueError(f"precision={precision} is for runtime=torch; runtime=onnxruntime "
                             "runs the exported fp32 graphs (use precision auto or fp32)")
        if variant not in VARIANTS:
            raise ValueError(f"unknown Gaze-LLE variant '{variant}'; use vitb14 or vitl14")
        if not 0.0 <= inout_threshold <= 1.0:
            raise ValueError(f"inout_threshold must lie in [0, 1], got {inout_threshold}")
        self.device = resolve_device(device)
        precision = ("fp32" if runtime == "onnxruntime" else
                     resolve_precision(precision, self.device.type))
        self.variant, self.precision = variant, precision
        self.heatmaps, self.subpixel = bool(heatmaps), bool(subpixel)
        self.inout_threshold = float(inout_threshold)
        backbone = weights.locate(backbone_weights or f"dinov2_{variant}_pretrain", weights_dir,
                                  "DINOv2 backbone weights")
        decoder = weights.locate(decoder_weights or f"gazelle_dinov2_{variant}_inout",
                                 weights_dir, "Gaze-LLE decoder weights")
        self.model = create_gazelle(variant, backbone, decoder).to(self.device)
        if runtime == "onnxruntime":
            (back, dec), mark = onnx_models(["gazelle_backbone", "gazelle_decoder"], onnx_dir,
                                            self.export_onnx, self.model)
            self.model.backbone = _OrtBackbone(back, mark)
            self.model.decoder = _OrtDecoder(dec, self.model.decoder, mark)
        if precision != "fp32":
            # The frozen backbone's matmul weights are stored in the low precision: autocast
            # would otherwise cast its ~86 M (ViT-B) weights again on every frame. Norms, the
            # position embedding and so the residual stream stay fp32 (a low-precision stream
            # rounds once per block: 40 % more heatmap error for no speed). The decoder stays fp32.
            for module in self.model.backbone.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    module.to(PRECISIONS[precision])

    def export_onnx(self, folder: Optional[Path] = None) -> List[bytes]:
        """The DINOv2 backbone (images (B, 3, 448, 448) -> patch features (B, C, 32, 32)) and
        the decoder (features, head maps (P, 32, 32), each head's image index (P,) ->
        heatmaps (P, 64, 64)[, in/out (P,)]) as ONNX models with dynamic B and P, written to
        folder/gazelle_backbone.onnx and gazelle_decoder.onnx when `folder` is given."""
        dec = self.model.decoder
        images = torch.zeros(2, 3, IN_SIZE, IN_SIZE, device=self.device)
        features = self.model.backbone.forward_patch_features(images[:1]).float().expand(
            2, -1, -1, -1)
        maps = torch.zeros(3, dec.grid, dec.grid, device=self.device)
        maps[:, 4:9, 6:10] = 1.0
        image = torch.tensor([0, 0, 1], device=self.device)
        outputs = ["heatmaps", "inout"] if dec.inout else ["heatmaps"]
        files = ([None, None] if folder is None else
                 [Path(folder) / "gazelle_backbone.onnx", Path(folder) / "gazelle_decoder.onnx"])
        mark = fingerprint(self.model)  # both files: the weights of backbone and decoder
        return [onnx_export(_PatchFeatures(self.model.backbone), [images], ["features"],
                            {"input": {0: "b"}, "features": {0: "b"}}, files[0],
                            weights=mark),
                onnx_export(_HeadsGraph(dec), [features, maps, image], outputs,
                            {"features": {0: "b"}, "maps": {0: "p"}, "image": {0: "p"},
                             **{k: {0: "p"} for k in outputs}},
                            files[1], ["features", "maps", "image"], mark)]

    def describe(self) -> str:
        return (f"GazeLLEBackend(variant={self.variant}, device={self.device}, "
                f"runtime={self.runtime}, precision={self.precision}, "
                f"inout={self.model.decoder.inout})")

    @torch.inference_mode()
    def estimate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]],
                 ctx=None) -> List[List[GazeTarget]]:
        check_batch(images, faces)
        results: List[List[GazeTarget]] = [[] for _ in images]
        frames = [i for i, f in enumerate(faces) if f]  # frames without faces need no pass
        if not frames:
            return results
        sizes = [images[i].shape[1::-1] for i in frames]  # (width, height)
        boxes = [[_normalised_box(f, w, h) for f in faces[i]] for i, (w, h) in zip(frames, sizes)]
        x = preprocess([images[i] for i in frames], device=self.device)
        with torch.autocast(self.device.type, dtype=PRECISIONS[self.precision],
                            enabled=self.precision != "fp32"):
            out = self.model(x, boxes)
        heat = out.heatmaps.float().cpu().numpy()
        inout = out.inout.float().cpu().numpy() if out.inout is not None else None
        k = 0
        for i, (w, h) in zip(frames, sizes):
            for j, face in enumerate(faces[i]):
                results[i].append(self._target(j, face, heat[k], None if inout is None
                                               else float(inout[k]), w, h))
                k += 1
        return results

    def _target(self, index: int, face: Face, heat: np.ndarray, inout: Optional[float],
                width: int, height: int) -> GazeTarget:
        col, row = _peak(heat, self.subpixel)
        inout = 1.0 if inout is None else inout  # no in/out head: the model assumes in-frame
        score = float(heat.max()) if inout >= self.inout_threshold else 0.0
        return GazeTarget(face_index=index, track_id=face.track_id, inout=inout, score=score,
                          point=(col / heat.shape[1] * width, row / heat.shape[0] * height),
                          heatmap=heat.copy() if self.heatmaps else None)


class _PatchFeatures(nn.Module):
    """The backbone's `forward_patch_features` as a module's forward (what is exported)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_patch_features(images)


class _HeadsGraph(nn.Module):
    """The decoder on each head's image index (`forward_heads`, what is exported)."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, features, maps, image):
        heat, inout = self.decoder.forward_heads(features, maps, image)
        return heat if inout is None else (heat, inout)


class _OrtBackbone(nn.Module):
    """The exported backbone in the model's place (ONNX Runtime)."""

    def __init__(self, model, weights: Optional[str]) -> None:
        super().__init__()
        self.session = OrtModule(model, single=True, weights=weights)

    def forward_patch_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.session(images)


class _OrtDecoder(nn.Module):
    """The exported decoder in the model's place (ONNX Runtime): called like the decoder."""

    def __init__(self, model, decoder: nn.Module, weights: Optional[str]) -> None:
        super().__init__()
        self.session = OrtModule(model, weights=weights)
        self.grid, self.inout = decoder.grid, decoder.inout

    def forward(self, features, maps, people_per_image):
        counts = torch.as_tensor(list(people_per_image), dtype=torch.long)
        out = self.session(features, maps, image_of_heads(counts))
        return out[0], (out[1] if self.inout else None)


def _normalised_box(face: Face, width: int, height: int) -> Tuple[float, float, float, float]:
    """Head box as (xmin, ymin, xmax, ymax) in [0, 1]; clipped, since a box reaching past the
    border would index the head map from the wrong end."""
    x0, y0, x1, y1 = face.xyxy
    return (min(max(x0 / width, 0.0), 1.0), min(max(y0 / height, 0.0), 1.0),
            min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0))


def _peak(heat: np.ndarray, subpixel: bool) -> Tuple[float, float]:
    """(column, row) of the first maximum; with `subpixel`, the vertex of a parabola through
    the maximum and its two neighbours on each axis, measured from the cell centre."""
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    if not subpixel:
        return float(col), float(row)
    return col + 0.5 + _vertex(heat[row, :], col), row + 0.5 + _vertex(heat[:, col], row)


def _vertex(line: np.ndarray, i: int) -> float:
    if i == 0 or i == len(line) - 1:
        return 0.0
    left, mid, right = (float(v) for v in line[i - 1:i + 2])
    curvature = left - 2.0 * mid + right
    return 0.0 if curvature >= 0 else float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
