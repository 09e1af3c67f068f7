"""One process or many (`torchrun`): the rank, the device and the few collective steps the
training loop needs.

Under `torchrun` (WORLD_SIZE > 1 in the environment) every process joins one process group:
`nccl` on GPUs (process i uses cuda:LOCAL_RANK), `gloo` on CPUs. Alone, the same calls are
no-ops, so a trainer is written once for both.
"""
from __future__ import annotations

import logging
import os
from datetime import timedelta
from dataclasses import dataclass
from typing import Any, Optional

log = logging.getLogger(__name__)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as td
            td.barrier()

    def sum(self, *values: float) -> list:
        """The values summed over all processes."""
        if not self.enabled:
            return list(values)
        import torch
        import torch.distributed as td
        t = torch.tensor(values, dtype=torch.float64, device=self._device)
        td.all_reduce(t)
        return t.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj`, on every process."""
        if not self.enabled:
            return obj
        import torch.distributed as td
        box = [obj]
        td.broadcast_object_list(box, src=0, device=self._device)
        return box[0]

    _device: Any = None


_current: Optional[Dist] = None


def setup(device: str = "auto"):
    """(torch.device, Dist) of this process; under torchrun the process group is started here
    (once) and `device` auto / cuda picks the GPU of this process's local rank."""
    global _current
    import torch

    from ..core.device import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return resolve_device(device), Dist()
    import torch.distributed as td

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not td.is_initialized():
        # rank 0 evaluates alone while the others wait: allow a long evaluation pass
        td.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                              timeout=timedelta(hours=2))
    _current = Dist(rank, world, local)
    _current._device = dev if dev.type == "cuda" else torch.device("cpu")
    if rank == 0:
        log.info("distributed training: %d processes (%s)", world, td.get_backend())
    return dev, _current


def current() -> Dist:
    """The Dist of this process (one process until `setup` started a group)."""
    return _current or Dist()


def shutdown() -> None:
    global _current
    if _current is not None and _current.enabled:
        import torch.distributed as td
        if td.is_initialized():
            td.destroy_process_group()
    _current = None
