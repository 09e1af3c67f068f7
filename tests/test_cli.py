"""The gaze-perception command: run (image, folder, video), backends, weights."""
import json

import cv2
import numpy as np
import pytest

from gaze_perception.cli.main import main
from gaze_perception.core.weights import manifest_path


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory, astronaut):
    d = tmp_path_factory.mktemp("frames")
    bgr = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(d / "a0.png"), bgr)
    cv2.imwrite(str(d / "a1.png"), bgr[:, ::-1])
    return d


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_run_folder_writes_jsonl_schema(sample_dir, tmp_path):
    out = tmp_path / "out.jsonl"
    assert main(["run", str(sample_dir), "--config", "faces_only", "--jsonl", str(out),
                 "--out", str(tmp_path / "ann"), "--device", "cpu"]) == 0
    rows = _lines(out)
    assert [r["frame"] for r in rows] == [0, 1]
    assert [r["source"] for r in rows] == ["a0.png", "a1.png"]
    r = rows[0]
    assert (r["width"], r["height"]) == (512, 512)
    face = r["faces"][0]
    assert set(face) == {"box", "score", "landmarks", "track_id", "head_pose", "eyes", "gaze"}
    x, y, w, h = face["box"]
    np.testing.assert_allclose([x, y, x + w, y + h], [181.05, 62.16, 267.75, 172.05], atol=1.5)
    assert len(face["landmarks"]) == 5 and len(face["head_pose"]) == 3
    assert face["eyes"] is None and face["gaze"] is None  # stages not configured
    # mirrored frame: the box mirrors too
    x2 = rows[1]["faces"][0]["box"][0]
    assert abs((512 - x2 - rows[1]["faces"][0]["box"][2]) - x) < 2.0
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["a0.png.jpg", "a1.png.jpg"]


def test_run_video(astronaut, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
    for _ in range(3):
        writer.write(cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "v.jsonl"
    assert main(["run", str(video), "--config", "faces_only", "--jsonl", str(out),
                 "--batch", "2", "--device", "cpu"]) == 0
    rows = _lines(out)
    assert [r["frame"] for r in rows] == [0, 1, 2]
    assert [round(r["stamp"], 3) for r in rows] == [0.0, 0.1, 0.2]
    assert all(len(r["faces"]) == 1 for r in rows)


def test_run_given_head_boxes(sample_dir, tmp_path):
    boxes = tmp_path / "person1.txt"
    boxes.write_text("a0.png,10,20,110,140\na1.png,30,40,90,100\n")
    out = tmp_path / "b.jsonl"
    assert main(["run", str(sample_dir), "--config", "faces_only", "--faces", str(boxes),
                 "--jsonl", str(out)]) == 0
    rows = _lines(out)
    assert rows[0]["faces"][0]["box"] == [10.0, 20.0, 100.0, 120.0]
    assert rows[1]["faces"][0]["box"] == [30.0, 40.0, 60.0, 60.0]


def test_run_errors_are_clear(sample_dir, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("stages: {faces: {backend: nosuch}}\n")
    assert main(["run", str(sample_dir), "--config", str(cfg)]) == 2
    assert "unknown face_detector backend 'nosuch'; installed: " in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.jpg")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "boxes.txt"
    bad.write_text("a0.png,1,2,x,4\n")
    assert main(["run", str(sample_dir), "--faces", str(bad)]) == 2
    assert "boxes.txt:1" in capsys.readouterr().err


def test_backends_and_weights_commands(capsys, tmp_path):
    assert main(["backends"]) == 0
    assert "face_detector: " in capsys.readouterr().out
    assert main(["weights", "verify", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"]) == 0
    bogus = tmp_path / "pnet.pt"
    bogus.write_bytes(b"not the weights")
    wdir = tmp_path / "w"
    wdir.mkdir()
    (wdir / "manifest.yaml").write_text(manifest_path().read_text())
    assert main(["weights", "fetch", "mtcnn_pnet", "--from", str(bogus), "--dir", str(wdir)]) == 2
    assert "expected a2a71925" in capsys.readouterr().err
    assert not (wdir / "mtcnn" / "pnet.pt").exists()
    assert main(["weights", "fetch", "nosuch"]) == 2
    assert "unknown weights" in capsys.readouterr().err


def test_run_default_pipeline_fills_eyes_and_gaze(sample_dir, tmp_path):
    out = tmp_path / "d.jsonl"
    assert main(["run", str(sample_dir / "a0.png"), "--jsonl", str(out), "--device", "cpu"]) == 0
    face = _lines(out)[0]["faces"][0]
    assert face["eyes"]["state"] == "open" and 0.0 <= face["eyes"]["closed_prob"] < 0.5
    assert face["eyes"]["left"] == "open" and face["eyes"]["right"] == "open"
    gaze = face["gaze"]
    assert len(gaze["point"]) == 2 and 0.0 <= gaze["inout"] <= 1.0
    assert len(gaze["direction"]) == 3
