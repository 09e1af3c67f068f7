"""The one training loop of every trainer (`gaze-perception train ...`).

What differs between the model lines comes in through a `Task`: how a batch becomes a loss,
how the model is evaluated, which epoch is best, how a checkpoint is written. The loop does
the rest, once for all:

* every epoch's order and augmentation come from (seed, epoch) alone (a balanced sampler
  with replacement when the task gives sample weights);
* AMP on CUDA (bf16 where the GPU has it, else fp16 with loss scaling), a progress bar,
  `metrics.csv` and TensorBoard (`RunLog`);
* `best.pt` (the task's best-checkpoint rule) and `last.pt` through the task's `save`, and
  `train_state.pt` (learnable weights, optimizer, scaler, scheduler, epoch, best, run
  settings) so that `--resume` continues exactly as the uninterrupted run would have;
* learning-rate schedules are `torch.optim.lr_scheduler` objects, stepped per iteration or
  per epoch;
* under `torchrun`: DistributedDataParallel, each global batch split across the processes
  (the random numbers of the whole global batch drawn on every process, see `Draws`), the
  training loss summed over the processes, evaluation on rank 0 and its figures broadcast, and
  only rank 0 writing files. Without batch norm or dropout (or with SyncBatchNorm on GPUs) a
  run on N processes equals a one-process run at the same global batch up to float rounding.
"""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate
from tqdm import tqdm

from ..models.state_dict import save_atomic
from .augment import Draws
from .distributed import current
from .run_log import RunLog

log = logging.getLogger(__name__)

STATE_FILE = "train_state.pt"
Batch = Dict[str, torch.Tensor]


@dataclass
class FitConfig:
    epochs: int
    batch_size: int                # the global batch: split across the processes
    seed: int = 0
    amp: bool = True               # mixed precision on CUDA
    workers: int = 0               # data-loading processes
    schedule_per: str = "step"     # scheduler.step() after every "step" or every "epoch"
    log_every: int = 0             # iterations between train/loss scalars (0: none)
    epoch_base: int = 1            # number of the first epoch in logs and checkpoints
    tb_prefix: Optional[str] = None  # RunLog.epoch_prefix
    stop_after: Optional[int] = None  # end this invocation after this many epochs of the run
    drop_single: bool = True       # drop a last batch of one sample (it breaks batch norm)


class Step:
    """What the loss hook may use besides the batch: this batch's random numbers, the AMP
    context, where in the run it is."""

    def __init__(self, draws: Draws, amp: Optional[torch.dtype], device: torch.device,
                 epoch: int, index: int, batches: int):
        self.draws, self.amp, self.device = draws, amp, device
        self.epoch, self.index, self.batches = epoch, index, batches

    def autocast(self):
        """Mixed precision for the forward pass (a no-op without AMP)."""
        if self.amp is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)


class Task:
    """The hooks of one trainer; `module` is the nn.Module that learns (on the device)."""

    module: nn.Module

    def train_set(self) -> Dataset:
        raise NotImplementedError

    def sample_weights(self) -> Optional[torch.Tensor]:
        """Per-sample weights for a balanced sampler (with replacement); None: shuffle."""
        return None

    def start_epoch(self, epoch: int) -> None:
        """Called before an epoch's batches are made (e.g. to tell the dataset the epoch)."""

    def loss(self, module: nn.Module, batch: Batch, step: Step) -> torch.Tensor:
        """The batch's loss, a mean over its samples; `module` may be DDP-wrapped."""
        raise NotImplementedError

    def end_iteration(self, step: Step, loss: torch.Tensor) -> None:
        """After each optimizer step (rank 0 only)."""

    def train_figures(self) -> Dict[str, float]:
        """Figures of the epoch's training batches, for the epoch's row."""
        return {}

    def evaluate(self, module: nn.Module) -> Dict[str, Any]:
        """Validation figures (rank 0, eval mode, no gradients); {} without validation data."""
        return {}

    def score(self, row: Dict[str, Any]) -> Optional[float]:
        """How good the epoch is, higher is better (None: not comparable)."""
        return -row["train_loss"]

    def save(self, path: Path, info: Dict[str, Any]) -> None:
        """Write a checkpoint of `module` (best.pt, last.pt) with `info`."""
        raise NotImplementedError

    def end_epoch(self, row: Dict[str, Any]) -> None:
        """After the epoch's checkpoints are written (rank 0 only)."""


def amp_dtype(device: torch.device, enabled: bool) -> Optional[torch.dtype]:
    """bf16 on CUDA devices that have it, else fp16; None (full precision) off CUDA."""
    if device.type != "cuda" or not enabled:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def global_batches(n: int, batch_size: int, g: torch.Generator,
                   weights: Optional[torch.Tensor], world: int,
                   drop_single: bool = True) -> List[torch.Tensor]:
    """The epoch's global batches of sample indices. A last batch too small to train on (one
    sample breaks batch norm; fewer samples than processes leaves one without) is dropped."""
    order = (torch.multinomial(weights, n, True, generator=g) if weights is not None
             else torch.randperm(n, generator=g))
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < max(2 if drop_single else 1, world):
        batches.pop()
    return batches


def read_state(out: Path) -> Dict[str, Any]:
    """The train_state.pt of the run in `out`."""
    path = Path(out) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: '{path}' does not exist")
    return torch.load(path, map_location="cpu", weights_only=True)


def check_fresh(out: Path) -> None:
    """A new run never overwrites another."""
    if (Path(out) / STATE_FILE).exists():
        raise ValueError(f"'{out}' holds a run already: add --resume to continue it, or pick "
                         "another --out")


def fit(task: Task, optimizer: torch.optim.Optimizer, cfg: FitConfig, out: Path,
        device: torch.device, settings: Dict[str, Any],
        schedule: Optional[Callable[[torch.optim.Optimizer, int], Any]] = None,
        resume: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Train `task.module` for cfg.epochs (from the resumed epoch on); returns the best epoch
    {"epoch", "score", "figures"}. `schedule(optimizer, steps_per_epoch)` makes the
    learning-rate scheduler; `settings` (plain values) are saved for a resumed run."""
    dist = current()
    out = Path(out)
    module = task.module
    dataset = task.train_set()
    weights = task.sample_weights()
    steps = len(global_batches(len(dataset), cfg.batch_size, torch.Generator().manual_seed(0),
                               None, dist.world, cfg.drop_single))
    scheduler = schedule(optimizer, steps) if schedule is not None else None
    amp = amp_dtype(device, cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    start, best = 0, {"epoch": None, "score": None, "figures": {}}
    if resume is not None:
        module.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scaler.load_state_dict(resume["scaler"])
        start, best = int(resume["epoch"]), dict(resume["best"])
        if scheduler is not None:
            _resume_schedule(scheduler, resume, cfg, start * (steps if cfg.schedule_per == "step"
                                                                 else 1))
        if dist.main:
            log.info("resuming after epoch %d of %d", start, cfg.epochs)
    trained = module
    if dist.enabled and device.type == "cuda":
        # batch statistics over the global batch (in place: the parameters stay the optimizer's)
        module = task.module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        trained = module
    if dist.enabled:
        trained = nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
    run_log = RunLog(out, append=resume is not None, epoch_prefix=cfg.tb_prefix) \
        if dist.main else None
    collate = getattr(dataset, "collate", default_collate)
    try:
        for epoch in range(start, cfg.epochs):
            t0 = time.monotonic()
            seed = cfg.seed * 1_000_003 + epoch
            g = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)  # dropout, drop path
            task.start_epoch(epoch)
            batches = global_batches(len(dataset), cfg.batch_size, g, weights, dist.world,
                                     cfg.drop_single)
            mine = [b.tensor_split(dist.world)[dist.rank] for b in batches]
            loader = DataLoader(dataset, batch_sampler=[b.tolist() for b in mine],
                                num_workers=cfg.workers, collate_fn=collate,
                                pin_memory=device.type == "cuda",
                                generator=torch.Generator().manual_seed(seed))  # not the global

            module.train()
            lrs = _lrs(optimizer)  # the rates of the epoch's first step
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            seen = 0
            label = f"epoch {epoch + cfg.epoch_base}/{cfg.epochs - 1 + cfg.epoch_base}"
            bar = tqdm(zip(batches, mine, loader), total=len(batches), desc=label, leave=False,
                       unit="batch", disable=None if dist.main else True)
            for i, (whole, part, batch) in enumerate(bar):
                start_at = sum(len(p) for p in whole.tensor_split(dist.world)[:dist.rank])
                step = Step(Draws(g, len(whole), start_at), amp, device, epoch, i, len(batches))
                batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
                         for k, v in batch.items()}
                loss = task.loss(trained, batch, step)
                # each process's mean weighted by its share: DDP's average of the gradients
                # is then the gradient of the global batch's mean loss
                share = len(part) * dist.world / len(whole)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss * share).backward()
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None and cfg.schedule_per == "step":
                    scheduler.step()
                loss_sum += loss.detach().double() * len(part)
                seen += len(part)
                if dist.main:
                    task.end_iteration(step, loss)
                    if cfg.log_every and i % cfg.log_every == 0:
                        run_log.iteration(epoch * len(batches) + i, loss.item())
            bar.close()
            if scheduler is not None and cfg.schedule_per == "epoch":
                scheduler.step()
            total, count = dist.sum(loss_sum.item(), float(seen))
            row = {"epoch": epoch + cfg.epoch_base, **lrs,
                   "train_loss": round(total / max(count, 1), 6), **task.train_figures()}
            figures = None
            if dist.main:
                module.eval()
                with torch.no_grad():
                    figures = task.evaluate(module)
            figures = dist.broadcast(figures)
            row.update({k: round(float(v), 6) if isinstance(v, float) else v
                        for k, v in figures.items()})
            row["seconds"] = round(time.monotonic() - t0, 2)
            score = task.score(row)
            if score is not None and score != score:  # NaN: not comparable
                score = None
            improved = score is not None and (best["score"] is None or score > best["score"])
            if improved:
                best = {"epoch": row["epoch"], "score": score, "figures": figures}
            if dist.main:
                info = {"epoch": row["epoch"], "score": score, **figures}
                if improved:
                    task.save(out / "best.pt", info)
                task.save(out / "last.pt", info)
                save_atomic({"epoch": epoch + 1, "epochs": cfg.epochs, "best": best,
                             "config": settings, "model": _cpu(module.state_dict()),
                             "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                             "scheduler": scheduler.state_dict() if scheduler else None},
                            out / STATE_FILE)
                run_log.epoch(row)
                log.info("%s  %s", label, "  ".join(
                    f"{k} {v:.4g}" for k, v in row.items()
                    if k != "epoch" and isinstance(v, (int, float))))
                task.end_epoch(row)
            dist.barrier()  # nobody starts the next epoch (or exits) before the files exist
            if cfg.stop_after is not None and epoch + 1 >= cfg.stop_after < cfg.epochs:
                if dist.main:
                    log.info("stopped after epoch %d of %d (--stop-after): continue with "
                             "--resume", epoch + 1, cfg.epochs)
                break
    finally:
        if run_log is not None:
            run_log.close()
    return best


def _cpu(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def _lrs(optimizer: torch.optim.Optimizer) -> Dict[str, float]:
    """The rate of each parameter group: "lr", or "lr_<name>" for named groups."""
    groups = optimizer.param_groups
    if len(groups) == 1 and "name" not in groups[0]:
        return {"lr": groups[0]["lr"]}
    return {f"lr_{g.get('name', i)}": g["lr"] for i, g in enumerate(groups)}


def _resume_schedule(scheduler, saved: Dict, cfg: FitConfig, done: int) -> None:
    """The saved scheduler when the run's length is unchanged; after `--epochs` grew, the new
    schedule at step `done` (its closed form)."""
    if saved.get("scheduler") is not None and saved.get("epochs") == cfg.epochs:
        scheduler.load_state_dict(saved["scheduler"])
        return
    scheduler.last_epoch = done
    closed = getattr(scheduler, "_get_closed_form_lr", None)
    lrs = closed() if closed is not None else scheduler.get_last_lr()
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = list(lrs)


def cosine_per_step(epochs: int, eta_min: float = 0.0):
    """A `schedule` for `fit`: cosine decay from the peak rate to `eta_min` over the run,
    stepped per iteration (torch's CosineAnnealingLR)."""
    def make(optimizer, steps_per_epoch: int):
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, epochs * steps_per_epoch), eta_min=eta_min)
    return make


class TensorDataset(Dataset):
    """In-memory samples: item i is {name: tensor[i]}; batches are sliced in one go."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        self.tensors = tensors
        self.size = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> Batch:
        return {k: v[i] for k, v in self.tensors.items()}

    def __getitems__(self, indices: List[int]) -> Batch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {k: v[idx] for k, v in self.tensors.items()}

    @staticmethod
    def collate(batch: Batch) -> Batch:
        return batch


def predict(module: nn.Module, dataset: Dataset, forward: Callable[[nn.Module, Batch], Any],
            device: torch.device, batch_size: int = 64, workers: int = 0) -> torch.Tensor:
    """Concatenated `forward(module, batch)` over `dataset`, in order (eval mode)."""
    module.eval()
    outs = []
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                        collate_fn=getattr(dataset, "collate", default_collate))
    with torch.inference_mode():
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            outs.append(forward(module, batch).float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0)
