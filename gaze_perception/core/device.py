"""`device: auto|cpu|cuda[:N]` policy shared by every torch backend."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class DeviceError(ValueError):
    pass


def resolve_device(device: str = "auto"):
    """Return a torch.device. `auto` picks CUDA when present else CPU (and says so);
    asking for CUDA where there is none is an error."""
    import torch

    spec = (device or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        log.info("device=auto: no CUDA device, using the CPU")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{device}' requested but CUDA is not available "
                              "(use device=auto or cpu)")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{device}' requested but only "
                              f"{torch.cuda.device_count()} CUDA device(s) exist")
        return dev
    raise DeviceError(f"unknown device '{device}'; use auto, cpu or cuda[:N]")
