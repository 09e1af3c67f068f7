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


# -- the other exported models -----------------------------------------------------------------
# Tolerances (stated): 1e-4 absolute (and 1e-4 relative) on network outputs (logits, angle-bin
# logits, screen points in cm, DINOv2 patch features, Gaze-LLE heatmaps and in/out); backend
# results through `runtime: onnxruntime` agree as closely (probabilities and angles 1e-4, the
# same states and the same heatmap argmax points). Random seeded weights where none ship (the
# speed and the graph are those of the architecture; the values are what is compared).
RTOL = 1e-4


def _close(got, want):
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        torch.testing.assert_close(g, w, atol=ATOL, rtol=RTOL)


@pytest.fixture(scope="module")
def astronaut_faces(detectors, astronaut):
    faces = detectors[0].detect([astronaut])[0]
    assert len(faces) == 1
    return faces


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Seeded random checkpoints of the models that ship without weights (small inputs)."""
    from gaze_perception.models import gaze_coding, gaze_direction
    from gaze_perception.models.state_dict import save_checkpoint
    root = tmp_path_factory.mktemp("onnx_weights")
    metas = {f"l2cs_{b}": gaze_direction.L2CSMeta(backbone=b, bins=28, bin_width=3.0,
                                                  input_size=64)
             for b in ("resnet18", "shufflenet_v2_x1_0", "ghostnet_100")}
    metas["itracker"] = gaze_direction.ITrackerMeta(face_size=48, eye_size=48)
    metas["gaze_coding"] = gaze_coding.CodingMeta(arch="resnet18", input_size=64)
    paths = {}
    for i, (name, meta) in enumerate(metas.items()):
        torch.manual_seed(i)
        module = gaze_coding if name == "gaze_coding" else gaze_direction
        paths[name] = root / f"{name}.pt"
        save_checkpoint(paths[name], module.build_model(meta), meta)
    return paths


def _pair(cls, **kw):
    return cls(device="cpu", **kw), cls(device="cpu", runtime="onnxruntime", **kw)


def _rand(*shape, seed=3):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_eye_state_on_onnxruntime_equals_torch(astronaut, astronaut_faces):
    from gaze_perception.backends.timm_eye import TimmEyeState
    torch_be, ort_be = _pair(TimmEyeState)
    for n in (1, 7, 0):
        x = _rand(n, 1, 24, 24)
        with torch.inference_mode():
            want = torch_be.model(x)
        _close(ort_be.model(x), want)
    (want,), (got,) = (be.estimate([astronaut], [astronaut_faces])[0] for be in (torch_be, ort_be))
    assert (got.state, got.left, got.right) == (want.state, want.left, want.right)
    assert got.closed_prob == pytest.approx(want.closed_prob, abs=ATOL)


@pytest.mark.parametrize("backbone", ["resnet18", "shufflenet_v2_x1_0", "ghostnet_100"])
def test_l2cs_on_onnxruntime_equals_torch(checkpoints, backbone, astronaut, astronaut_faces):
    from gaze_perception.backends.gaze_direction import L2CSGazeDirection
    torch_be, ort_be = _pair(L2CSGazeDirection, weights=checkpoints[f"l2cs_{backbone}"])
    x = _rand(3, 3, 64, 64)
    with torch.inference_mode():
        want = torch_be.model(x)
    _close(ort_be.model(x), want)
    (want,), (got,) = (be.estimate([astronaut], [astronaut_faces])[0] for be in (torch_be, ort_be))
    assert got.yaw == pytest.approx(want.yaw, abs=ATOL)
    assert got.pitch == pytest.approx(want.pitch, abs=ATOL)


def test_itracker_on_onnxruntime_equals_torch(checkpoints, astronaut, astronaut_faces):
    from gaze_perception.backends.gaze_direction import ITrackerScreenPoint
    torch_be, ort_be = _pair(ITrackerScreenPoint, weights=checkpoints["itracker"])
    xs = [_rand(2, 3, 48, 48, seed=s) for s in range(3)]
    xs.append(torch.randint(0, 2, (2, 25, 25), dtype=torch.uint8))
    with torch.inference_mode():
        want = torch_be.model(*xs)
    _close(ort_be.model(*xs), want)
    (want,), (got,) = (be.estimate([astronaut], [astronaut_faces])[0] for be in (torch_be, ort_be))
    assert got.point_cm == pytest.approx(want.point_cm, abs=ATOL)


def test_gaze_coding_on_onnxruntime_equals_torch(checkpoints, astronaut, astronaut_faces):
    from gaze_perception.backends.gaze_coding import InfantGazeCoder
    torch_be, ort_be = _pair(InfantGazeCoder, weights=checkpoints["gaze_coding"])
    x = _rand(4, 3, 64, 64)
    with torch.inference_mode():
        want = torch_be.model(x)
    _close(ort_be.model(x), want)
    (want,), (got,) = (be.estimate([astronaut], [astronaut_faces]) for be in (torch_be, ort_be))
    assert got.code == want.code
    np.testing.assert_allclose(got.probs, want.probs, atol=ATOL)


@pytest.fixture(scope="module")
def gazelle_files(shared_dir):
    root = shared_dir / "fixtures" / "gazelle"
    return dict(variant="vits14_depth2",
                backbone_weights=str(root / "dinov2_backbone_hub_format.pth"),
                decoder_weights=str(root / "gazelle_decoder_inout.pt"))


def test_gazelle_backbone_and_decoder_on_onnxruntime_equal_torch(gazelle_files, astronaut,
                                                                  astronaut_faces):
    from gaze_perception.backends.gazelle import GazeLLEBackend
    from gaze_perception.models.gazelle import head_maps
    torch_be, ort_be = _pair(GazeLLEBackend, heatmaps=True, precision="fp32", **gazelle_files)
    images = _rand(1, 3, 448, 448)
    with torch.inference_mode():
        want = torch_be.model.backbone.forward_patch_features(images)
        _close(ort_be.model.backbone.forward_patch_features(images), want)
        maps = head_maps([(0.1, 0.2, 0.3, 0.4), (0.5, 0.1, 0.9, 0.6), (0.0, 0.0, 1.0, 0.2)], 32)
        for counts in ([2, 1], [0, 3]):
            n = sum(counts)
            feats = torch.cat([want, want.flip(-1)])  # two images
            heat, inout = torch_be.model.decoder(feats, maps[:n], counts)
            _close(ort_be.model.decoder(feats, maps[:n], counts), (heat, inout))
    frames = [astronaut, astronaut[::2, ::2].copy()]
    faces = [astronaut_faces * 2, [f.__class__.from_xyxy(*(v / 2 for v in f.xyxy))
                                   for f in astronaut_faces]]
    want, got = (be.estimate(frames, faces) for be in (torch_be, ort_be))
    for w, g in zip(sum(want, []), sum(got, [])):
        assert g.point == w.point
        np.testing.assert_allclose(g.heatmap, w.heatmap, atol=ATOL)
        assert g.inout == pytest.approx(w.inout, abs=ATOL)


@pytest.mark.parametrize("model", ["eye-state", "l2cs", "itracker", "gaze-coding", "gazelle"])
def test_export_command_writes_the_files_each_backend_loads(model, checkpoints, gazelle_files,
                                                            tmp_path, astronaut,
                                                            astronaut_faces):
    from gaze_perception.backends.gaze_coding import InfantGazeCoder
    from gaze_perception.backends.gaze_direction import ITrackerScreenPoint, L2CSGazeDirection
    from gaze_perception.backends.gazelle import GazeLLEBackend
    from gaze_perception.backends.timm_eye import TimmEyeState
    from gaze_perception.cli.export import MODELS
    cls, kw, args = {
        "eye-state": (TimmEyeState, {}, []),
        "l2cs": (L2CSGazeDirection, {"weights": checkpoints["l2cs_resnet18"]}, []),
        "itracker": (ITrackerScreenPoint, {"weights": checkpoints["itracker"]}, []),
        "gaze-coding": (InfantGazeCoder, {"weights": checkpoints["gaze_coding"]}, []),
        "gazelle": (GazeLLEBackend, {**gazelle_files},
                    ["--variant", "vits14_depth2", "--backbone-weights",
                     gazelle_files["backbone_weights"]]),
    }[model]
    if "weights" in kw:
        args += ["--weights", str(kw["weights"])]
    if "decoder_weights" in kw:
        args += ["--weights", kw["decoder_weights"]]
    assert cli(["export", model, "--format", "onnx", "--out", str(tmp_path), *args]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        sorted(f"{n}.onnx" for n in MODELS[model][1])
    torch_be = cls(device="cpu", **kw)
    ort_be = cls(device="cpu", runtime="onnxruntime", onnx_dir=tmp_path, **kw)
    assert "runtime=onnxruntime" in ort_be.describe()
    want, got = (be.estimate([astronaut], [astronaut_faces]) for be in (torch_be, ort_be))
    assert len(got) == len(want) == 1
    with pytest.raises(FileNotFoundError, match="gaze-perception export"):
        cls(device="cpu", runtime="onnxruntime", onnx_dir=tmp_path / "none", **kw)
    with pytest.raises(ValueError, match="unknown runtime"):
        cls(device="cpu", runtime="tensorrt", **kw)


def test_export_without_weights_says_how_to_get_them(tmp_path, capsys):
    from gaze_perception.cli.args import EXIT_ERROR
    assert cli(["export", "l2cs", "--out", str(tmp_path)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "needs --weights" in err and "gaze-perception train gaze-direction" in err
    assert "Traceback" not in err
    empty = tmp_path / "weights"
    empty.mkdir()
    from gaze_perception.core.weights import default_weights_dir
    (empty / "manifest.yaml").write_text((default_weights_dir() / "manifest.yaml").read_text())
    assert cli(["export", "gazelle", "--out", str(tmp_path / "o"), "--weights-dir",
                str(empty)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "not installed" in err and "gaze-perception weights fetch" in err
    assert not (tmp_path / "o").exists()


def test_onnxruntime_gazelle_refuses_a_torch_precision(gazelle_files):
    from gaze_perception.backends.gazelle import GazeLLEBackend
    with pytest.raises(ValueError, match="runtime=onnxruntime runs the exported fp32"):
        GazeLLEBackend(device="cpu", runtime="onnxruntime", precision="bf16", **gazelle_files)


def test_files_exported_from_other_weights_are_refused(checkpoints, tmp_path):
    from gaze_perception.backends.gaze_coding import InfantGazeCoder
    from gaze_perception.models.gaze_coding import CodingMeta, build_model
    from gaze_perception.models.state_dict import save_checkpoint
    InfantGazeCoder(device="cpu", weights=checkpoints["gaze_coding"]).export_onnx(tmp_path)
    meta = CodingMeta(arch="resnet18", input_size=64)
    torch.manual_seed(99)
    other = tmp_path / "other.pt"
    save_checkpoint(other, build_model(meta), meta)
    with pytest.raises(ValueError, match="exported from other weights"):
        InfantGazeCoder(device="cpu", weights=other, runtime="onnxruntime", onnx_dir=tmp_path)
    InfantGazeCoder(device="cpu", weights=checkpoints["gaze_coding"], runtime="onnxruntime",
                    onnx_dir=tmp_path)
