"""Distributed training with torchrun (gloo on the CPU): a run on two processes, stopped after
its first epoch and resumed (still under torchrun), ends with the weights of one process
training straight at the same global batch. iTracker (gaze direction) has neither batch norm
nor dropout, so the runs agree up to float rounding."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gaze_perception.cli.main import main
from test_gaze_direction import _gazecapture_session

TORCHRUN = Path(sys.executable).with_name("torchrun")
#: both invocations in the same two processes (one torchrun start: they are slow to import)
STOP_AND_RESUME = """
import sys
from gaze_perception.cli.main import main
argv = sys.argv[1:]
assert main(argv + ["--stop-after", "1"]) == 0
assert main(argv + ["--resume"]) == 0
"""


def _argv(data, out):
    return ["train", "gaze-direction", "--model", "itracker", "--data", str(data),
            "--input-size", "48", "--epochs", "2", "--batch-size", "6", "--workers", "0",
            "--val-fraction", "0.5", "--device", "cpu", "--out", str(out)]


@pytest.mark.slow  # three process starts
def test_two_processes_stopped_and_resumed_equal_one_straight(tmp_path):
    for session in ("00001", "00002"):
        _gazecapture_session(tmp_path / "gc" / session)
    assert main(_argv(tmp_path / "gc", tmp_path / "one")) == 0
    script = tmp_path / "stop_and_resume.py"
    script.write_text(STOP_AND_RESUME)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(script),
                           *_argv(tmp_path / "gc", tmp_path / "two")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "distributed training: 2 processes (gloo)" in done.stderr
    assert "resuming after epoch 1 of 2" in done.stderr
    one, two = (torch.load(tmp_path / r / "last.pt", weights_only=True) for r in ("one", "two"))
    assert two["info"]["epoch"] == 2
    for k, v in one["state_dict"].items():
        assert torch.allclose(v, two["state_dict"][k], rtol=1e-4, atol=5e-5), k
    # rank 0 alone writes: a header and one row per epoch, the same figures
    rows = [(tmp_path / r / "metrics.csv").read_text().splitlines() for r in ("one", "two")]
    assert len(rows[1]) == 3
    assert [r.split(",")[:4] for r in rows[0]] == [r.split(",")[:4] for r in rows[1]]
