"""The training loop itself (`training.fit`) on a toy task: batches, resume, schedules."""
import math

import pytest
import torch
from torch import nn

from gaze_perception.training.fit import (STATE_FILE, FitConfig, Task, TensorDataset,
                                          check_fresh, cosine_per_step, fit, global_batches,
                                          read_state)


class Toy(Task):
    """Linear regression with a jitter drawn from the batch's random numbers."""

    def __init__(self):
        torch.manual_seed(0)
        self.module = nn.Linear(3, 1)
        x = torch.randn(20, 3)
        self.data = TensorDataset(x=x, y=x.sum(1, keepdim=True))

    def train_set(self):
        return self.data

    def loss(self, module, batch, step):
        x = batch["x"] + 0.01 * step.draws.uniform(len(batch["x"]), 1.0, 3)
        return nn.functional.mse_loss(module(x), batch["y"])

    def save(self, path, info):
        torch.save({"w": self.module.state_dict(), "info": info}, path)


def _run(out, epochs, stop_after=None, resume=None):
    task = Toy()
    opt = torch.optim.AdamW(task.module.parameters(), lr=0.05)
    cfg = FitConfig(epochs, batch_size=6, stop_after=stop_after)
    fit(task, opt, cfg, out, torch.device("cpu"), {"epochs": epochs}, cosine_per_step(epochs),
        resume)
    return task.module.state_dict(), opt


def test_global_batches_cover_the_data_and_drop_a_useless_tail():
    g = torch.Generator().manual_seed(0)
    batches = global_batches(13, 4, g, None, world=1)
    assert [len(b) for b in batches] == [4, 4, 4]  # a last batch of one breaks batch norm
    assert len(set(torch.cat(batches).tolist())) == 12
    assert [len(b) for b in global_batches(13, 4, g, None, 1, drop_single=False)] == [4, 4, 4, 1]
    assert [len(b) for b in global_batches(10, 4, g, None, world=3)] == [4, 4]
    weights = torch.tensor([0.0] * 9 + [1.0])
    assert set(torch.cat(global_batches(10, 5, g, weights, 1)).tolist()) == {9}


def test_stopped_and_resumed_equals_straight_and_a_run_is_not_overwritten(tmp_path):
    straight, _ = _run(tmp_path / "a", 4)
    _run(tmp_path / "b", 4, stop_after=2)
    assert read_state(tmp_path / "b")["epoch"] == 2
    with pytest.raises(ValueError, match="holds a run already"):
        check_fresh(tmp_path / "b")
    resumed, _ = _run(tmp_path / "b", 4, resume=read_state(tmp_path / "b"))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert rows == (tmp_path / "a" / "metrics.csv").read_text().splitlines()[:1] + rows[1:]
    assert [r.split(",")[:3] for r in rows] == \
        [r.split(",")[:3] for r in (tmp_path / "a" / "metrics.csv").read_text().splitlines()]
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        read_state(tmp_path / "c")


def test_more_epochs_on_resume_follow_the_longer_cosine(tmp_path):
    _run(tmp_path / "r", 2)
    _, opt = _run(tmp_path / "r", 4, resume=read_state(tmp_path / "r"))
    steps = 3  # 20 samples, batches of 6 (the last one of 2 is kept)
    assert opt.param_groups[0]["lr"] == pytest.approx(
        0.05 * 0.5 * (1 + math.cos(math.pi * 4 * steps / (4 * steps))), abs=1e-12)
    rows = [r.split(",") for r in (tmp_path / "r" / "metrics.csv").read_text().splitlines()]
    assert rows[0][:2] == ["epoch", "lr"]
    assert float(rows[3][1]) == pytest.approx(0.025)  # epoch 3 starts half-way down the cosine
    state = torch.load(tmp_path / "r" / STATE_FILE, weights_only=True)
    assert state["epoch"] == 4 and state["epochs"] == 4
