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
from typing import Callable, Dict, List, Sequence, Tuple, Union

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
           dynamic: Dict[str, Dict[int, str]], path: Union[str, Path, None] = None,
           inputs: Sequence[str] = ("input",)) -> bytes:
    """`module` as an ONNX model (opset 17; `inputs` and `outputs` named, one input `input`
    by default), written to `path` when given; returns the model's bytes."""
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and trace notes
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), tuple(example), buf, dynamo=False, opset_version=17,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=dynamic)
    data = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


class OrtModule:
    """An ONNX model run by onnxruntime, called like the torch module it was exported from:
    tensors in (one per model input, in order; floating ones as float32, integer ones kept), a
    tuple of tensors (on the first input's device) out; with `single`, the one output itself
    (for modules that return a tensor)."""

    def __init__(self, model: Union[bytes, str, Path], single: bool = False) -> None:
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
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.input = self.inputs[0]
        self.single = bool(single)

    def __call__(self, *xs: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
        if len(xs) != len(self.inputs):
            raise TypeError(f"the ONNX model takes {len(self.inputs)} inputs "
                            f"({', '.join(self.inputs)}), got {len(xs)}")
        feed = {name: np.ascontiguousarray(
            x.detach().to("cpu", torch.float32 if x.is_floating_point() else x.dtype).numpy())
            for name, x in zip(self.inputs, xs)}
        out = tuple(torch.from_numpy(o).to(xs[0].device) for o in self.session.run(None, feed))
        return out[0] if self.single else out


def onnx_models(names: Sequence[str], onnx_dir: Union[str, Path, None],
                export_now: Callable[[], Sequence[bytes]]) -> List[Union[bytes, Path]]:
    """The ONNX models of a backend with `runtime: onnxruntime`: `onnx_dir`/{name}.onnx when a
    folder is given (the files of `gaze-perception export`), else `export_now()`, the models
    exported from the weights just loaded."""
    if onnx_dir:
        return [Path(onnx_dir) / f"{name}.onnx" for name in names]
    return list(export_now())
