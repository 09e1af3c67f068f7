"""Gaze direction: conventions and metrics against hand values, L2CS bins, both training lines
end to end on generated data (few steps, small crops), the backends, and bad inputs."""
import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch

from gaze_perception.cli.main import main as cli
from gaze_perception.core.gaze_direction import (angles_to_vector, angular_error_deg,
                                                 face_grid, vector_to_angles)
from gaze_perception.core.types import Face
from gaze_perception.models.gaze_direction import AngleBins, L2CSNet, l2cs_loss
from gaze_perception.training.gaze_direction.data import grid_from_cells


# -- conventions and metrics ------------------------------------------------------------------
def test_angular_error_on_known_vectors():
    a = np.array([[1, 0, 0], [0, 0, -1], [0, 0, -1], [1, 1, 0]], float)
    b = np.array([[0, 1, 0], [0, 0, -3], [0, 0, 1], [1, 0, 0]], float)
    assert np.allclose(angular_error_deg(a, b), [90.0, 0.0, 180.0, 45.0])


def test_angle_convention_matches_head_pose_and_round_trips():
    assert np.allclose(angles_to_vector(0.0, 0.0), [0, 0, -1])        # into the camera
    assert np.allclose(angles_to_vector(math.pi / 2, 0.0), [1, 0, 0])  # image-right
    assert np.allclose(angles_to_vector(0.0, math.pi / 2), [0, 1, 0])  # down
    yaw, pitch = np.radians([-70.0, -10.0, 25.0]), np.radians([30.0, 0.0, -45.0])
    back = vector_to_angles(3.0 * angles_to_vector(yaw, pitch))
    assert np.allclose(back, (yaw, pitch))


def test_l2cs_bins_decode_to_bin_centres():
    bins = AngleBins(90, 4.0)
    assert bins.index(torch.tensor([-180.0, -178.1, 0.0, 179.9, 500.0])).tolist() == \
        [0, 0, 45, 89, 89]
    logits = torch.full((3, 90), -1e4)
    logits[0, 0], logits[1, 45], logits[2, 89] = 0.0, 0.0, 0.0
    assert torch.allclose(bins.decode(logits), torch.tensor([-178.0, 2.0, 178.0]))
    assert abs(bins.decode(torch.zeros(1, 90)).item()) < 1e-4  # uniform: the middle
    two = torch.full((1, 28), -1e4)
    two[0, 0] = two[0, 1] = 0.0                                  # half/half: between centres
    assert torch.allclose(AngleBins(28, 3.0).decode(two), torch.tensor([-39.0]))


def test_l2cs_loss_prefers_the_right_bins():
    bins = AngleBins(28, 3.0)
    target = torch.tensor([[10.0, -20.0]])
    right = torch.full((1, 28), -10.0)
    right[0, bins.index(target[:, 0])] = 10.0
    pitch_right = torch.full((1, 28), -10.0)
    pitch_right[0, bins.index(target[:, 1])] = 10.0
    good = l2cs_loss(right, pitch_right, target, bins)
    bad = l2cs_loss(pitch_right, right, target, bins)
    assert good < 5.0 < bad


@pytest.mark.parametrize("backbone", ["resnet18", "shufflenet_v2_x1_0", "mobilenetv3_large_100"])
def test_l2cs_heads_on_light_backbones(backbone):
    yaw, pitch = L2CSNet(backbone, bins=28).eval()(torch.zeros(2, 3, 64, 64))
    assert yaw.shape == pitch.shape == (2, 28)


def test_face_grid_marks_the_box():
    grid = face_grid((320, 0, 320, 240), 640, 480)
    assert grid.shape == (25, 25) and grid[0:13, 12:25].all() and grid.sum() == 13 * 13
    cells = grid_from_cells(2, 3, 4, 5)  # GazeCapture: 1-based x, y
    assert cells[2:7, 1:5].all() and cells.sum() == 20


# -- L2CS training line -------------------------------------------------------------------------
def _blob_image(yaw, pitch, size=48):
    """A face-crop stand-in whose bright blob moves with the gaze: learnable in a few steps."""
    img = np.full((size, size, 3), 60, np.uint8)
    cx = int(size / 2 + yaw / 40 * size / 3)
    cy = int(size / 2 + pitch / 40 * size / 3)
    cv2.circle(img, (cx, cy), size // 6, (230, 200, 180), -1)
    return img


@pytest.fixture(scope="module")
def angle_csv(tmp_path_factory):
    root = tmp_path_factory.mktemp("angles")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(32):
        yaw, pitch = rng.uniform(-35, 35), rng.uniform(-30, 30)
        cv2.imwrite(str(root / f"{i}.png"), _blob_image(yaw, pitch))
        rows.append((f"{i}.png", f"{yaw:.3f}", f"{pitch:.3f}", f"s{i % 4}"))
    path = root / "labels.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("file", "yaw", "pitch", "group"), *rows])
    return path


@pytest.fixture(scope="module")
def l2cs_run(angle_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("l2cs_run")
    rc = cli(["train", "gaze-direction", "--data", str(angle_csv), "--backbone", "resnet18",
              "--bins", "mpiigaze", "--input-size", "48", "--epochs", "4", "--batch-size", "8",
              "--lr", "2e-3", "--workers", "0", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    return out


def _losses(run):
    with open(run / "metrics.csv") as fh:
        return [float(r["train_loss"]) for r in csv.DictReader(fh)]


def test_l2cs_training_lowers_the_loss_and_the_backend_loads_it(l2cs_run, astronaut):
    losses = _losses(l2cs_run)
    assert len(losses) == 4 and losses[-1] < losses[0]
    from gaze_perception.core import registry
    backend = registry.create("gaze_direction", "l2cs", weights=str(l2cs_run / "best.pt"),
                              device="cpu")
    faces = [Face(180, 80, 120, 150, track_id=7), Face(-500, -500, 10, 10)]
    first, outside = backend.estimate([astronaut], [faces])[0]
    assert first.track_id == 7 and math.isfinite(first.yaw) and math.isfinite(first.pitch)
    assert np.isclose(np.linalg.norm(first.direction), 1.0)
    assert np.allclose(first.direction, angles_to_vector(first.yaw, first.pitch))
    assert outside.direction is None and math.isnan(outside.yaw)  # no crop: NaN, not an error


def test_l2cs_eval_reports_angular_error(l2cs_run, angle_csv, tmp_path):
    rc = cli(["eval", "gaze-direction", "--data", str(angle_csv), "--weights",
              str(l2cs_run / "best.pt"), "--workers", "0", "--device", "cpu",
              "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "p.csv")])
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["samples"] == 32 and 0.0 <= report["angular_error"] < 180.0
    with open(tmp_path / "p.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 32


def _same_weights(a, b):
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (a, b))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_l2cs_resumed_run_equals_the_straight_one(l2cs_run, angle_csv, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "gaze-direction", "--data", str(angle_csv), "--backbone", "resnet18",
            "--bins", "mpiigaze", "--input-size", "48", "--epochs", "4", "--batch-size", "8",
            "--lr", "2e-3", "--workers", "0", "--device", "cpu", "--out", str(out)]
    assert cli(argv + ["--stop-after", "2"]) == 0
    assert cli(argv) == 2  # a run is never overwritten
    assert cli(argv + ["--resume"]) == 0
    _same_weights(out / "last.pt", l2cs_run / "last.pt")
    assert _losses(out) == _losses(l2cs_run)


# -- iTracker training line ---------------------------------------------------------------------
def _gazecapture_session(folder, frames=12, valid=True):
    (folder / "frames").mkdir(parents=True)
    rng = np.random.default_rng(1)
    js = {k: {"X": [], "Y": [], "W": [], "H": [], "IsValid": []} for k in
          ("appleFace", "appleLeftEye", "appleRightEye", "faceGrid")}
    dot = {"XCam": [], "YCam": []}
    for i in range(frames):
        x = float(rng.uniform(-5, 5))
        img = np.full((120, 160, 3), 50, np.uint8)
        cv2.circle(img, (80 + int(3 * x), 60), 10, (255, 255, 255), -1)
        cv2.imwrite(str(folder / "frames" / f"{i:05d}.jpg"), img)
        for key, box in (("appleFace", (40, 20, 80, 80)), ("appleLeftEye", (45, 20, 20, 20)),
                         ("appleRightEye", (15, 20, 20, 20)), ("faceGrid", (7, 5, 12, 16))):
            for k, v in zip("XYWH", box):
                js[key][k].append(v)
            js[key]["IsValid"].append(int(valid or i % 2))
        dot["XCam"].append(x)
        dot["YCam"].append(-3.0 + x / 5)
    for key, value in js.items():
        (folder / f"{key}.json").write_text(json.dumps(value))
    (folder / "dotInfo.json").write_text(json.dumps(dot))
    (folder / "frames.json").write_text(json.dumps([f"{i:05d}.jpg" for i in range(frames)]))


def test_itracker_training_lowers_the_loss_and_the_backend_loads_it(tmp_path, astronaut):
    for session in ("00001", "00002"):
        _gazecapture_session(tmp_path / "gc" / session)
    out = tmp_path / "run"
    rc = cli(["train", "gaze-direction", "--model", "itracker", "--data", str(tmp_path / "gc"),
              "--input-size", "48", "--epochs", "3", "--batch-size", "6", "--workers", "0",
              "--val-fraction", "0.5", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    losses = _losses(out)
    assert losses[-1] < losses[0]
    from gaze_perception.core import registry
    backend = registry.create("gaze_direction", "itracker", weights=str(out / "best.pt"),
                              device="cpu")
    eyes = [(230.0, 160.0), (290.0, 160.0), (260.0, 190.0), (235.0, 215.0), (285.0, 215.0)]
    with_eyes, without = backend.estimate([astronaut], [[Face(200, 110, 120, 140, landmarks=eyes),
                                                          Face(200, 110, 120, 140)]])[0]
    assert all(math.isfinite(v) for v in with_eyes.point_cm) and with_eyes.direction is None
    assert without.point_cm is None  # iTracker needs the eye landmarks
    rc = cli(["eval", "gaze-direction", "--model", "itracker", "--data", str(tmp_path / "gc"),
              "--weights", str(out / "best.pt"), "--workers", "0", "--device", "cpu",
              "--json", str(tmp_path / "r.json")])
    assert rc == 0 and json.loads((tmp_path / "r.json").read_text())["distance_cm"] >= 0


# -- bad inputs -----------------------------------------------------------------------------------
def test_malformed_angle_csv_gives_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,yaw\nx.png,1\n")
    assert cli(["train", "gaze-direction", "--data", str(bad), "--out", str(tmp_path)]) == 2
    assert "lacks column(s) ['pitch']" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    bad.write_text("file,yaw,pitch\nx.png,left,1\n")
    assert cli(["train", "gaze-direction", "--data", str(bad), "--out", str(tmp_path)]) == 2
    assert "bad.csv:2: yaw and pitch must be numbers" in capsys.readouterr().err
    bad.write_text("file,yaw,pitch\nx.png,300,1\n")
    assert cli(["train", "gaze-direction", "--data", str(bad), "--out", str(tmp_path)]) == 2
    assert "check --units and --bins" in capsys.readouterr().err


def test_inconsistent_gazecapture_session_is_refused(tmp_path, capsys):
    _gazecapture_session(tmp_path / "s")
    dot = json.loads((tmp_path / "s" / "dotInfo.json").read_text())
    dot["XCam"].pop()
    (tmp_path / "s" / "dotInfo.json").write_text(json.dumps(dot))
    assert cli(["train", "gaze-direction", "--model", "itracker", "--data", str(tmp_path / "s"),
                "--out", str(tmp_path / "o")]) == 2
    assert "disagree on the number of frames" in capsys.readouterr().err


def test_backends_refuse_missing_or_foreign_weights(l2cs_run):
    from gaze_perception.core import registry
    from gaze_perception.core.weights import WeightsError
    with pytest.raises(ValueError, match="needs `weights`"):
        registry.create("gaze_direction", "l2cs", device="cpu")
    with pytest.raises(WeightsError, match="not an itracker checkpoint"):
        registry.create("gaze_direction", "itracker", weights=str(l2cs_run / "best.pt"),
                        device="cpu")
