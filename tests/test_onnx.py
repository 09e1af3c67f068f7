"""ONNX Runtime path (`runtime: onnxruntime`): the exported networks give the torch outputs
within float tolerance (stated here: 1e-4 absolute on probabilities and regressions, 0.01 px on
the detector's boxes and landmarks), and the export command writes loadable files."""
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from gaze_perception.backends.mtcnn import MTCNNDetector  # noqa: E402
from gaze_perception.cli.main import main as cli  # noqa: E402

ATOL = 1e-4


@pytest.fixture(scope="module")
def detectors():
    return MTCNNDetector(device="cpu"), MTCNNDetector(device="cpu", runtime="onnxruntime")


@pytest.mark.parametrize("net,shape", [("pnet", (2, 3, 57, 83)), ("rnet", (5, 3, 24, 24)),
                                       ("onet", (3, 3, 48, 48)), ("rnet", (0, 3, 24, 24))])
def test_exported_networks_equal_torch(detectors, net, shape):
    torch_det, ort_det = detectors
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        want = getattr(torch_det, net)(x)
    got = getattr(ort_det, net)(x)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, atol=ATOL, rtol=0)


def test_detector_on_onnxruntime_finds_the_same_faces(detectors, astronaut):
    grid = np.vstack([np.hstack([astronaut[::2, ::2]] * 2)] * 2)
    for image in (astronaut, grid):
        want, got = (d.detect([image])[0] for d in detectors)
        assert len(got) == len(want) >= 1
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.xyxy, w.xyxy, atol=0.01)
            np.testing.assert_allclose(g.landmarks, w.landmarks, atol=0.01)
            assert g.score == pytest.approx(w.score, abs=ATOL)


def test_export_command_writes_files_the_backend_loads(tmp_path, astronaut, capsys):
    assert cli(["export", "mtcnn", "--format", "onnx", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onet.onnx", "pnet.onnx", "rnet.onnx"]
    det = MTCNNDetector(device="cpu", runtime="onnxruntime", onnx_dir=tmp_path)
    assert len(det.detect([astronaut])[0]) == 1
    assert cli(["export", "mtcnn", "--out", str(tmp_path / "x")]) == 0
    with pytest.raises(FileNotFoundError, match="gaze-perception export"):
        MTCNNDetector(device="cpu", runtime="onnxruntime", onnx_dir=tmp_path / "none")
    with pytest.raises(ValueError, match="unknown runtime"):
        MTCNNDetector(device="cpu", runtime="tensorflow")
