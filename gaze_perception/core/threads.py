"""Thread budget: how many intra-op threads a process gives torch and OpenCV.

Left alone, torch and OpenCV each take every core in every process, so a graph of several
model nodes on a small machine thrashes (the classroom graph on two cores ran 5x slower with
the defaults than with one thread per node). Every process that runs a model therefore sets
its threads from a `threads` parameter: a positive number is taken as given, 0 (`auto`) means
`OMP_NUM_THREADS` when the environment sets it, else the machine's cores divided among the
processes that run models (at least 1; graph.stage_threads weighs a graph's nodes).

Torch-free: torch is configured only when it is imported already; before that the
OMP/MKL variables are set, which torch reads when it is imported later.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, Optional

#: stage nodes of the standard graph (faces, eyes, gaze): a node started on its own assumes
#: it shares the machine with the other two
STANDARD_MODEL_PROCESSES = 3
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: OpenMP threads that wait for work sleep at once instead of spinning (unless the environment
#: says otherwise). With spinning, libgomp's default, a model process whose cores are partly
#: taken by other work (another node, a camera driver, a second job) waits for a descheduled
#: thread at every operation: on this project's 2-core machine, next to one busy process,
#: MTCNN on one photo took 1.7-3.6 s with 2 spinning threads, 0.33-0.43 s with one thread and
#: 0.10-0.13 s with 2 passive threads. It is read when torch loads OpenMP: before torch is
#: imported, as `apply_threads` runs in every process the package starts.
WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def env_threads() -> Optional[int]:
    """OMP_NUM_THREADS when the environment sets it to a positive count, else None."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return n if n > 0 else None


def auto_threads(model_processes: int = 1) -> int:
    """`threads: 0`: OMP_NUM_THREADS if set, else the cores divided among `model_processes`."""
    return env_threads() or max(1, available_cores() // max(1, model_processes))


def resolve_threads(threads: int, model_processes: int = 1) -> int:
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = auto), not {threads}")
    return threads if threads > 0 else auto_threads(model_processes)


def apply_threads(threads: int = 0, model_processes: int = 1) -> int:
    """Give torch and OpenCV `threads` intra-op threads (0: `auto_threads`); returns the count."""
    n = resolve_threads(threads, model_processes)
    for var in ENV_VARS:  # read by torch / OpenMP when imported after this call
        os.environ[var] = str(n)
    os.environ.setdefault(*WAIT_POLICY)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    import cv2

    cv2.setNumThreads(n)
    return n


def current_threads() -> Dict[str, int]:
    """What torch (when imported) and OpenCV use now: the read-back of `apply_threads`."""
    import cv2

    out = {"opencv": int(cv2.getNumThreads())}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = int(torch.get_num_threads())
    return out
