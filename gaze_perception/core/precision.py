"""`precision: auto|fp32|bf16|fp16` policy of the torch backends that support low precision.

`auto` (the default) picks what is fast on the hardware: fp16 on CUDA, bf16 on CPUs with bf16
matrix hardware (AMX or AVX512_BF16, read from the CPU flags), fp32 otherwise. Without that
hardware bf16 is emulated and slow: Gaze-LLE ViT-B in bf16 took 34.9 s for one head against
6.2 s in fp32 on an AVX2 CPU (5.6x; 30 heads 44.4 s against 10.6 s, 4.2x), where on an AMX
CPU the same path was 2.8x faster than fp32. Asking for bf16 on such a CPU is allowed, with one
warning that says so. Torch-free: the capability is read from /proc/cpuinfo.
"""
from __future__ import annotations

import functools
import logging
from typing import FrozenSet, Optional

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: CPU flags (Linux /proc/cpuinfo) of hardware bf16 matrix arithmetic
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
BF16_PENALTY = ("bf16 on a CPU without AMX / AVX512_BF16 is emulated: Gaze-LLE ViT-B took "
                "5.6x the fp32 time (34.9 s against 6.2 s for one head, 4.2x for 30 heads) on "
                "an AVX2 CPU; precision=auto (or fp32) is the fast choice here")
_warned = set()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> FrozenSet[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo has none, e.g. not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16(flags: Optional[FrozenSet[str]] = None) -> bool:
    return bool(BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags))


def resolve_precision(requested: str, device_type: str,
                      cpu_flags_: Optional[FrozenSet[str]] = None) -> str:
    """The precision to run: `requested` unless it is `auto` (see the module doc). Raises for
    an unknown name and for fp16 off CUDA; warns once for bf16 on a CPU without bf16 hardware.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision '{requested}'; use {', '.join(PRECISIONS)}")
    bf16_hw = device_type == "cpu" and cpu_has_bf16(cpu_flags_)
    if requested == "auto":
        chosen = "fp16" if device_type == "cuda" else "bf16" if bf16_hw else "fp32"
        why = ("CUDA" if device_type == "cuda" else "CPU with AMX / AVX512_BF16" if bf16_hw
               else "CPU without bf16 hardware")
        log.info("precision=auto: %s on %s", chosen, why)
        return chosen
    if requested == "fp16" and device_type != "cuda":
        raise ValueError("precision=fp16 needs a CUDA device; on the CPU use auto, bf16 or fp32")
    if requested == "bf16" and device_type == "cpu" and not bf16_hw and "bf16" not in _warned:
        _warned.add("bf16")
        log.warning(BF16_PENALTY)
    return requested
