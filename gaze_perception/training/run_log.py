"""A training run's figures: one row per epoch in `metrics.csv` and, when tensorboard is
installed, scalars in `tensorboard/` (plus, optionally, the loss every few iterations); and the
settings a resumed run keeps.

Torch is imported only when a `RunLog` is made, so that the CLI starts fast.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Dict, Optional

log = logging.getLogger(__name__)


def append_row(path: Path, row: Dict[str, object]) -> None:
    """Append `row` to the CSV at `path`, with a header line first when the file is new or
    empty (the columns are the row's keys, in order)."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def resumed_settings(saved: Dict, given: Dict) -> Dict:
    """A resumed run's settings: the `saved` ones, of which only `epochs` may change; every
    other flag in `given` that differs from the saved value is ignored with a warning."""
    cfg = dict(saved)
    for key, value in given.items():
        if key == "epochs":
            cfg[key] = value
        elif value != cfg.get(key):
            log.warning("--%s %s ignored: a resumed run keeps its %s", key.replace("_", "-"),
                        value, cfg.get(key))
    return cfg


class RunLog:
    """`out/metrics.csv` (one row per epoch) and, when tensorboard is installed,
    `out/tensorboard/`.

    `append`: True keeps an existing metrics.csv and adds rows to it (a resumed run goes on
    where it stopped); False deletes it first (every run starts a new file).
    `epoch_prefix`: the TensorBoard tag of an epoch figure `key` is `epoch_prefix + key`; with
    None it is the key with its first "_" turned into "/" ("train_loss" -> "train/loss",
    "val_balanced_acc" -> "val/balanced_acc", "lr" -> "lr"). The row's "epoch" is the step
    and no tag of its own; figures that are None go to the CSV only.
    """

    def __init__(self, out: Path, *, append: bool, epoch_prefix: Optional[str] = None) -> None:
        self.csv_path = Path(out) / "metrics.csv"
        self.epoch_prefix = epoch_prefix
        if not append:
            self.csv_path.unlink(missing_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(Path(out) / "tensorboard"))
        except ImportError:
            log.info("tensorboard is not installed: logging to %s only", self.csv_path)
            self.tb = None

    def _tag(self, key: str) -> str:
        if self.epoch_prefix is None:
            return key.replace("_", "/", 1)
        return f"{self.epoch_prefix}{key}"

    def iteration(self, step: int, loss: float) -> None:
        """The training loss at iteration `step` (TensorBoard tag train/loss)."""
        if self.tb is not None:
            self.tb.add_scalar("train/loss", loss, step)

    def epoch(self, row: Dict[str, object]) -> None:
        """One epoch's figures; row["epoch"] is the step."""
        append_row(self.csv_path, row)
        if self.tb is not None:
            for key, value in row.items():
                if key != "epoch" and value is not None:
                    self.tb.add_scalar(self._tag(key), value, row["epoch"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
