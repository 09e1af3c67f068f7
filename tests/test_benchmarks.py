"""The benchmark scripts run and print their tables (smallest settings: a smoke test, no timing
is checked — speed figures belong in the issue notes, not in tests)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "eye_state": (["benchmarks/eye_state.py", "--repeats", "1", "--warmup", "0"],
                  "ms per face"),
    "gaze_direction": (["benchmarks/gaze_direction.py", "--backbones", "resnet18", "--size", "64",
                        "--batches", "1", "--warmup", "0", "--repeats", "1", "--no-itracker"],
                       "resnet18"),
    "gaze_target": (["benchmarks/gaze_target.py", "--heads", "1,2", "--precisions", "fp32",
                     "--warmup", "0", "--repeats", "1"], "fp32"),
    "face_detector": (["tools/bench_face_detector.py", "--iterations", "2", "--runs", "1",
                       "--warmup", "0"], "frames"),
    "mtcnn_floor": (["benchmarks/mtcnn_floor.py", "--repeats", "1", "--threads", "1",
                     "--sizes", "320x240"], "x floor"),
    "models": (["benchmarks/models.py", "--repeats", "1", "--warmup", "0", "--threads", "1",
                "--models", "eye-state,mtcnn-onet"], "mtcnn-onet 16x3x48x48"),
    "large_faces": (["benchmarks/large_faces.py", "--limit", "3"], "frame-filling faces added"),
    "pipeline_fps": (["benchmarks/pipeline_fps.py", "--repeats", "1", "--faces", "1",
                      "--threads", "1", "--sizes", "320x240"], "frames/s"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_script_prints_its_table(name):
    args, expected = CASES[name]
    res = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert expected in res.stdout, res.stdout[-2000:]
