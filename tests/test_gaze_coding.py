"""Infant gaze coding: metrics against hand values, smoothing, iCatcher+ rules (on its own test
files), infant selection, code files, training end to end on generated clips, code-video and
the node over real DDS on frames of the Lookit clip."""
import csv
import json
import math
import re
import time

import cv2
import numpy as np
import pytest
import torch

from gaze_perception.cli.main import main as cli
from gaze_perception.core.gaze_coding import (AWAY, LEFT, NO_FACE, RIGHT, FrameCode, Smoother,
                                              TransitionError, read_illegal_transitions,
                                              select_infant)
from gaze_perception.core.types import Face
from gaze_perception.training.gaze_coding.data import DataError, read_codes
from gaze_perception.metrics.agreement import (cohen_kappa, compare_codings,
                                                     percent_agreement)
from gaze_perception.metrics.classification import confusion_matrix

CLIPS = "data/lookit_infant_clips"
FACE = Face(10, 10, 50, 50)


def _code(c, p=0.8):
    if c == NO_FACE:
        return FrameCode.no_face()
    probs = np.full(3, (1 - p) / 2)
    probs[c] = p
    return FrameCode.from_probs(FACE, 0, probs)


def _smooth(codes, **kw):
    s = Smoother(**kw)
    out = [final for c in codes for _, final in s.push(_code(c))] + \
        [final for _, final in s.flush()]
    assert len(out) == len(codes)
    return [c.code for c in out]


# -- metrics ------------------------------------------------------------------------------------
def test_kappa_and_agreement_on_known_pairs():
    labels, pred = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    cm = confusion_matrix(labels, pred, 3)
    # p_o = 4/6; p_e = (2*2 + 2*3 + 2*1) / 36 = 1/3; kappa = (2/3 - 1/3) / (2/3)
    assert percent_agreement(cm) == pytest.approx(400 / 6)
    assert cohen_kappa(cm) == pytest.approx(0.5)
    from sklearn.metrics import cohen_kappa_score
    assert cohen_kappa(cm) == pytest.approx(cohen_kappa_score(labels, pred))
    assert math.isnan(cohen_kappa(confusion_matrix([1, 1], [1, 1], 3)))  # one class: undefined


def test_compare_codings_uses_mutually_valid_frames_only():
    labels = {0: LEFT, 1: LEFT, 2: RIGHT, 3: AWAY, 4: NO_FACE, 5: LEFT}
    pred = {0: LEFT, 1: RIGHT, 2: RIGHT, 3: NO_FACE, 4: LEFT, 9: LEFT}
    r = compare_codings(pred, labels)
    assert (r["common_frames"], r["compared_frames"]) == (5, 3)
    assert r["percent_agreement"] == pytest.approx(200 / 3)
    assert r["no_face_in_pred"] == 1 and r["no_face_in_labels"] == 1


# -- smoothing and rules ----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["mean", "majority"])
@pytest.mark.parametrize("centered", [False, True])
def test_smoothing_removes_an_isolated_flip_and_keeps_a_real_change(method, centered):
    seq = [LEFT] * 6 + [RIGHT] + [LEFT] * 6 + [RIGHT] * 8
    out = _smooth(seq, method=method, window=5, centered=centered)
    assert out[6] == LEFT and out[-1] == RIGHT and out.count(RIGHT) >= 6
    assert _smooth(seq, method="none", window=5) == seq


def test_smoothing_bridges_one_missed_detection_but_not_a_gap():
    seq = [LEFT] * 5 + [NO_FACE] + [LEFT] * 5 + [NO_FACE] * 6
    out = _smooth(seq, method="majority", window=5, centered=True)
    assert out[5] == LEFT and out[-3:] == [NO_FACE] * 3


def test_centred_window_delays_output_by_half_a_window():
    s = Smoother("mean", window=5, centered=True)
    assert [len(s.push(_code(LEFT), i)) for i in range(4)] == [0, 0, 1, 1]
    assert [tag for tag, _ in s.flush()] == [2, 3]


def test_icatcher_rule_files_parse_and_bad_ones_are_refused(shared_dir):
    folder = shared_dir / CLIPS
    assert len(read_illegal_transitions(folder / "illegal_transitions_good.csv")) == 20
    for name, message in (("bad1", "unknown class(es) [-5]"), ("bad2", "has 4 frames"),
                          ("bad3", "unknown class(es) [5]")):
        with pytest.raises(TransitionError, match=re.escape(message)):
            read_illegal_transitions(folder / f"illegal_transitions_{name}.csv")


def test_illegal_transitions_reproduce_icatcher_on_its_test_output(shared_dir):
    """iCatcher+ coded test_short.mp4 'left' from frame 4 to 189; with the rule 1111 -> 2222 its
    output turns every reported frame (4..185) 'right'. Our rule engine does the same."""
    folder = shared_dir / CLIPS
    plain, fixed = read_codes(folder / "test_short_result.txt"), \
        read_codes(folder / "test_short_illegal_result.txt")
    frames = sorted(plain)
    assert frames == list(range(4, 190)) and set(plain.values()) == {LEFT}
    s = Smoother("none", window=1, rules=read_illegal_transitions(
        folder / "illegal_transitions_short.csv"))
    out = [c for f in frames for _, c in s.push(_code(plain[f]), f)] + \
        [c for _, c in s.flush()]
    ours = {f: c.code for f, c in zip(frames, out)}
    assert all(ours[f] == code for f, code in fixed.items()) and len(fixed) == 182


# -- selection and code files -----------------------------------------------------------------
def test_infant_selection_picks_the_low_square_face():
    parent = Face(200, 20, 160, 200)       # big, high in the frame
    infant = Face(260, 300, 110, 120)      # low and square
    cut = Face(0, 380, 40, 100)            # lowest, but a sliver at the frame edge
    faces = [parent, infant, cut]
    assert select_infant(faces) == 1
    assert select_infant(faces, "largest") == 0
    assert select_infant(faces, "lowest") == 2 and select_infant(faces, "smallest") == 2
    assert select_infant([]) is None and select_infant([Face(0, 0, 0, 10)]) is None
    with pytest.raises(ValueError, match="unknown face selection"):
        select_infant(faces, "oldest")


def test_code_files_read_both_formats_and_refuse_bad_rows(tmp_path):
    good = tmp_path / "codes.csv"
    good.write_text("frame,time,code\n0,0.0,left\n1,0.03,none\n2,0.07,no_face\n3,0.1,Away\n")
    assert read_codes(good) == {0: LEFT, 2: NO_FACE, 3: AWAY}
    for text, message in (("frame,code\n0,sideways\n", "codes.csv:2: unknown code 'sideways'"),
                          ("frame,code\n0,left\n0,right\n", "frame 0 is coded twice"),
                          ("time,code\n0,left\n", "needs a 'frame' column"),
                          ("frame,code\n-1,left\n", "frame must be a number >= 0")):
        good.write_text(text)
        with pytest.raises(DataError, match=message):
            read_codes(good)


# -- training, code-video, node -----------------------------------------------------------------
def _clip(folder, codes):
    """A clip of 48x48 'face crops' whose bright blob sits where the infant looks."""
    folder.mkdir(parents=True)
    where = {LEFT: (10, 24), RIGHT: (38, 24), AWAY: (24, 6)}
    rng = np.random.default_rng(len(codes))
    for i, c in enumerate(codes):
        img = rng.integers(40, 80, (48, 48, 3), dtype=np.uint8)
        cv2.circle(img, where[c], 7, (250, 230, 210), -1)
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)
    with open(folder.with_name(folder.name + ".csv"), "w", newline="") as fh:
        csv.writer(fh).writerows([("frame", "code")] +
                                 [(i, ("away", "left", "right")[c]) for i, c in enumerate(codes)])


@pytest.fixture(scope="module")
def coding_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    _clip(root / "a", [LEFT] * 8 + [RIGHT] * 8 + [AWAY] * 6)
    _clip(root / "b", [RIGHT] * 6 + [AWAY] * 6 + [LEFT] * 6)
    (root / "unlabelled").mkdir()
    out = root / "run"
    rc = cli(["train", "gaze-coding", "--data", str(root), "--detector", "none",
              "--input-size", "48", "--epochs", "4", "--batch-size", "8", "--lr", "2e-3",
              "--val-fraction", "0.4", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    return root, out


def test_training_lowers_the_loss_and_keeps_the_best_validation_epoch(coding_run):
    _, out = coding_run
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    losses = [float(r["train_loss"]) for r in rows]
    assert len(rows) == 4 and losses[-1] < losses[0]
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["meta"]["kind"] == "gaze_coding"
    scores = [float(r["val_kappa"]) for r in rows]
    assert best["info"]["epoch"] == 1 + int(np.nanargmax(scores))


def test_resumed_run_equals_the_straight_one(coding_run, tmp_path):
    root, straight = coding_run
    argv = ["train", "gaze-coding", "--data", str(root), "--detector", "none",
            "--input-size", "48", "--epochs", "4", "--batch-size", "8", "--lr", "2e-3",
            "--val-fraction", "0.4", "--device", "cpu", "--out", str(tmp_path / "run")]
    assert cli(argv + ["--stop-after", "3"]) == 0
    assert cli(argv + ["--resume"]) == 0
    a, b = (torch.load(run / "last.pt", weights_only=True) for run in (straight, tmp_path / "run"))
    assert a["info"]["epoch"] == b["info"]["epoch"] == 4
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_trained_model_codes_clips_and_eval_scores_them(coding_run, tmp_path, capsys):
    root, out = coding_run
    pred = tmp_path / "pred.csv"
    assert cli(["code-video", str(root / "a"), "--weights", str(out / "best.pt"),
                "--detector", "none", "--smoothing", "majority", "--window", "3",
                "--device", "cpu", "--out", str(pred)]) == 0
    with open(pred) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == list(range(22))
    capsys.readouterr()
    assert cli(["eval", "gaze-coding", "--pred", str(pred), "--labels", str(root / "a.csv"),
                "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["compared_frames"] == 22 and 0 <= report["percent_agreement"] <= 100
    assert "Cohen's kappa" in capsys.readouterr().out


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    from gaze_perception.models.gaze_coding import CodingMeta, build_model
    from gaze_perception.models.state_dict import save_checkpoint
    meta = CodingMeta(arch="resnet18", input_size=64)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random.pt"
    save_checkpoint(path, build_model(meta), meta)
    return path


def test_code_video_writes_one_row_per_frame(shared_dir, random_weights, tmp_path):
    out = tmp_path / "codes.csv"
    assert cli(["code-video", str(shared_dir / CLIPS / "test_short.mp4"), "--weights",
                str(random_weights), "--detector", "none", "--device", "cpu",
                "--out", str(out)]) == 0
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == list(range(194))
    assert {r["code"] for r in rows} <= {"away", "left", "right"}
    assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in rows)


def test_code_video_with_the_face_detector(shared_dir, random_weights, tmp_path):
    out = tmp_path / "codes.csv"
    assert cli(["code-video", str(shared_dir / CLIPS / "test_short.mp4"), "--weights",
                str(random_weights), "--max-frames", "3", "--device", "cpu",
                "--illegal-transitions", str(shared_dir / CLIPS / "illegal_transitions_good.csv"),
                "--out", str(out)]) == 0
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and all(r["face_index"] == "0" for r in rows)
    x, y = float(rows[0]["x"]), float(rows[0]["y"])
    assert 200 < x < 300 and 200 < y < 300  # the infant's face in the middle of the frame


def test_code_video_refuses_bad_inputs(shared_dir, random_weights, tmp_path, capsys):
    video = str(shared_dir / CLIPS / "test_short.mp4")
    base = ["code-video", video, "--out", str(tmp_path / "c.csv"), "--device", "cpu"]
    assert cli(base + ["--weights", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli(base + ["--weights", str(random_weights), "--illegal-transitions",
                       str(shared_dir / CLIPS / "illegal_transitions_bad2.csv")]) == 2
    assert "corrected transition has 4 frames" in capsys.readouterr().err
    assert cli(base + ["--weights", str(random_weights), "--window", "0"]) == 2
    assert "window must be >= 1" in capsys.readouterr().err


@pytest.mark.ros
def test_node_publishes_one_coding_per_frame_with_the_image_stamp(shared_dir, random_weights):
    from gaze_msgs.msg import FaceArray, GazeCoding
    from gaze_perception.core.sources import FrameSource
    from gaze_perception.messages import faces_to_msg, rgb_to_image
    from rosgraph import NodeSpec, running_graph

    frames = [f.rgb for f, _ in zip(FrameSource(shared_dir / CLIPS / "test_short.mp4"), range(4))]
    infant = Face(243, 247, 103, 127, score=0.99)
    spec = NodeSpec("gaze_coding", parameters={
        "device": "cpu", "image_reliability": "reliable", "window": 3,
        "backend_params": json.dumps({"weights": str(random_weights)})})
    with running_graph([spec], ["gaze_coding"], inputs={"faces": FaceArray}) as (client, _):
        time.sleep(0.5)
        for i, rgb in enumerate(frames):
            img = rgb_to_image(rgb, None)
            img.header.frame_id = "webcam"
            img.header.stamp.sec, img.header.stamp.nanosec = 100 + i, 500
            client.publish(msg=img, stamp_ns=(100 + i) * 1_000_000_000 + 500)
            faces = [] if i == 3 else [Face(200, 30, 150, 180), infant]  # a parent above
            client.send("faces", faces_to_msg(faces, img.header, 640, 480))
            got = client.wait("gaze_coding", (100 + i, 500), 60.0)
            assert got is not None, f"no coding for frame {i}"
            msg = got[0]
            assert msg.header.frame_id == "webcam"
            assert len(msg.probabilities) == 4 and sum(msg.probabilities) == pytest.approx(1.0)
            if i < 3:
                assert msg.face_index == 1 and msg.raw_code in (0, 1, 2)
            else:
                assert msg.face_index == -1 and msg.raw_code == GazeCoding.NO_FACE
        assert len(client.received["gaze_coding"]) == len(frames)
