"""ONNX export of our torch networks and an ONNX Runtime stand-in for them (`runtime:
onnxruntime` of a backend): the session takes and returns torch tensors like the module it
replaces, so a backend's pre- and post-processing stay one code path.

Execution providers: TensorRT, CUDA and OpenVINO when the installed onnxruntime build has them
(in that order), else the CPU; the CPU provider runs with the process's torch thread count
(core/threads.py sets it)."""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Dict, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                       "OpenVINOExecutionProvider", "CPUExecutionProvider")
RUNTIMES = ("torch", "onnxruntime")


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime '{runtime}'; use {' or '.join(RUNTIMES)}")
    if runtime == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise ValueError("runtime=onnxruntime needs the onnxruntime package "
                             "(pip install onnxruntime)") from exc
    return runtime


def export(module: nn.Module, example: Sequence[Tensor], outputs: Sequence[str],
           dynamic: Dict[str, Dict[int, str]], path: Union[str, Path, None] = None) -> bytes:
    """`module` as an ONNX model (opset 17; input `input`, `outputs` named), written to `path`
    when given; returns the model's bytes."""
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and trace notes
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), tuple(example), buf, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=list(outputs),
                          dynamic_axes=dynamic)
    data = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


class OrtModule:
    """An ONNX model run by onnxruntime, called like the torch module it was exported from:
    a float32 tensor in, a tuple of tensors (on the input's device) out."""

    def __init__(self, model: Union[bytes, str, Path]) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        # no busy-waiting between calls: on a machine shared with other model processes the
        # spinning threads take the cores the others need (as OpenMP's do)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        self.providers = [p for p in PREFERRED_PROVIDERS if p in available]
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise FileNotFoundError(f"ONNX model '{model}' not found (`gaze-perception export` "
                                    "writes them)")
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, opts, providers=self.providers)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: Tensor) -> Tuple[Tensor, ...]:
        feed = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        return tuple(torch.from_numpy(o).to(x.device) for o in self.session.run(None,
                                                                                {self.input: feed}))
