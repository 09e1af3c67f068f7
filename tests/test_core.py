"""ROS-free core: imports without rclpy, image decoding, plugin door, weights checks, config."""
import subprocess
import sys

import numpy as np
import pytest

from gaze_perception.core import registry
from gaze_perception.core.image import ImageError, check_rgb, decode_raw
from gaze_perception.core.weights import WeightsError, load_state_dict, verify


def test_core_imports_without_ros():
    code = ("import sys; sys.modules['rclpy'] = None\n"
            "import gaze_perception.core.pipeline, gaze_perception.core.types, "
            "gaze_perception.backends.base, gaze_perception.core.registry\n"
            "assert 'torch' not in sys.modules, 'core must not import torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def _buf(img):
    return img.tobytes(), img.shape[1], img.shape[0]


def test_decode_encodings():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (4, 5, 3), dtype=np.uint8)
    data, w, h = _buf(rgb)
    assert np.array_equal(decode_raw(data, w, h, w * 3, "rgb8"), rgb)
    assert np.array_equal(decode_raw(_buf(rgb[:, :, ::-1].copy())[0], w, h, w * 3, "bgr8"), rgb)
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(decode_raw(rgba.tobytes(), w, h, w * 4, "rgba8"), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((4, 5, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(decode_raw(bgra.tobytes(), w, h, w * 4, "bgra8"), rgb)
    mono = rgb[:, :, 0].copy()
    assert np.array_equal(decode_raw(mono.tobytes(), w, h, w, "mono8")[:, :, 1], mono)
    m16 = (mono.astype(np.uint16) * 10)
    out = decode_raw(m16.tobytes(), w, h, w * 2, "mono16")
    assert out.dtype == np.uint8 and out.max() == 255
    # padded rows (step > width * bytes per pixel)
    padded = np.zeros((4, 16, 3), np.uint8)
    padded[:, :5] = rgb
    assert np.array_equal(decode_raw(padded.tobytes(), w, h, 48, "rgb8"), rgb)


@pytest.mark.parametrize("args,match", [
    ((b"\0" * 60, 5, 4, 15, "yuv422"), "unsupported encoding"),
    ((b"", 0, 0, 0, "rgb8"), "empty image"),
    ((b"\0" * 30, 5, 4, 15, "rgb8"), "data length"),
    ((b"\0" * 60, 5, 4, 10, "rgb8"), "step"),
    ((b"", 100000, 100000, 300000, "rgb8"), "too large"),
])
def test_decode_rejects(args, match):
    with pytest.raises(ImageError, match=match):
        decode_raw(*args)


def test_check_rgb_rejects_non_rgb():
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ImageError):
            check_rgb(bad)


def test_registry_lists_and_rejects_unknown_names():
    names = registry.list_backends()
    assert "mtcnn" in names["face_detector"]
    with pytest.raises(registry.UnknownBackendError, match="installed: .*mtcnn"):
        registry.create("face_detector", "no_such_backend")
    with pytest.raises(registry.UnknownBackendError, match="known kinds"):
        registry.create("nonsense", "x")


def test_weights_missing_and_tampered(tmp_path):
    import torch
    good = tmp_path / "w.pt"
    torch.save({"a": torch.zeros(2)}, good)
    from gaze_perception.core.weights import sha256_of
    digest = sha256_of(good)
    assert load_state_dict(good, digest)["a"].shape == (2,)
    with pytest.raises(WeightsError, match=f"missing.*{digest}"):
        verify(tmp_path / "nope.pt", digest)
    data = bytearray(good.read_bytes())
    data[-10] ^= 0xFF
    good.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=f"w.pt.*expected {digest}"):
        load_state_dict(good, digest)


def test_weights_only_refuses_pickled_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    with pytest.raises(WeightsError, match="cannot load"):
        load_state_dict(path)


def test_pipeline_config_errors(tmp_path):
    from gaze_perception.core.config import load_pipeline_config
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: {faces: mtcnn, ears: x}\n")
    with pytest.raises(ValueError, match="unknown pipeline stage"):
        load_pipeline_config(str(bad))
    bad.write_text("stages: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_pipeline_config(str(bad))
    with pytest.raises(FileNotFoundError):
        load_pipeline_config(str(tmp_path / "missing.yaml"))
    assert load_pipeline_config("faces_only").faces.backend == "mtcnn"
