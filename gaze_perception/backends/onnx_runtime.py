"""ONNX export of our torch networks and an ONNX Runtime stand-in for them (`runtime:
onnxruntime` of a backend): the session takes and returns torch tensors like the module it
replaces, so a backend's pre- and post-processing stay one code path.

Execution providers: TensorRT, CUDA and OpenVINO when the installed onnxruntime build has them
(in that order), else the CPU; the CPU provider runs with the process's torch thread count
(core/threads.py sets it)."""
from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                       "OpenVINOExecutionProvider", "CPUExecutionProvider")
RUNTIMES = ("torch", "onnxruntime")
#: metadata key of an exported model: the fingerprint of the weights it was exported from
WEIGHTS_KEY = "gaze_perception.weights_sha256"


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


def fingerprint(module: nn.Module) -> str:
    """sha256 of a module's state dict (names, dtypes, shapes, values): which weights it has."""
    h = hashlib.sha256()
    for name, value in module.state_dict().items():
        value = value.detach().cpu().contiguous()
        h.update(f"{name}:{value.dtype}:{tuple(value.shape)};".encode())
        h.update(value.view(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return h.hexdigest()


def export(module: nn.Module, example: Sequence[Tensor], outputs: Sequence[str],
           dynamic: Dict[str, Dict[int, str]], path: Union[str, Path, None] = None,
           inputs: Sequence[str] = ("input",), weights: Optional[str] = None) -> bytes:
    """`module` as an ONNX model (opset 17; `inputs` and `outputs` named, one input `input`
    by default), written to `path` when given; returns the model's bytes. `weights` (a
    `fingerprint`) is stored in the model's metadata, for OrtModule to check."""
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and trace notes
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), tuple(example), buf, dynamo=False, opset_version=17,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=dynamic)
    data = buf.getvalue()
    if weights is not None:
        import onnx

        proto = onnx.load_from_string(data)
        onnx.helper.set_model_props(proto, {WEIGHTS_KEY: weights})
        data = proto.SerializeToString()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


class OrtModule:
    """An ONNX model run by onnxruntime, called like the torch module it was exported from:
    tensors in (one per model input, in order; floating ones as float32, integer ones kept), a
    tuple of tensors (on the first input's device) out; with `single`, the one output itself
    (for modules that return a tensor). `weights`: the `fingerprint` of the weights the caller
    loaded; a model exported from other weights is refused (one without the mark is taken)."""

    def __init__(self, model: Union[bytes, str, Path], single: bool = False,
                 weights: Optional[str] = None) -> None:
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
        exported_from = self.session.get_modelmeta().custom_metadata_map.get(WEIGHTS_KEY)
        if weights is not None and exported_from not in (None, weights):
            raise ValueError(f"ONNX model '{model}' was exported from other weights than the "
                             "ones loaded here: export it again from these weights "
                             "(`gaze-perception export`), or load the weights it came from")
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
                export_now: Callable[[], Sequence[bytes]], module: nn.Module
                ) -> Tuple[List[Union[bytes, Path]], Optional[str]]:
    """The ONNX models of a backend with `runtime: onnxruntime` and the `weights` to give
    OrtModule: `onnx_dir`/{name}.onnx when a folder is given (the files of `gaze-perception
    export`) with the fingerprint of `module`, the torch model just loaded (the files must
    come from its weights); else `export_now()`, the models exported from it, and None."""
    if onnx_dir:
        return [Path(onnx_dir) / f"{name}.onnx" for name in names], fingerprint(module)
    return list(export_now()), None
