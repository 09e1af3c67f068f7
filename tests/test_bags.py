"""Bag tools without a ROS graph: reading damaged and foreign bags, `bag process`, `bag eval`."""
import json

import numpy as np
import pytest
from geometry_msgs.msg import Point
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from std_msgs.msg import String

from gaze_msgs.msg import EyeState, EyeStateArray, Face, FaceArray, GazeTarget, GazeTargetArray
from gaze_perception.bags.bagfile import BagReader, BagWriter
from gaze_perception.bags.errors import BagError, TopicNotFoundError
from gaze_perception.cli.main import main
from gaze_perception.messages import msg_to_faces, rgb_to_image

REF_BOX = (181.05, 62.16, 267.75, 172.05)  # MTCNN on the astronaut (tests/test_mtcnn.py)


def _strings(n):
    return [serialize_message(String(data=f"message {i} " + "x" * 100)) for i in range(n)]


def _write_strings(path, storage, datas):
    with BagWriter(path, storage) as w:
        w.add_topic("/chatter", "std_msgs/msg/String")
        for i, data in enumerate(datas):
            w.write("/chatter", 1_000_000_000 + i * 10_000_000, data)


def _storage_file(bag):
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_cut_bag_reads_what_is_intact_and_names_the_file(tmp_path, storage):
    datas = _strings(2000)
    bag = tmp_path / "cut"
    _write_strings(bag, storage, datas)
    f = _storage_file(bag)
    with open(f, "r+b") as fh:
        fh.truncate(int(f.stat().st_size * 0.6))

    reader = BagReader(bag)
    assert reader.damaged and len(reader.problems) == 1
    read = [m.data for m in reader.messages()]
    assert str(f) in reader.problems[0] and "damaged" in reader.problems[0]
    assert 0.3 * len(datas) < len(read) < len(datas)
    assert read == datas[:len(read)]  # intact messages, in order, byte for byte
    assert len(read) == reader.topics["/chatter"].count
    assert reader.declared == len(datas)  # metadata.yaml still says what the bag held
    assert len(reader.problems) == 1  # named once, however often it is read


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_without_metadata_is_read_from_its_storage_files(tmp_path, storage):
    datas = _strings(50)
    bag = tmp_path / "no_metadata"
    _write_strings(bag, storage, datas)
    (bag / "metadata.yaml").unlink()
    reader = BagReader(bag)
    assert not reader.damaged and reader.declared is None
    assert [m.data for m in reader.messages()] == datas


def test_bag_of_a_killed_recorder_is_read(tmp_path):
    """No metadata.yaml and an MCAP file without its summary and footer."""
    datas = _strings(500)
    bag = tmp_path / "killed"
    _write_strings(bag, "mcap", datas)
    (bag / "metadata.yaml").unlink()
    f = _storage_file(bag)
    with open(f, "r+b") as fh:
        fh.truncate(int(f.stat().st_size * 0.8))
    reader = BagReader(bag)
    read = [m.data for m in reader.messages()]
    assert reader.damaged and str(f) in reader.problems[0]
    assert 0.5 * len(datas) < len(read) < len(datas) and read == datas[:len(read)]


def test_bag_written_by_rosbags_reads_like_ours(tmp_path):
    """rosbags' own typestore and writer, as a bag from another tool (sqlite3, version 8)."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    String_ = store.types["std_msgs/msg/String"]
    path = tmp_path / "foreign"
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        conn = w.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        for i in range(3):
            w.write(conn, 5 + i, bytes(store.serialize_cdr(String_(data=f"hi {i}"),
                                                           "std_msgs/msg/String")))
    reader = BagReader(path)
    assert not reader.damaged and reader.topics["/chatter"].msgtype == "std_msgs/msg/String"
    msgs = list(reader.messages())
    assert [m.timestamp for m in msgs] == [5, 6, 7]
    assert [deserialize_message(m.data, String).data for m in msgs] == ["hi 0", "hi 1", "hi 2"]


def test_reader_and_writer_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        BagReader(tmp_path / "nope")
    bag = tmp_path / "b"
    _write_strings(bag, "mcap", _strings(2))
    with pytest.raises(BagError, match="exists already"):
        BagWriter(bag)
    with pytest.raises(TopicNotFoundError, match="/missing"):
        list(BagReader(bag).messages(["/missing"]))


# --- bag process ---------------------------------------------------------------------------

def _image_bag(path, astronaut):
    frames = [astronaut, np.ascontiguousarray(astronaut[:, ::-1])]
    with BagWriter(path) as w:
        w.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        for i, rgb in enumerate(frames):
            msg = rgb_to_image(rgb, None)
            msg.header.frame_id = "camera_optical"
            msg.header.stamp.sec, msg.header.stamp.nanosec = 7, i * 33_000_000
            w.write("/camera/image_raw", 2_000_000_000 + i * 33_000_000, serialize_message(msg))


def _content(bag):
    reader = BagReader(bag)
    return ({t.name: t.msgtype for t in reader.topics.values()},
            [(m.topic, m.timestamp, m.data) for m in reader.messages()])


def test_process_is_deterministic_and_finds_the_astronaut(tmp_path, astronaut):
    src = tmp_path / "in"
    _image_bag(src, astronaut)
    outs = [tmp_path / "out1", tmp_path / "out2"]
    for out in outs:
        assert main(["bag", "process", str(src), "--config", "faces_only", "--out", str(out),
                     "--device", "cpu", "--no-progress"]) == 0
    first, second = _content(outs[0]), _content(outs[1])
    assert first == second
    topics, messages = first
    assert topics == {"/camera/image_raw": "sensor_msgs/msg/Image",
                      "/faces": "gaze_msgs/msg/FaceArray"}
    source = {m.timestamp: m.data for m in BagReader(src).messages()}
    assert {t: d for topic, t, d in messages if topic == "/camera/image_raw"} == source
    faces = [(t, deserialize_message(d, FaceArray)) for topic, t, d in messages
             if topic == "/faces"]
    assert [t for t, _ in faces] == sorted(source)  # logged at the image's log time
    for i, (_, msg) in enumerate(faces):
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (7, i * 33_000_000)
        assert msg.header.frame_id == "camera_optical"
        assert (msg.image_width, msg.image_height) == (512, 512)
    first_faces = msg_to_faces(faces[0][1])
    assert len(first_faces) == 1
    np.testing.assert_allclose(first_faces[0].xyxy, REF_BOX, atol=1.5)
    mirrored = msg_to_faces(faces[1][1])[0]
    assert abs((512 - mirrored.x - mirrored.width) - first_faces[0].x) < 2.0


def test_process_reads_compressed_images(tmp_path, astronaut):
    import cv2
    from sensor_msgs.msg import CompressedImage

    src = tmp_path / "compressed"
    ok, png = cv2.imencode(".png", cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    msg = CompressedImage(format="png", data=png.tobytes())
    msg.header.stamp.sec = 3
    with BagWriter(src, "sqlite3") as w:
        w.add_topic("/camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage")
        w.write("/camera/image_raw/compressed", 1, serialize_message(msg))
    out = tmp_path / "out"
    assert main(["bag", "process", str(src), "--config", "faces_only", "--out", str(out),
                 "--device", "cpu", "--no-progress", "--no-images"]) == 0
    reader = BagReader(out)
    assert list(reader.topics) == ["/faces"]
    faces = msg_to_faces(deserialize_message(next(reader.messages()).data, FaceArray))
    np.testing.assert_allclose(faces[0].xyxy, REF_BOX, atol=1.5)


def test_process_needs_an_image_topic(tmp_path):
    bag = tmp_path / "strings"
    _write_strings(bag, "mcap", _strings(2))
    assert main(["bag", "process", str(bag), "--config", "faces_only",
                 "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2


# --- bag eval ------------------------------------------------------------------------------

def _header(msg, stamp_s):
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), round(stamp_s % 1 * 1e9)
    return msg


def _face(x1, y1, x2, y2):
    return Face(x=float(x1), y=float(y1), width=float(x2 - x1), height=float(y2 - y1), score=0.9)


def _target(face_index, x, y, inout, heatmap=None):
    t = GazeTarget(face_index=face_index, point=Point(x=float(x), y=float(y)), inout=inout)
    if heatmap is not None:
        t.heatmap_height, t.heatmap_width = heatmap.shape
        t.heatmap = heatmap.ravel().tolist()
    return t


def _eyes(*states):
    return [EyeState(face_index=i, state=s) for i, s in enumerate(states)]


@pytest.fixture
def eval_case(tmp_path):
    """Two recorded frames of a 400x200 image; three annotated frames (the last not recorded).

    frame 0: heads A (gaze inside) and B (gaze outside); faces: A' (IoU 0.90) and a false one.
    frame 1: the same heads; faces: B exactly, A exactly, with a heatmap around A's target.
    """
    heatmap = np.zeros((64, 64), np.float32)
    heatmap[23:42, 23:42] = 1.0  # exactly VideoAttentionTarget's positive square at (0.5, 0.5)
    frames = [
        (1.0, [_face(12, 12, 50, 50), _face(300, 150, 320, 170)],
         [_target(0, 110, 50, 0.9)], _eyes(EyeState.OPEN, EyeState.OPEN)),
        (1.1, [_face(200, 10, 240, 50), _face(10, 10, 50, 50)],
         [_target(0, 0, 0, 0.2), _target(1, 200, 120, 0.8, heatmap)],
         _eyes(EyeState.CLOSED, EyeState.CLOSED)),
    ]
    bag = tmp_path / "outputs"
    with BagWriter(bag, "sqlite3") as w:
        for topic, msgtype in (("/faces", "FaceArray"), ("/gaze_targets", "GazeTargetArray"),
                               ("/eye_states", "EyeStateArray")):
            w.add_topic(topic, f"gaze_msgs/msg/{msgtype}")
        for stamp, faces, targets, eyes in frames:
            t = int(stamp * 1e9)
            w.write("/faces", t, serialize_message(_header(
                FaceArray(image_width=400, image_height=200, faces=faces), stamp)))
            w.write("/gaze_targets", t, serialize_message(_header(
                GazeTargetArray(targets=targets), stamp)))
            w.write("/eye_states", t, serialize_message(_header(EyeStateArray(eyes=eyes), stamp)))
    person_a, person_b = tmp_path / "a.txt", tmp_path / "b.txt"
    person_a.write_text("f001.jpg,10,10,50,50,100,50\nf002.jpg,10,10,50,50,200,100\n"
                        "f003.jpg,10,10,50,50,100,100\n")
    person_b.write_text("f001.jpg,200,10,240,50,-1,-1\nf002.jpg,200,10,240,50,-1,-1\n")
    labels = tmp_path / "eyes.csv"
    labels.write_text("frame,face_index,label\n0,0,open\n1,0,closed\n1,1,open\n5,0,open\n")
    return bag, [person_a, person_b], labels


def test_eval_gives_known_numbers(eval_case, tmp_path, capsys):
    bag, heads, labels = eval_case
    out = tmp_path / "metrics.json"
    assert main(["bag", "eval", str(bag), "--annotations", *map(str, heads),
                 "--eye-labels", str(labels), "--json", str(out)]) == 0
    m = json.loads(out.read_text())
    assert (m["frames"], m["annotated_frames"], m["unmatched_frames"]) == (2, 3, 1)
    # frame 0: A matched, the false face unmatched, B missed; frame 1: both matched
    assert {k: m["faces"][k] for k in ("tp", "fp", "fn")} == {"tp": 3, "fp": 1, "fn": 1}
    assert m["faces"]["precision"] == m["faces"]["recall"] == 0.75
    g = m["gaze"]
    assert (g["heads"], g["missing"]) == (4, 1)  # frame 0's B overlaps no face
    assert g["l2_count"] == 2 and g["l2"] == pytest.approx((10 / 400 + 20 / 200) / 2)
    assert (g["auc_count"], g["auc"]) == (1, 1.0)
    assert (g["inout_count"], g["inout_ap"]) == (3, 1.0)
    assert m["eyes"] == {"labels": 4, "correct": 2, "missing": 1, "accuracy": 0.5}
    printed = capsys.readouterr().out
    assert "precision 0.7500, recall 0.7500" in printed and "accuracy 0.5000" in printed


def test_eval_by_stamp(eval_case, tmp_path):
    from gaze_perception.bags.annotations import read_heads
    from gaze_perception.bags.evaluate import evaluate_bag

    bag, _, _ = eval_case
    heads = tmp_path / "stamped.txt"
    heads.write_text("1.1,10,10,50,50,200,100\n2.0,10,10,50,50,1,1\n")
    report = evaluate_bag(bag, heads=read_heads([heads]), match="stamp")
    assert (report.annotated, report.unmatched) == (2, 1)
    assert (report.detection.tp, report.detection.fp, report.detection.fn) == (1, 1, 0)
    assert report.summary()["gaze"]["l2"] == pytest.approx(0.1)


def test_eval_rejects_a_bad_annotation_line(eval_case, tmp_path):
    bag, _, _ = eval_case
    bad = tmp_path / "bad.txt"
    bad.write_text("f001.jpg,10,10,oops,50\n")
    assert main(["bag", "eval", str(bag), "--annotations", str(bad)]) == 2
