"""Eye state: model door, training and evaluation CLI, splits, the timm_eye backend and the
shipped default weights."""
import csv
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gaze_perception.backends.timm_eye import TimmEyeState
from gaze_perception.cli.main import main
from gaze_perception.core.eye_crops import DEFAULT_SCALE
from gaze_perception.core.types import Face
from gaze_perception.core.weights import WeightsError, load_manifest, sha256_of
from gaze_perception.models.eye_decision import decide
from gaze_perception.models.eye_state import (EyeModelMeta, create_eye_model, load_eye_model,
                                              to_tensor)
from gaze_perception.models.state_dict import save_checkpoint
from gaze_perception.training.eyes import data as ds
from gaze_perception.training.splits import split

REPO = Path(__file__).resolve().parents[1]
SPLIT = REPO / "weights" / "eye_state" / "split_test.txt"


def _eye(closed: bool, rng) -> np.ndarray:
    """Synthetic 24x24 eye: a dark pupil (open) or a dark lid line (closed) on noisy skin."""
    img = rng.normal(170, 12, (24, 24)).clip(0, 255).astype(np.uint8)
    c = (12 + int(rng.integers(-2, 3)), 12 + int(rng.integers(-2, 3)))
    if closed:
        cv2.line(img, (c[0] - 7, c[1]), (c[0] + 7, c[1]), 40, 2)
    else:
        cv2.circle(img, c, 5, 40, -1)
    return img


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eyes")
    rng = np.random.default_rng(0)
    for folder, closed, n in (("Opened", False, 24), ("close", True, 16)):  # names as users write
        (root / folder).mkdir()
        for i in range(n):
            cv2.imwrite(str(root / folder / f"s{i % 4:04d}_{i:03d}.png"), _eye(closed, rng))
    return root


@pytest.fixture(scope="module")
def trained(tiny_folder, tmp_path_factory) -> Path:
    """A short CLI training run on the tiny folder; returns its output folder."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "eye-state", "--data", str(tiny_folder), "--out", str(out),
                 "--epochs", "6", "--batch-size", "8", "--lr", "0.01", "--device", "cpu",
                 "--val-fraction", "0.25", "--group-regex", r"(s\d+)_"]) == 0
    return out


def _metrics(out: Path):
    with open(out / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


# --- model door and checkpoints --------------------------------------------------------------

@pytest.mark.parametrize("arch, in_chans, size", [("eyenet", 1, 24), ("eyenet", 3, 64),
                                                  ("resnet10t", 1, 32)])
def test_create_eye_model_own_and_timm(arch, in_chans, size):
    model = create_eye_model(arch, num_classes=3, in_chans=in_chans).eval()
    assert model(torch.zeros(2, in_chans, size, size)).shape == (2, 3)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="neither"):
        create_eye_model("no_such_net")


def test_checkpoint_round_trip_loads_weights_only(tmp_path):
    meta = EyeModelMeta(classes=["open", "closed", "occluded"])
    model = create_eye_model("eyenet", 3, 1)
    save_checkpoint(tmp_path / "m.pt", model, meta, info={"epoch": 1})
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["meta"]["classes"] == ["open", "closed", "occluded"]
    loaded, meta2 = load_eye_model(tmp_path / "m.pt")
    assert meta2 == meta
    x = torch.randn(1, 1, 24, 24)
    assert torch.equal(model.eval()(x), loaded(x))


def test_corrupt_foreign_and_tampered_weights_raise_weights_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot load"):
        TimmEyeState(weights=bad, device="cpu")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": create_eye_model("resnet10t", 2, 1).state_dict(),
                "meta": EyeModelMeta().to_dict()}, foreign)  # eyenet meta, resnet weights
    with pytest.raises(WeightsError, match="does not fit"):
        load_eye_model(foreign)
    torch.save(create_eye_model("eyenet").state_dict(), tmp_path / "plain.pt")
    with pytest.raises(WeightsError, match="not an eye-state checkpoint"):
        load_eye_model(tmp_path / "plain.pt")
    wdir = tmp_path / "weights"
    (wdir / "eye_state").mkdir(parents=True)
    (wdir / "manifest.yaml").write_text(
        f"weights:\n  eye_state_default:\n    file: eye_state/m.pt\n    sha256: {'0' * 64}\n")
    shutil.copy(foreign, wdir / "eye_state" / "m.pt")
    with pytest.raises(WeightsError, match="sha256"):
        TimmEyeState(weights_dir=wdir, device="cpu")


def test_decision_rule():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.45, 0.55]])
    index, unknown = decide(probs, threshold=0.5, unknown_below=0.6)
    assert index.tolist() == [0, 1, 1] and unknown.tolist() == [False, False, True]
    index, unknown = decide(np.array([[0.1, 0.2, 0.7]]), 0.5, 0.6)
    assert index.tolist() == [2] and unknown.tolist() == [True]  # explicit third class


# --- data and splits -------------------------------------------------------------------------

def test_group_disjoint_split_never_shares_a_group(tmp_path):
    rng = np.random.default_rng(1)
    for subject in range(1, 30):  # MRL Eye style names; the files are never read
        for i in range(int(rng.integers(1, 40))):
            label = ("open", "closed")[int(rng.integers(2))]
            (tmp_path / label).mkdir(exist_ok=True)
            (tmp_path / label / f"s{subject:04d}_{i:05d}_0_1_0_0_0_01.png").touch()
    samples = ds.load_samples(tmp_path, ["open", "closed"], group_regex=r"(s\d+)_")
    assert len({s.group for s in samples}) == 29
    for seed in range(5):
        for fraction in (0.1, 0.3, 0.5):
            train, val = split(samples, fraction, seed)
            assert {s.group for s in train}.isdisjoint({s.group for s in val})
            assert len(train) + len(val) == len(samples) and train
            assert len(val) >= fraction * len(samples)


def test_csv_group_column_and_clear_data_errors(tmp_path, tiny_folder):
    rows = [f"{p.relative_to(tiny_folder).as_posix()},{p.parent.name},{p.name[:5]}"
            for p in sorted(tiny_folder.rglob("*.png"))]
    (tmp_path / "ok.csv").write_text("file,label,subject\n" + "\n".join(rows) + "\n")
    samples = ds.load_samples(tmp_path / "ok.csv", ["open", "closed"], tiny_folder,
                              group_column="subject")
    assert len(samples) == 40 and {s.group for s in samples} == {"s0000", "s0001", "s0002",
                                                                 "s0003"}
    cases = {
        "nolabel.csv": ("file,kind\na.png,open\n", "lacks column"),
        "badlabel.csv": ("file,label\n" + rows[0].rsplit(",", 2)[0] + ",sleepy\n",
                         "unknown label 'sleepy'"),
        "empty.csv": ("file,label\n" + rows[0].rsplit(",", 2)[0] + ",\n", "line 2"),
        "missing.csv": ("file,label\nnope.png,open\n", "not found"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ds.DataError, match=message):
            ds.load_samples(tmp_path / name, ["open", "closed"], tiny_folder)
    (tmp_path / "folders" / "closed").mkdir(parents=True)
    with pytest.raises(ds.DataError, match="holds no"):
        ds.load_samples(tmp_path / "folders", ["open", "closed"])


def test_cli_reports_data_errors(tmp_path, capsys):
    (tmp_path / "data" / "blinking").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "data" / "blinking" / "a.png"), np.zeros((24, 24), np.uint8))
    code = main(["train", "eye-state", "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "unknown label 'blinking'" in capsys.readouterr().err


# --- training --------------------------------------------------------------------------------

def test_training_lowers_loss_and_writes_loadable_checkpoints(trained):
    rows = _metrics(trained)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert float(rows[-1]["train_loss"]) < 0.7 * float(rows[0]["train_loss"])
    assert {"val_recall_open", "val_recall_closed", "train_acc", "val_loss"} <= set(rows[0])
    assert any((trained / "tensorboard").iterdir())
    model, meta = load_eye_model(trained / "best.pt")
    assert meta.classes == ["open", "closed"] and meta.crop_scale == DEFAULT_SCALE
    assert torch.load(trained / "last.pt", weights_only=True)["info"]["epoch"] == 6
    state = torch.load(trained / "train_state.pt", weights_only=True)
    assert state["epoch"] == 6 and "optimizer" in state and state["config"]["epochs"] == 6


def test_resume_continues_the_run_exactly(tiny_folder, tmp_path):
    common = ["train", "eye-state", "--data", str(tiny_folder), "--batch-size", "8",
              "--device", "cpu", "--val-fraction", "0.25", "--balance", "sampler",
              "--epochs", "3"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--out", str(tmp_path / "b"), "--stop-after", "2"]) == 0
    assert torch.load(tmp_path / "b" / "train_state.pt", weights_only=True)["epoch"] == 2
    assert main(["train", "eye-state", "--data", str(tiny_folder), "--device", "cpu",
                 "--out", str(tmp_path / "b"), "--resume", str(tmp_path / "b" / "last.pt")]) == 0
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert b["info"]["epoch"] == 3 and len(_metrics(tmp_path / "b")) == 3
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


# --- evaluation ------------------------------------------------------------------------------

def test_eval_cli_writes_consistent_json_and_csv(trained, tiny_folder, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["eval", "eye-state", "--data", str(tiny_folder), "--device", "cpu",
                 "--weights", str(trained / "best.pt"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    with open(out.with_suffix(".csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == report["images"] == 40 and "confusion matrix" in printed
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == 40
    classes = report["classes"]
    for i, truth in enumerate(classes):
        for j, pred in enumerate(classes):
            assert cm[i, j] == sum(r["label"] == truth and r["prediction"] == pred for r in rows)
    hits = sum(r["label"] == r["prediction"] for r in rows)
    assert report["accuracy"] == pytest.approx(hits / 40)
    closed = [r for r in rows if r["label"] == "closed"]
    assert report["per_class"]["closed"]["recall"] == pytest.approx(
        sum(r["prediction"] == "closed" for r in closed) / len(closed))
    assert report["unknown_rate"] == pytest.approx(sum(r["unknown"] == "1" for r in rows) / 40)
    # the probabilities are the model's own
    model, meta = load_eye_model(trained / "best.pt")
    img = cv2.imread(str(tiny_folder / rows[0]["file"]), cv2.IMREAD_GRAYSCALE)
    with torch.no_grad():
        p = torch.softmax(model(to_tensor(img[None], meta)), 1)[0, 1].item()
    assert float(rows[0]["p_closed"]) == pytest.approx(p, abs=1e-5)


# --- backend ---------------------------------------------------------------------------------

def _frame_from_crops(left: np.ndarray, right: np.ndarray, zoom: int = 4):
    """A gray frame holding two eye crops so that crop_eye at DEFAULT_SCALE cuts them out again;
    returns (RGB frame, Face)."""
    side = left.shape[0] * zoom
    iod = side / DEFAULT_SCALE
    width = int(math.ceil(iod + side))
    frame = np.full((side, width), 128, np.uint8)
    frame[:, :side] = cv2.resize(left, (side, side), interpolation=cv2.INTER_LINEAR)
    frame[:, width - side:] = cv2.resize(right, (side, side), interpolation=cv2.INTER_LINEAR)
    cy, lx, rx = (side - 1) / 2, (side - 1) / 2, width - side + (side - 1) / 2
    face = Face(0, 0, width, side, landmarks=[(lx, cy), (rx, cy), (0, 0), (0, 0), (0, 0)])
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB), face


def test_backend_batches_all_eyes_in_one_pass_and_handles_bad_faces(trained):
    backend = TimmEyeState(weights=trained / "best.pt", device="cpu")
    calls = []
    backend.model.register_forward_hook(lambda *a: calls.append(1))
    rng = np.random.default_rng(3)
    frame, face = _frame_from_crops(_eye(False, rng), _eye(True, rng))
    border = Face(0, 0, 10, 10, landmarks=[(-5.0, 5.0), (20.0, 5.0)])      # left eye outside
    bare = Face(0, 0, 10, 10, track_id=7)                                  # no landmarks
    out = backend.estimate([frame, frame], [[face, border, bare], []])
    assert len(calls) == 1 and [len(o) for o in out] == [3, 0]
    good, edge, none = out[0]
    assert [e.face_index for e in out[0]] == [0, 1, 2]
    assert 0 <= good.left_closed_prob <= 1 and 0 <= good.right_closed_prob <= 1
    assert edge.left == "unknown" and math.isnan(edge.left_closed_prob)
    assert not math.isnan(edge.right_closed_prob) and edge.closed_prob == edge.right_closed_prob
    assert none.state == none.left == none.right == "unknown" and none.track_id == 7
    assert math.isnan(none.closed_prob)
    assert backend.estimate([], []) == []


# --- the shipped default model ---------------------------------------------------------------

@pytest.fixture(scope="module")
def held_out(shared_dir):
    root = shared_dir / "data" / "eye_state_24x24"
    samples = ds.select(ds.load_samples(root / "labels.csv", ["open", "closed"],
                                        root / "input" / "EyesDataset"),
                        only=ds.read_file_list(SPLIT))
    return samples, ds.load_images(samples, 24, 1)


def test_shipped_weights_are_in_the_manifest():
    entry = load_manifest()["eye_state_default"]
    path = REPO / "weights" / entry.file
    assert sha256_of(path) == entry.sha256 and path.stat().st_size < 2_000_000


def test_shipped_model_on_its_held_out_list(held_out, tmp_path, capsys):
    samples, _ = held_out
    root = Path(samples[0].path).parent
    out = tmp_path / "heldout.json"
    assert main(["eval", "eye-state", "--data", str(root.parents[1] / "labels.csv"),
                 "--image-root", str(root), "--only-files", str(SPLIT),
                 "--weights", "eye_state_default", "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["images"] == len(samples) > 500
    assert report["accuracy"] >= 0.95
    # the backend, fed frames that hold the same crops, agrees with the evaluation
    _, images = held_out
    backend = TimmEyeState(device="cpu")
    frames, faces = zip(*(_frame_from_crops(images[i], images[i + 1])
                          for i in range(0, len(images) - 1, 2)))
    states = backend.estimate(list(frames), [[f] for f in faces])
    probs = [p for (e,) in states for p in (e.left_closed_prob, e.right_closed_prob)]
    labels = [s.label for s in samples[:len(probs)]]
    accuracy = np.mean([(p >= 0.5) == bool(y) for p, y in zip(probs, labels)])
    print(f"held-out accuracy: evaluation {report['accuracy']:.4f}, backend {accuracy:.4f}")
    assert abs(accuracy - report["accuracy"]) < 0.015


def test_cli_module_does_not_import_torch():
    """The CLI builds its parser from this module at every start; torch must stay lazy."""
    import subprocess
    import sys
    code = ("import sys, gaze_perception.training.eyes.cli; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
