"""Speed policies: the thread budget (core/threads.py) and `precision: auto` (core/precision.py).
That a started node runs with its threads is tested in test_face_node.py (read back over
/diagnostics); the precision `auto` picks in a node in test_gaze_node.py."""
import logging
import os

import pytest

from gaze_perception.core import precision as prec
from gaze_perception.core import threads


def test_auto_threads_divide_the_cores_unless_omp_num_threads_is_set(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert threads.resolve_threads(0, 3) == 2
    assert threads.resolve_threads(0, 1) == 8
    assert threads.resolve_threads(0, 16) == 1  # never 0
    assert threads.resolve_threads(5, 3) == 5   # a given count is kept
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.resolve_threads(0, 1) == 3
    with pytest.raises(ValueError, match=">= 0"):
        threads.resolve_threads(-1)


def test_node_specs_give_each_stage_node_its_share(monkeypatch, tmp_path):
    """The heavy stages (face detector, whole-frame gaze models) share the cores; the eye
    model and head-pose gaze take one thread; a given count or OMP_NUM_THREADS goes to all."""
    from gaze_perception.core.config import load_pipeline_config
    from gaze_perception.graph import node_specs

    def threads_of(config, **kw):
        return {s.executable: s.parameters.get("threads") for s in node_specs(config, **kw)}

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 12)
    classroom = load_pipeline_config("classroom")
    assert threads_of(classroom) == {"face_detector": 12, "eye_state": 1, "gaze_target": 1,
                                     "attention": None}  # attention: its own default, one
    gazelle = tmp_path / "gazelle.yaml"
    gazelle.write_text("stages:\n  faces: {backend: mtcnn}\n  eyes: {backend: timm_eye}\n"
                       "  gaze: {backend: gazelle}\n")
    assert threads_of(load_pipeline_config(str(gazelle))) == {
        "face_detector": 6, "eye_state": 1, "gaze_target": 6}
    assert set(threads_of(classroom, threads=3).values()) == {3, None}
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert set(threads_of(classroom).values()) == {2, None}


def test_apply_threads_sets_torch_and_opencv():
    import torch

    before = torch.get_num_threads()
    try:
        assert threads.apply_threads(2) == 2
        assert threads.current_threads() == {"torch": 2, "opencv": 2}
    finally:
        threads.apply_threads(before)


def test_apply_threads_makes_idle_openmp_threads_sleep_unless_told_otherwise(monkeypatch):
    """A process that will import torch gets OMP_WAIT_POLICY=PASSIVE (spinning threads thrash
    where other work shares the cores); a policy the user set is kept."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads.apply_threads(1)
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.apply_threads(1)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


AVX2 = frozenset({"sse4_2", "avx2", "fma"})
AMX = AVX2 | {"avx512f", "amx_tile", "amx_bf16"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16"}


@pytest.mark.parametrize("device,flags,expected", [
    ("cuda", AVX2, "fp16"), ("cpu", AMX, "bf16"), ("cpu", AVX512_BF16, "bf16"),
    ("cpu", AVX2, "fp32"), ("cpu", frozenset(), "fp32"), ("mps", AMX, "fp32")])
def test_precision_auto_fits_the_hardware(device, flags, expected):
    assert prec.resolve_precision("auto", device, flags) == expected


def test_asked_precisions_are_kept_and_bf16_without_hardware_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(prec, "_warned", set())
    assert prec.resolve_precision("fp32", "cpu", AMX) == "fp32"
    assert prec.resolve_precision("bf16", "cpu", AMX) == "bf16"
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        assert prec.resolve_precision("bf16", "cpu", AVX2) == "bf16"
        assert prec.resolve_precision("bf16", "cpu", AVX2) == "bf16"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "5.6x the fp32 time" in warnings[0].getMessage()
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        prec.resolve_precision("fp16", "cpu", AMX)
    with pytest.raises(ValueError, match="unknown precision"):
        prec.resolve_precision("int8", "cpu", AMX)


def test_the_cpu_flags_are_read():
    flags = prec.cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags here")
    assert "fpu" in flags or "fp" in flags  # x86 / arm64 spelling of the basic FPU flag
