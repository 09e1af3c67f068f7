"""MTCNN: our networks load the facenet-pytorch weights, and the detector reproduces its output."""
import shutil

import cv2
import numpy as np
import pytest
import torch

from gaze_perception.backends.mtcnn import MTCNNDetector
from gaze_perception.core import weights
from gaze_perception.core.device import DeviceError
from gaze_perception.models.mtcnn import ONet, PNet, RNet
from checks import assert_batch_equals_single_calls

# facenet-pytorch 2.5 `MTCNN().detect(astronaut, landmarks=True)`
REF_BOX = (181.05, 62.16, 267.75, 172.05)
REF_PROB = 0.99999774
REF_LANDMARKS = [(205.01, 101.73), (246.76, 103.71), (224.67, 128.96), (201.72, 139.25),
                 (245.27, 141.86)]


@pytest.fixture(scope="module")
def detector():
    return MTCNNDetector(device="cpu")


@pytest.fixture(scope="module")
def grid(astronaut):
    """Four smaller astronauts in a 2x2 grid: four faces of about 45 px."""
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    return np.vstack([np.hstack([small, small])] * 2)


def _rgb(path):
    img = cv2.imread(str(path))
    assert img is not None, path
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("net, name", [(PNet, "mtcnn_pnet"), (RNet, "mtcnn_rnet"),
                                       (ONet, "mtcnn_onet")])
def test_state_dict_loads_strict(net, name):
    state = weights.load_state_dict(weights.resolve(name))
    model = net()
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state, strict=True)


def test_output_shapes_and_logits():
    reg, prob = PNet().eval()(torch.zeros(2, 3, 12, 12))
    assert reg.shape == (2, 4, 1, 1) and prob.shape == (2, 2, 1, 1)
    assert torch.allclose(prob.sum(1), torch.ones(2, 1, 1))
    onet = ONet().eval()
    reg, pts, prob = onet(torch.zeros(3, 3, 48, 48))
    assert (reg.shape, pts.shape, prob.shape) == ((3, 4), (3, 10), (3, 2))
    logits = onet(torch.zeros(3, 3, 48, 48), logits=True)[2]
    assert torch.allclose(torch.softmax(logits, 1), prob)


def test_astronaut_parity(detector, astronaut):
    faces = detector.detect([astronaut])[0]
    assert len(faces) == 1
    face = faces[0]
    np.testing.assert_allclose(face.xyxy, REF_BOX, atol=1.5)
    assert face.score == pytest.approx(REF_PROB, abs=1e-3)
    np.testing.assert_allclose(face.landmarks, REF_LANDMARKS, atol=1.5)


def test_batch_equals_single_calls(detector, astronaut, grid):
    frames = [astronaut, np.ascontiguousarray(astronaut[:, ::-1]), grid,
              np.zeros_like(astronaut), astronaut]
    assert_batch_equals_single_calls(detector, frames, [1, 1, 4, 0, 1])


def test_sorted_by_score_and_max_faces(detector, grid):
    faces = detector.detect([grid])[0]
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    best = MTCNNDetector(device="cpu", max_faces=1).detect([grid])[0]
    assert len(best) == 1 and best[0].xyxy == faces[0].xyxy


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (11, 11, 3), (11, 400, 3), (19, 19, 3)])
def test_tiny_and_empty_images(detector, shape):
    assert detector.detect([np.full(shape, 128, np.uint8)]) == [[]]


def test_empty_batch(detector):
    assert detector.detect([]) == []


def test_rejects_non_rgb_uint8(detector, astronaut):
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect([astronaut.astype(np.float32)])
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect([astronaut[..., 0]])


def test_unknown_and_bad_params():
    with pytest.raises(TypeError):
        MTCNNDetector(device="cpu", minsize=20)
    with pytest.raises(ValueError, match="factor"):
        MTCNNDetector(device="cpu", factor=1.0)
    with pytest.raises(ValueError, match="thresholds"):
        MTCNNDetector(device="cpu", thresholds=(0.6, 0.7))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_an_error():
    with pytest.raises(DeviceError, match="CUDA"):
        MTCNNDetector(device="cuda")


def _copy_weights(tmp_path):
    src = weights.default_weights_dir()
    (tmp_path / "mtcnn").mkdir()
    for name in ("pnet", "rnet", "onet"):
        shutil.copy(src / "mtcnn" / f"{name}.pt", tmp_path / "mtcnn" / f"{name}.pt")
    shutil.copy(src / "manifest.yaml", tmp_path / "manifest.yaml")
    return tmp_path


def test_tampered_weights_are_refused(tmp_path):
    wdir = _copy_weights(tmp_path)
    onet = wdir / "mtcnn" / "onet.pt"
    data = bytearray(onet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onet.write_bytes(bytes(data))
    expected = weights.load_manifest(wdir)["mtcnn_onet"].sha256
    with pytest.raises(weights.WeightsError) as err:
        MTCNNDetector(weights_dir=wdir, device="cpu")
    assert "onet.pt" in str(err.value) and expected in str(err.value)


def test_missing_weights_are_refused(tmp_path):
    wdir = _copy_weights(tmp_path)
    (wdir / "mtcnn" / "rnet.pt").unlink()
    expected = weights.load_manifest(wdir)["mtcnn_rnet"].sha256
    with pytest.raises(weights.WeightsError) as err:
        MTCNNDetector(weights_dir=wdir, device="cpu")
    assert "rnet.pt" in str(err.value) and expected in str(err.value)


def test_infant_stills(detector, shared_dir):
    clips = shared_dir / "data" / "lookit_infant_clips"
    three, none = detector.detect([_rgb(clips / "three_faces.jpg"), _rgb(clips / "no_face.jpg")])
    assert len(three) == 3
    assert none == []


def test_registered_as_plugin():
    from gaze_perception.core.registry import create

    det = create("face_detector", "mtcnn", device="cpu", max_faces=2)
    assert isinstance(det, MTCNNDetector) and det.max_faces == 2
    assert det.gives == {"faces", "landmarks"}


def test_area_gathers_equal_interpolate():
    """Pyramid levels and crops from the summed-area table are F.interpolate(mode="area"),
    bit for bit, also for crops smaller than their output (upsampled) and cut by the border."""
    import torch.nn.functional as F

    from gaze_perception.backends import mtcnn

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, 71, 97, 3), dtype=np.uint8)
    sat = mtcnn._integral(list(img))
    imgs = torch.from_numpy(img).permute(0, 3, 1, 2).float()
    for size in [(57, 83), (58, 84), (12, 13), (71, 97)]:
        want = mtcnn._normalise(F.interpolate(imgs, size=size, mode="area"))
        got = mtcnn._area_level(sat, size, torch.device("cpu")).permute(0, 3, 1, 2)
        assert torch.equal(got, want), size
    boxes = torch.tensor([[1, 1, 24, 24, 0.9], [-10, -5, 40, 30, 0.8], [90, 60, 120, 90, 0.7],
                          [50.7, 30.2, 51.9, 30.9, 0.5], [120, 10, 140, 20, 0.1],
                          [5, 5, 96, 71, 0.3]])
    inds = torch.tensor([0, 1, 0, 1, 0, 1])
    for size in (24, 48):
        got, valid = mtcnn._crops(sat, boxes, inds, size)
        assert valid.tolist() == [True, True, True, True, False, True]
        want = []
        for (x, y, ex, ey), b in zip(boxes[valid, :4].trunc().long().tolist(), inds[valid]):
            x, y, ex, ey = max(x, 1), max(y, 1), min(ex, 97), min(ey, 71)
            want.append(F.interpolate(imgs[b:b + 1, :, y - 1:ey, x - 1:ex], size=(size, size),
                                      mode="area"))
        assert torch.equal(got, mtcnn._normalise(torch.cat(want)))


@pytest.mark.parametrize("size", [(57, 83), (58, 84), (57, 84), (12, 12), (13, 13)])
def test_pnet_phase_form_equals_pnet(detector, size):
    """The backend's P-Net (conv1 and its max-pool on the 2x2 phases, odd sides included)
    gives P-Net's outputs within float rounding."""
    from gaze_perception.backends import mtcnn

    rng = np.random.default_rng(1)
    sat = mtcnn._integral(list(rng.integers(0, 256, (2, 60, 90, 3), dtype=np.uint8)))
    cpu = torch.device("cpu")
    with torch.inference_mode():
        want = detector.pnet(mtcnn._area_level(sat, size, cpu).permute(0, 3, 1, 2))
        got = detector._pnet_phases(mtcnn._area_level(sat, size, cpu, even=True), size)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, atol=1e-5, rtol=0)
