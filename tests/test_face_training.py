"""Face-detector training and evaluation: annotation files, sample generation, losses, the
train / eval CLI on a tiny set made from the astronaut, and AP against hand-computed values."""
import csv
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from gaze_perception.backends.mtcnn import MTCNNDetector
from gaze_perception.cli.main import main
from gaze_perception.core import weights
from gaze_perception.models.mtcnn import ONet, PNet, RNet
from gaze_perception.models.state_dict import load_strict
from gaze_perception.training.errors import DataError
from gaze_perception.training.faces.data import ImageFaces, merge, read_boxes, read_landmarks
from gaze_perception.metrics.face_detection import (Detections, average_precision,
                                                   normalised_point_error)
from gaze_perception.core.boxes import iou_matrix
from gaze_perception.training.faces.samples import (LANDMARK, NEG, PART, POS, SampleConfig,
                                                   generate, image_samples)
from gaze_perception.training.faces.train import STAGES, LossConfig, evaluate, flip, losses

# facenet-pytorch's MTCNN on the astronaut (as in test_mtcnn.py)
ASTRO_BOX = (181.05, 62.16, 267.75, 172.05)
ASTRO_POINTS = [(205.01, 101.73), (246.76, 103.71), (224.67, 128.96), (201.72, 139.25),
                (245.27, 141.86)]


@pytest.fixture(scope="module")
def astro_set(tmp_path_factory, astronaut):
    """The astronaut at three scales: images, a WIDER FACE box file and a landmark file."""
    root = tmp_path_factory.mktemp("astro")
    boxes, points = [], []
    for i, s in enumerate((1.0, 0.75, 0.6)):
        img = cv2.resize(astronaut, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / f"a{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        x1, y1, x2, y2 = (v * s for v in ASTRO_BOX)
        box = f"{x1:.2f} {y1:.2f} {x2 - x1:.2f} {y2 - y1:.2f}"
        boxes += [f"a{i}.png", "1", f"{box} 0 0 0 0 0 0"]
        points.append(f"a{i}.png " + " ".join(f"{x * s:.2f} {y * s:.2f}"
                                              for x, y in ASTRO_POINTS) + f" {box}")
    (root / "boxes.txt").write_text("\n".join(boxes) + "\n")
    (root / "landmarks.txt").write_text("\n".join(points) + "\n")
    return root


# --- annotation files -------------------------------------------------------------------------

def test_wider_face_box_file(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("0--Parade/a.jpg\n2\n10 20 30 40 0 0 0 0 0 0\n50 60 5 6 2 0 0 1 0 0\n"
                    "1--Handshaking/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n"
                    "c.jpg\n1\n1 2 3 4\n")
    a, b, c = read_boxes(path)
    assert a.file == "0--Parade/a.jpg"
    np.testing.assert_allclose(a.boxes, [[10, 20, 40, 60], [50, 60, 55, 66]])
    assert a.ignore.tolist() == [False, True]  # the `invalid` column
    assert b.file == "1--Handshaking/b.jpg" and len(b.boxes) == 0
    np.testing.assert_allclose(c.boxes, [[1, 2, 4, 6]])


@pytest.mark.parametrize("text, line, match", [
    ("a.jpg\n", 1, "no face count"),
    ("a.jpg\ntwo\n1 2 3 4\n", 2, "face count"),
    ("a.jpg\n2\n1 2 3 4\n", 2, "announces 2 faces"),
    ("a.jpg\n1\n1 2 3\n", 3, "3 fields"),
    ("a.jpg\n1\n1 2 x 4\n", 3, "must be numbers"),
    ("a.jpg\n1\n1 2 -3 4\n", 3, "negative box size"),
    ("a.jpg\n2\n1 2 3 4\nb.jpg\n", 4, "1 fields"),
])
def test_malformed_box_files_name_file_and_line(tmp_path, text, line, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as err:
        read_boxes(path)
    assert f"{path} line {line}:" in str(err.value)


def test_landmark_file_and_its_errors(tmp_path):
    path = tmp_path / "lm.txt"
    path.write_text("# file, 5 points, box\n" + "a.jpg " + " ".join(map(str, range(10)))
                    + " 1 2 30 40\n")
    faces = read_landmarks(path)["a.jpg"]
    assert faces.points.shape == (1, 5, 2) and faces.points[0, 4].tolist() == [8, 9]
    np.testing.assert_allclose(faces.point_boxes, [[1, 2, 31, 42]])
    path.write_text("a.jpg 1 2 3\n")
    with pytest.raises(DataError, match=f"{path} line 1: expected"):
        read_landmarks(path)
    with pytest.raises(DataError, match="cannot read"):
        read_boxes(tmp_path / "missing.txt")


# --- sample generation ------------------------------------------------------------------------

def test_samples_have_the_iou_classes_they_claim(tmp_path):
    rng = np.random.default_rng(1)
    lines = []
    for i in range(4):
        img = rng.integers(0, 255, (240, 320, 3), np.uint8)
        cv2.imwrite(str(tmp_path / f"r{i}.png"), img)
        wh = rng.uniform(24, 90, (4, 2))
        xy = rng.uniform(0, 1, (4, 2)) * (np.array([320, 240]) - wh)
        flags = ["0", "0", "0", "1"]  # the last face is WIDER `invalid`: an ignore region
        lines += [f"r{i}.png", "4"] + [f"{x:.1f} {y:.1f} {w:.1f} {h:.1f} 0 0 0 {f} 0 0"
                                       for (x, y), (w, h), f in zip(xy, wh, flags)]
    (tmp_path / "boxes.txt").write_text("\n".join(lines) + "\n")
    dataset = read_boxes(tmp_path / "boxes.txt")
    cfg = SampleConfig(size=24, crops_per_face=40, min_face=20)
    s = generate(dataset, tmp_path, cfg, seed=0)
    assert s.images.shape[1:] == (24, 24, 3) and s.images.dtype == np.uint8
    counts = s.counts()
    assert counts["positive"] > 20 and counts["part"] > 20
    assert counts["negative"] == round(3 * counts["positive"])  # 1:3, background is ample
    for k in range(len(s)):
        faces = dataset[s.source[k]]
        overlaps = iou_matrix(s.crops[k:k + 1], faces.boxes)[0]
        best = overlaps.argmax()
        assert overlaps.max() == pytest.approx(s.iou[k], abs=1e-5)
        side = s.crops[k, 2:] - s.crops[k, :2]
        assert side[0] == side[1] and (s.crops[k] >= 0).all()
        if s.kind[k] == NEG:
            assert overlaps.max() < 0.3
            assert not s.offsets[k].any()
        else:
            assert not faces.ignore[best]
            assert overlaps.max() >= (0.65 if s.kind[k] == POS else 0.4)
            assert s.kind[k] == POS or overlaps.max() < 0.65
            np.testing.assert_allclose(s.crops[k] + s.offsets[k] * np.tile(side, 2),
                                       faces.boxes[best], atol=1e-3)


def test_mined_candidates_are_labelled_and_fill_the_negatives():
    faces = ImageFaces("x", np.array([[100, 100, 160, 160], [20, 20, 60, 60]], np.float32),
                       np.array([False, True]))
    mined = np.array([[102, 98, 162, 158],     # positive
                      [112, 112, 172, 172],    # part face
                      [300, 10, 340, 50],      # negative
                      [22, 22, 62, 62],        # on the ignored face: dropped
                      [130, 130, 190, 190]],   # IoU 0.14 with the face: negative
                     np.float32)
    image = np.zeros((240, 400, 3), np.uint8)
    cfg = SampleConfig(size=12, crops_per_face=1, min_face=1000)  # no jitter: mined only
    s = image_samples(image, faces, cfg, np.random.default_rng(0), mined)
    assert sorted(map(tuple, s.crops[s.kind != NEG].tolist())) == [(102, 98, 162, 158),
                                                                   (112, 112, 172, 172)]
    assert s.kind[s.crops[:, 0] == 102].tolist() == [POS]
    neg = s.crops[s.kind == NEG]
    assert len(neg) == 3  # ratio 3 x 1 positive: both mined negatives, then a random one
    assert {(300, 10, 340, 50), (130, 130, 190, 190)} <= set(map(tuple, neg.tolist()))


def test_landmark_samples_keep_the_points(astro_set):
    dataset = read_landmarks(astro_set / "landmarks.txt")
    s = generate(list(dataset.values()), astro_set, SampleConfig(48, landmarks=True), seed=0)
    lm = s.kind == LANDMARK
    assert lm.sum() > 5 and (s.iou[lm] >= 0.65).all()
    for k in np.nonzero(lm)[0]:
        side = s.crops[k, 2:] - s.crops[k, :2]
        xy = np.stack([s.points[k, :5], s.points[k, 5:]], 1) * side + s.crops[k, :2]
        np.testing.assert_allclose(xy, dataset[f"a{s.source[k]}.png"].points[0], atol=1e-3)


# --- losses -----------------------------------------------------------------------------------

def test_loss_heads_and_ohem():
    kind = torch.tensor([NEG, POS, POS, PART, LANDMARK])
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    reg, offsets = torch.zeros(5, 4), torch.full((5, 4), 0.5)
    pts, points = torch.zeros(5, 10), torch.zeros(5, 10)
    ce = torch.nn.functional.cross_entropy(logits[:3], torch.tensor([0, 1, 1]), reduction="none")
    plain = losses(reg, pts, logits, kind, offsets, points, LossConfig((1, 0.5, 1), ohem=1.0))
    assert plain["cls"].item() == pytest.approx(ce.mean().item())
    assert plain["box"].item() == pytest.approx(0.25)  # MSE over positives and parts only
    assert plain["pts"].item() == 0.0
    hard = losses(reg, pts, logits, kind, offsets, points, LossConfig((1, 0.5, 1), ohem=0.7))
    assert hard["cls"].item() == pytest.approx(ce.topk(3).values.mean().item())  # ceil(2.1)
    hard = losses(reg, pts, logits, kind, offsets, points, LossConfig((1, 0.5, 1), ohem=0.3))
    assert hard["cls"].item() == pytest.approx(ce.max().item())
    assert hard["total"].item() == pytest.approx(ce.max().item() + 0.5 * 0.25)
    smooth = losses(reg, None, logits, kind, offsets, points,
                    LossConfig((1, 1, 1), "smooth_l1", cls_weights=(1.0, 2.0)))
    assert smooth["box"].item() == pytest.approx(0.125)  # 0.5 * 0.5 ** 2
    assert smooth["pts"].item() == 0.0  # no landmark head


def test_flip_mirrors_targets():
    images = torch.arange(2 * 4 * 4 * 3, dtype=torch.uint8).reshape(2, 4, 4, 3)
    offsets = torch.tensor([[0.1, 0.2, -0.3, 0.4]] * 2)
    points = torch.tensor([[0.3, 0.7, 0.5, 0.35, 0.65, 0.4, 0.42, 0.6, 0.8, 0.82]] * 2)
    mask = torch.tensor([True, False])
    i2, o2, p2 = flip(images, offsets, points, mask)
    assert torch.equal(i2[0], images[0].flip(1)) and torch.equal(i2[1], images[1])
    assert torch.allclose(o2[0], torch.tensor([0.3, 0.2, -0.1, 0.4]))
    assert torch.allclose(p2[0], torch.tensor([0.3, 0.7, 0.5, 0.35, 0.65,
                                               0.42, 0.4, 0.6, 0.82, 0.8]))
    for twice, original in zip(flip(i2, o2, p2, mask), (images, offsets, points)):
        assert torch.allclose(twice.float(), original.float())


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_published_stages_agree_with_the_sample_targets(astro_set, stage):
    """The facenet-pytorch weights score our samples as faces / non-faces and predict their
    offsets and points: crops, pixel order, normalisation and target layout are the ones the
    networks were trained with, also after a flip."""
    net_cls, size = STAGES[stage]
    dataset = merge(read_boxes(astro_set / "boxes.txt"),
                    read_landmarks(astro_set / "landmarks.txt"))
    s = generate(dataset, astro_set, SampleConfig(size, crops_per_face=20,
                                                  landmarks=stage == "onet"), seed=0)
    net = net_cls()
    load_strict(net, weights.load_state_dict(weights.resolve(f"mtcnn_{stage}")), stage)
    images, offsets, points = flip(torch.from_numpy(s.images), torch.from_numpy(s.offsets),
                                   torch.from_numpy(s.points), torch.ones(len(s), dtype=bool))
    mirrored = replace(s, images=images.numpy(), offsets=offsets.numpy(), points=points.numpy())
    for samples in (s, mirrored):
        f = evaluate(net, samples, LossConfig((1, 0.5, 1)), torch.device("cpu"))
        assert f["acc_face"] == 1.0 and f["acc_non_face"] == 1.0
        assert f["box_error"] < 0.1  # measured 0.07 (P-Net), 0.06 (R-Net), 0.03 (O-Net)
        if stage == "onet":
            assert f["landmark_error"] < 0.06  # measured 0.027


# --- metrics ----------------------------------------------------------------------------------

def _faces(boxes, ignore=None):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    return ImageFaces("x", boxes, np.zeros(len(boxes), bool) if ignore is None
                      else np.array(ignore))


def _dets(boxes, scores):
    return Detections(np.array(boxes, np.float64).reshape(-1, 4), np.array(scores, np.float64))


def test_average_precision_by_hand():
    truth = [_faces([[0, 0, 10, 10], [20, 20, 30, 30]]), _faces([[0, 0, 10, 10]])]
    dets = [_dets([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]], [0.9, 0.8, 0.6]),
            _dets([[1, 0, 10, 10]], [0.7])]
    # ranked: TP, FP, TP, TP of 3 faces -> precision 1, 1/2, 2/3, 3/4 at recall 1/3, 1/3,
    # 2/3, 1; envelope 1, 3/4, 3/4, 3/4 -> AP = 1/3 + 1/3 * 3/4 + 1/3 * 3/4
    assert average_precision(dets, truth, 0.5) == pytest.approx(1 / 3 + 0.25 + 0.25)
    # at IoU 0.95 the 0.7 (IoU 0.9) and 0.6 (IoU 0.909) boxes miss: TP, FP, FP, FP -> 1/3
    assert average_precision(dets, truth, 0.95) == pytest.approx(1 / 3)
    # a duplicate of a matched face is a false positive
    dup = [_dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8])]
    assert average_precision(dup, [_faces([[0, 0, 10, 10]])], 0.5) == pytest.approx(1.0)
    assert average_precision(dup, [_faces([[0, 0, 10, 10], [40, 40, 50, 50]])],
                             0.5) == pytest.approx(0.5)
    assert average_precision([_dets([], [])], [_faces([[0, 0, 10, 10]])], 0.5) == 0.0
    assert np.isnan(average_precision([_dets([], [])], [_faces([])], 0.5))


def test_detections_on_ignored_faces_count_neither_way():
    truth = [_faces([[0, 0, 10, 10], [20, 20, 30, 30]], ignore=[False, True])]
    dets = [_dets([[20, 20, 30, 30], [0, 0, 10, 10]], [0.9, 0.5])]
    assert average_precision(dets, truth, 0.5) == pytest.approx(1.0)


def test_normalised_point_error_by_hand():
    true = np.array([[[0, 0], [10, 0], [5, 5], [2, 8], [8, 8]]], float)
    pred = true + np.array([1.0, 0.0])  # every point 1 px off, eyes 10 px apart
    assert normalised_point_error(pred, true)[0] == pytest.approx(0.1)
    flat = np.concatenate([pred[:, :, 0], pred[:, :, 1]], 1)
    assert normalised_point_error(flat, true)[0] == pytest.approx(0.1)


# --- the commands -----------------------------------------------------------------------------

def _metrics(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_train_onet_lowers_the_loss_and_loads_into_the_backend(astro_set, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "face-detector", "--stage", "onet", "--boxes",
               str(astro_set / "boxes.txt"), "--images", str(astro_set), "--landmarks",
               str(astro_set / "landmarks.txt"), "--out", str(out), "--epochs", "3",
               "--crops-per-face", "10", "--val-fraction", "0", "--device", "cpu"])
    assert rc == 0
    rows = _metrics(out / "runs" / "onet" / "metrics.csv")
    assert len(rows) == 3
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["loss_total"]) < float(rows[0]["loss_total"])
    printed = capsys.readouterr().out
    assert "face accuracy" in printed and "landmark error" in printed
    state = weights.load_state_dict(out / "mtcnn" / "onet.pt")
    load_strict(ONet(), state, "trained onet")
    manifest = weights.load_manifest(out)
    assert manifest["mtcnn_onet"].sha256 == weights.sha256_of(out / "mtcnn" / "onet.pt")
    assert manifest["mtcnn_pnet"].sha256 == weights.load_manifest()["mtcnn_pnet"].sha256
    det = MTCNNDetector(weights_dir=out, device="cpu")
    assert torch.equal(det.onet.dense6_3.weight, state["dense6_3.weight"])
    rc = main(["eval", "face-detector", "--data", str(astro_set), "--weights-dir", str(out),
               "--param", "thresholds=[0.6, 0.7, 0.0]", "--param", "min_face_size=80",
               "--device", "cpu"])
    assert rc == 0 and "AP@0.5" in capsys.readouterr().out


def test_train_pnet_then_rnet_mined_by_it(astro_set, tmp_path):
    out = tmp_path / "run"
    common = ["--boxes", str(astro_set / "boxes.txt"), "--images", str(astro_set), "--out",
              str(out), "--epochs", "1", "--device", "cpu", "--crops-per-face", "5"]
    assert main(["train", "face-detector", "--stage", "pnet", *common]) == 0
    load_strict(PNet(), weights.load_state_dict(out / "mtcnn" / "pnet.pt"), "pnet")
    pnet_sha = weights.sha256_of(out / "mtcnn" / "pnet.pt")
    assert main(["train", "face-detector", "--stage", "rnet", "--box-loss", "smooth_l1",
                 "--no-flip", "--ohem", "1", *common]) == 0
    load_strict(RNet(), weights.load_state_dict(out / "mtcnn" / "rnet.pt"), "rnet")
    manifest = weights.load_manifest(out)
    assert manifest["mtcnn_pnet"].sha256 == pnet_sha  # the trained P-Net stays
    assert manifest["mtcnn_rnet"].source.startswith("trained by")


def test_a_resumed_stage_equals_the_straight_run(astro_set, tmp_path):
    common = ["train", "face-detector", "--stage", "pnet", "--boxes", str(astro_set / "boxes.txt"),
              "--images", str(astro_set), "--epochs", "3", "--batch-size", "64", "--device",
              "cpu", "--crops-per-face", "5"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--out", str(tmp_path / "b"), "--stop-after", "1"]) == 0
    assert not (tmp_path / "b" / "mtcnn").exists()  # installed only when the run is complete
    assert main(common + ["--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = (weights.load_state_dict(tmp_path / run / "mtcnn" / "pnet.pt") for run in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_refuses_bad_options(astro_set, tmp_path, capsys):
    base = ["train", "face-detector", "--stage", "onet", "--boxes", str(astro_set / "boxes.txt"),
            "--images", str(astro_set), "--out", str(tmp_path)]
    assert main(base + ["--ohem", "0"]) == 2
    assert main(base + ["--loss-weights", "1,2"]) == 2
    assert main(base + ["--min-face", "1000", "--no-mine"]) == 2
    err = capsys.readouterr().err
    assert "--ohem" in err and "--loss-weights" in err and "positives" in err


def test_eval_mtcnn_on_the_astronaut_set(astro_set, tmp_path, capsys):
    report = tmp_path / "eval.json"
    rc = main(["eval", "face-detector", "--data", str(astro_set), "--landmarks",
               str(astro_set / "landmarks.txt"), "--backend", "mtcnn", "--device", "cpu",
               "--json", str(report)])
    assert rc == 0
    r = json.loads(report.read_text())
    assert (r["images"], r["faces"], r["detections"]) == (3, 3, 3)
    assert r["ap50"] == 1.0
    assert 0.5 < r["ap50_95"] <= 1.0
    assert r["landmark_matched"] == 3 and r["landmark_error"] < 0.05
    assert "AP@0.5 1.0000" in capsys.readouterr().out
