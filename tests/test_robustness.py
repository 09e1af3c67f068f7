"""The command line on bad input and user mistakes, and on hostile files (issue 10): a bad file
or frame is named, skipped and the rest written (exit 3); outputs never overwrite each other;
every mistake is one clear line (exit 2), never a traceback; YAML, CSV and weights files are
read within limits."""
import json
import shutil
import time

import cv2
import numpy as np
import pytest

from gaze_perception.cli.main import main
from gaze_perception.core import weights as weights_mod
from gaze_perception.core.weights import default_weights_dir, load_manifest

SIZE = 160  # small frames: MTCNN is quick on them


@pytest.fixture(scope="module")
def small_bgr(astronaut):
    return cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR), (SIZE, SIZE))


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _video(path, small_bgr, n=30, fourcc="mp4v"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (SIZE, SIZE))
    for i in range(n):
        writer.write(np.roll(small_bgr, 3 * i, axis=1))
    writer.release()
    return path


def _damage(path, start: float, length: int):
    """Zero `length` bytes of an MP4's frame data from `start` (share of the data) on."""
    data = bytearray(path.read_bytes())
    lo, hi = data.find(b"mdat"), data.find(b"moov")
    at = lo + int((hi - lo) * start)
    data[at:at + length] = bytes(length)
    path.write_bytes(bytes(data))
    return path


def _no_detector(tmp_path):
    """`--faces` with one head box: the pipeline runs without the detector (quick), for tests
    that count frames."""
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("0,10,10,50,50\n")
    return ["--faces", str(boxes)]


def _no_traceback(err):
    assert "Traceback" not in err, err


# -- partial input, complete output (item 2) and unique outputs (item 3) ---------------------
def test_bad_image_in_a_folder_is_named_skipped_and_the_rest_written(small_bgr, tmp_path,
                                                                     capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "0_empty.jpg").write_bytes(b"")  # sorts first
    for i in range(3):
        cv2.imwrite(str(folder / f"good{i}.jpg"), small_bgr)
    (folder / "half.jpg").write_bytes((folder / "good0.jpg").read_bytes()[:200])
    out, ann = tmp_path / "o.jsonl", tmp_path / "ann"
    code = main(["run", str(folder), "--config", "faces_only", "--jsonl", str(out), "--out",
                 str(ann), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3, err
    rows = _lines(out)
    assert [r["source"] for r in rows] == ["good0.jpg", "good1.jpg", "good2.jpg"]
    assert [r["frame"] for r in rows] == [1, 2, 3]  # the folder's own positions
    assert all(len(r["faces"]) == 1 for r in rows)
    assert sorted(p.name for p in ann.iterdir()) == ["good0.jpg.jpg", "good1.jpg.jpg",
                                                      "good2.jpg.jpg"]
    assert err.count("skipped 0_empty.jpg: the file is empty") == 1
    assert err.count("skipped half.jpg: not a readable image") == 1
    assert "2 input(s) skipped" in err
    _no_traceback(err)


def test_nothing_readable_is_an_error_not_a_partial_success(small_bgr, tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.png").write_bytes(b"not a png")
    video = _video(tmp_path / "clip.mp4", small_bgr, n=10)
    data = bytearray(video.read_bytes())
    lo, hi = data.find(b"mdat") + 4, data.find(b"moov")
    data[lo:hi] = bytes(hi - lo)  # every frame lost, the index intact
    video.write_bytes(bytes(data))
    for source, named in [(folder, "skipped b.png"), (video, "ended after 0 of the 10 frames")]:
        assert main(["run", str(source), "--config", "faces_only", "--jsonl",
                     str(tmp_path / "o.jsonl"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert named in err and f"no frame of '{source}' could be read" in err, err
        _no_traceback(err)


def test_code_video_skips_a_bad_frame_and_codes_the_rest(small_bgr, tmp_path, capsys):
    import torch

    from gaze_perception.models.gaze_coding import CodingMeta, build_model
    from gaze_perception.models.state_dict import save_checkpoint

    meta = CodingMeta(arch="resnet18", input_size=64)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "coder.pt", build_model(meta), meta)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"f{i}.png"), small_bgr)
    (folder / "f2.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "codes.csv"
    assert main(["code-video", str(folder), "--weights", str(tmp_path / "coder.pt"),
                 "--detector", "none", "--device", "cpu", "--out", str(out)]) == 3
    assert [r.split(",")[0] for r in out.read_text().splitlines()[1:]] == ["0", "1", "3"]
    assert "skipped f2.png: not a readable image" in capsys.readouterr().err


def test_same_stem_images_and_video_frames_get_their_own_outputs(small_bgr, tmp_path):
    folder = tmp_path / "same"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), small_bgr)
    cv2.imwrite(str(folder / "a.png"), small_bgr[:, ::-1])
    assert main(["run", str(folder), "--config", "faces_only", "--jsonl", str(tmp_path / "f"),
                 "--out", str(tmp_path / "ann"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["a.jpg.jpg", "a.png.jpg"]
    video = _video(tmp_path / "clip.mp4", small_bgr, n=3)
    assert main(["run", str(video), "--config", "faces_only", "--jsonl", str(tmp_path / "v"),
                 "--out", str(tmp_path / "vid"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "vid").iterdir()) == [
        "clip_000000.jpg", "clip_000001.jpg", "clip_000002.jpg"]


def test_damaged_video_middle_skips_those_frames_and_goes_on(small_bgr, tmp_path, capsys):
    video = _damage(_video(tmp_path / "clip.mp4", small_bgr), 0.3, 6000)
    out = tmp_path / "v.jsonl"
    code = main(["run", str(video), "--config", "faces_only", "--jsonl", str(out), "--batch",
                 "4", "--no-progress", *_no_detector(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3, err
    frames = [r["frame"] for r in _lines(out)]
    skipped = sorted(int(line.split("#")[1].split(":")[0]) for line in err.splitlines()
                     if line.startswith("skipped clip.mp4#"))
    assert skipped and len(set(skipped)) == len(skipped)  # each named once
    assert sorted(frames + skipped) == list(range(30))  # every frame: processed or named
    assert frames[-1] == 29  # the frames after the damage are processed
    assert "frame cannot be decoded" in err
    _no_traceback(err)


def test_video_that_ends_before_its_declared_frames_says_so(small_bgr, tmp_path, capsys):
    video = tmp_path / "short.mp4"
    _video(video, small_bgr)
    data = bytearray(video.read_bytes())
    moov = data.find(b"moov")
    data[moov - 6000:moov] = bytes(6000)  # the last frames' data is lost
    video.write_bytes(bytes(data))
    out = tmp_path / "s.jsonl"
    code = main(["run", str(video), "--config", "faces_only", "--jsonl", str(out),
                 "--no-progress", *_no_detector(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3, err
    n = len(_lines(out))
    assert 0 < n < 30
    assert f"the video ended after {n} of the 30 frames it declares" in err


def test_gif_and_other_opencv_formats_are_images(small_bgr, tmp_path):
    gif, ppm = tmp_path / "face.gif", tmp_path / "face.ppm"
    assert cv2.imwrite(str(gif), small_bgr) and cv2.imwrite(str(ppm), small_bgr)
    for path in (gif, ppm):
        out = tmp_path / f"{path.suffix[1:]}.jsonl"
        assert main(["run", str(path), "--config", "faces_only", "--jsonl", str(out)]) == 0
        assert len(_lines(out)[0]["faces"]) == 1


# -- clear errors for user mistakes (item 4) -------------------------------------------------
def test_unknown_backend_parameter_lists_the_valid_ones(small_bgr, tmp_path, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), small_bgr)
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("stages:\n  faces: {backend: mtcnn, params: {min_face_sise: 30}}\n")
    assert main(["run", str(image), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert ("unknown parameter 'min_face_sise' (did you mean 'min_face_size'?) for "
            "face_detector backend 'mtcnn'; valid parameters: weights_dir, device, "
            "min_face_size, thresholds, factor, max_faces") in err
    _no_traceback(err)
    cfg.write_text("stages:\n  faces: {backend: mtcnn, parms: {min_face_size: 30}}\n")
    assert main(["run", str(image), "--config", str(cfg)]) == 2
    assert "stage 'faces' must be a backend name or a mapping" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["run", "{img}", "--batch", "0"], "argument --batch: expected an integer >= 1, got 0"),
    (["run", "{img}", "--jsonl", "{tmp}"], "is a folder; expected a file name to write"),
    (["run", "{img}", "--out", "{img}"], "is a file; expected a folder to write into"),
    (["run", "{img}", "--faces", "{tmp}"], "is a folder; expected a file"),
    (["weights", "list", "--dir", "{img}"], "is a file; expected a folder"),
    (["code-video", "{img}", "--out", "c.csv", "--batch-size", "-3"], "expected an integer >= 1"),
])
def test_degenerate_arguments_are_refused_by_the_parser(small_bgr, tmp_path, capsys, argv,
                                                        message):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), small_bgr)
    argv = [a.format(img=image, tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err


@pytest.mark.parametrize("task, extra", [
    ("eye-state", ["--data", "{tmp}"]),
    ("face-detector", ["--stage", "pnet", "--boxes", "{tmp}/boxes.txt", "--images", "{tmp}"]),
    ("gaze-target", ["--dataset", "vat", "--root", "{tmp}"]),
    ("gaze-direction", ["--data", "{tmp}/angles.csv"]),
    ("gaze-coding", ["--data", "{tmp}"]),
])
def test_training_refuses_zero_epochs_before_any_work(tmp_path, capsys, task, extra):
    run = tmp_path / "run"
    assert main(["train", task, "--epochs", "0", "--out", str(run),
                 *[a.format(tmp=tmp_path) for a in extra]]) == 2
    err = capsys.readouterr().err
    assert "--epochs must be at least 1, got 0" in err, err
    assert not run.exists()  # no run folder, no checkpoint paths claimed
    _no_traceback(err)


def test_path_arguments_that_are_folders_give_clear_errors(small_bgr, tmp_path, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), small_bgr)
    assert main(["run", str(image), "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"pipeline config '{tmp_path}' is a folder; expected a YAML file" in err
    _no_traceback(err)
    jsonl_in_a_file = ["--jsonl", str(image / "o.jsonl")]
    assert main(["run", str(image), "--config", "faces_only", *jsonl_in_a_file]) == 2
    assert f"'{image}' already exists as a file; a folder was expected" in capsys.readouterr().err
    assert main(["run", str(image), "--config", "faces_only", "--out", str(image / "ann")]) == 2
    assert "a part of this path is a file, not a folder" in capsys.readouterr().err
    assert main(["run", str(image), "--config", "no_such_pipeline"]) == 2
    assert "neither a file nor a name in config/: classroom, default" in capsys.readouterr().err


def test_code_video_explains_the_weights_it_needs(small_bgr, tmp_path, capsys):
    video = _video(tmp_path / "clip.mp4", small_bgr, n=2)
    assert main(["code-video", str(video), "--out", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert "needs a trained gaze-coding checkpoint, and no model ships" in err
    assert "gaze-perception train gaze-coding" in err
    assert main(["code-video", str(video), "--out", str(tmp_path / "c.csv"), "--weights",
                 str(tmp_path / "nope.pt"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "nope.pt" in err and "gaze-perception train gaze-coding" in err
    _no_traceback(err)


@pytest.fixture
def fresh_weights(tmp_path):
    """A weights folder as a fresh install has it: the manifest and the required files only."""
    wdir = tmp_path / "weights"
    wdir.mkdir()
    shutil.copyfile(default_weights_dir() / "manifest.yaml", wdir / "manifest.yaml")
    entries = load_manifest(wdir)
    for e in entries.values():
        if e.required:
            (wdir / e.file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(default_weights_dir() / e.file, wdir / e.file)
    return wdir, entries


def test_weights_verify_tells_missing_optional_from_corrupt(fresh_weights, capsys):
    wdir, entries = fresh_weights
    assert {n for n, e in entries.items() if e.required} == {
        "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "eye_state_default", "mediapipe_face_mesh",
        "mediapipe_iris"}
    assert main(["weights", "verify", "--dir", str(wdir)]) == 0
    out = capsys.readouterr().out
    assert "mtcnn_pnet: ok" in out and "yunet_2023mar: missing (optional)" in out
    # an optional file that is present but corrupt fails
    (wdir / entries["yunet_2023mar"].file).parent.mkdir(parents=True)
    (wdir / entries["yunet_2023mar"].file).write_bytes(b"truncated download")
    assert main(["weights", "verify", "--dir", str(wdir)]) == 1
    captured = capsys.readouterr()
    assert "yunet_2023mar: SHA256 MISMATCH" in captured.out
    assert "corrupt or replaced: yunet_2023mar" in captured.err
    (wdir / entries["yunet_2023mar"].file).unlink()
    # a required file that is missing fails, and so does an optional one asked for by name
    (wdir / entries["mtcnn_onet"].file).unlink()
    assert main(["weights", "verify", "--dir", str(wdir)]) == 1
    assert "mtcnn_onet: MISSING" in capsys.readouterr().out
    assert main(["weights", "verify", "yunet_2023mar", "--dir", str(wdir)]) == 1


def test_weights_fetch_from_names_the_users_file(fresh_weights, tmp_path, capsys):
    wdir, _ = fresh_weights
    fetch = ["weights", "fetch", "yunet_2023mar", "--dir", str(wdir), "--from"]
    wrong = tmp_path / "my_download.onnx"
    wrong.write_bytes(b"an html error page")
    for given, message in [(wrong, f"weights file '{wrong}' has sha256"),
                           (tmp_path / "typo.onnx", f"--from '{tmp_path / 'typo.onnx'}' does not "
                            "exist"),
                           (tmp_path, f"--from '{tmp_path}' is a folder")]:
        assert main(fetch + [str(given)]) == 2
        err = capsys.readouterr().err
        assert message in err, err
        assert "/tmp/tmp" not in err  # no staging path
        _no_traceback(err)
    assert not (wdir / "yunet").exists()


def test_weights_given_by_path_are_logged_pinned_and_checked(small_bgr, tmp_path, monkeypatch,
                                                              caplog, capsys):
    monkeypatch.setenv("GAZE_PERCEPTION_PINS", str(tmp_path / "pins.yaml"))
    import torch

    ckpt = tmp_path / "my_eyes.pt"  # a checkpoint of one's own: in no manifest
    saved = torch.load(default_weights_dir() / "eye_state/eye_state_default.pt",
                       weights_only=True)
    torch.save({**saved, "note": "fine-tuned elsewhere"}, ckpt)
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), small_bgr)
    cfg = tmp_path / "eyes.yaml"
    cfg.write_text(f"stages:\n  eyes: {{backend: timm_eye, params: {{weights: '{ckpt}'}}}}\n")
    run = ["run", str(image), "--config", str(cfg), "--jsonl", str(tmp_path / "o.jsonl"),
           "--device", "cpu"]
    digest = weights_mod.sha256_of(ckpt)
    assert main(run) == 0
    assert f"its sha256 is {digest}. Run `gaze-perception weights pin {ckpt}`" in caplog.text
    assert main(["weights", "pin", str(ckpt)]) == 0
    assert f"pinned sha256 {digest}" in capsys.readouterr().out
    assert main(["weights", "pin", str(image)]) == 0  # a second pin keeps the first
    assert weights_mod.load_pins() == {str(ckpt.resolve()): digest,
                                       str(image.resolve()): weights_mod.sha256_of(image)}
    assert main(run) == 0
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    ckpt.write_bytes(bytes(data))
    assert main(run) == 2
    err = capsys.readouterr().err
    assert f"weights file '{ckpt}' has sha256" in err and "but it was pinned with" in err
    assert main(["weights", "pin", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


# -- hostile files (item 7) ------------------------------------------------------------------
BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
stages: {faces: mtcnn}
"""


@pytest.mark.parametrize("text, message", [
    (BOMB + "#" * (430 - len(BOMB) - 1) + "\n", "expands to over 100000 nodes"),
    ("stages: " + "[" * 5000 + "]" * 5000 + "\n", "nested over 64 levels deep"),
    ("stages: &s {faces: *s}\n", "recursive alias"),
    ("stages: {faces: mtcnn}\nnote: '" + "x" * (2 << 20) + "'\n", "bytes, over the 1048576"),
    ("stages: {faces: [mtcnn\n", "is not valid YAML"),
])
def test_hostile_pipeline_yaml_is_refused_quickly(small_bgr, tmp_path, capsys, text, message):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), small_bgr)
    cfg = tmp_path / "hostile.yaml"
    cfg.write_text(text)
    if text.startswith(BOMB[:10]):
        assert cfg.stat().st_size == 430
    t0 = time.monotonic()
    assert main(["run", str(image), "--config", str(cfg)]) == 2
    assert time.monotonic() - t0 < 5.0
    err = capsys.readouterr().err
    assert f"pipeline config '{cfg}'" in err and message in err, err[:500]
    _no_traceback(err)


def test_hostile_weights_manifest_and_calibration_are_refused(tmp_path):
    from gaze_perception.core.calibration import load_calibration
    from gaze_perception.core.weights import WeightsError

    (tmp_path / "manifest.yaml").write_text(BOMB)
    with pytest.raises(WeightsError, match="expands to over 100000 nodes"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.yaml").write_text("weights: {x: [1, 2]}\n")
    with pytest.raises(WeightsError, match="entry 'x' must be a mapping with a 'file' key"):
        load_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="is a folder; expected a YAML file"):
        load_calibration(tmp_path)
    cal = tmp_path / "camera.yaml"
    cal.write_text(BOMB)
    with pytest.raises(ValueError, match=f"calibration file '{cal}' expands to over"):
        load_calibration(cal)


def test_csv_field_over_the_limit_is_a_clear_error(small_bgr, tmp_path, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), small_bgr)
    boxes = tmp_path / "person.txt"
    boxes.write_text("a.png,1,2,30,40\na.png," + "9" * 200_000 + ",2,30,40\n")
    assert main(["run", str(image), "--faces", str(boxes), "--config", "faces_only"]) == 2
    err = capsys.readouterr().err
    assert f"{boxes}:2: a field is longer than 131072 characters" in err
    _no_traceback(err)
    rules = tmp_path / "rules.csv"
    rules.write_text("x" * 200_000 + "\n")
    from gaze_perception.core.csv_io import CsvError
    from gaze_perception.core.gaze_coding import read_illegal_transitions
    with pytest.raises(CsvError, match=f"{rules}:1: a field is longer"):
        read_illegal_transitions(rules)


@pytest.mark.ros
def test_reject_log_throttle_keys_on_the_kind_with_a_bounded_table(capfd):
    """353 bad-encoding rejections with varying encodings log one line, not one per
    encoding; 300 problems of different kinds log a bounded number and keep a bounded table."""
    import rclpy

    from gaze_perception.dds import isolated_ros_env
    from gaze_perception.nodes.common import PerceptionNode

    class Probe(PerceptionNode):
        MODEL_NODE = False

    env = isolated_ros_env()
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = Probe("probe", context=ctx)
    rng = np.random.default_rng(0)
    try:
        capfd.readouterr()
        for i in range(353):
            enc = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz_"), 6))
            node.reject(f"unsupported encoding '{enc}{i}' (supported: rgb8, bgr8, mono8)")
        for i in range(300):
            word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 8))
            node.reject(f"{word} broke")
        err = capfd.readouterr().err
        assert err.count("unsupported encoding") == 1, err
        assert err.count("input rejected") == node.REJECT_KINDS_PER_PERIOD
        assert len(node._last_logged) <= node.REJECT_TABLE
        assert node.stats["rejected"] == 653
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
