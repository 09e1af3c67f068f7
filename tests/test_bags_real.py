"""Bags this project did not write, through the reader paths that need no ROS graph (`bag
process`, `report`, `bag eval`; `bag play` over DDS is in test_bags_ros.py): the real rosbag2's
own test bags (../shared/data/rosbag2_real), bags laid out as rosbag2 lays them out (a
metadata.yaml whose QoS text differs from the storage file's, several storage files, no
metadata.yaml, one file given directly), damaged ones, and real VideoAttentionTarget head boxes
(../shared/data/vat_demo_two_people)."""
import json
import shutil

import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore
from ruamel.yaml import YAML
from std_msgs.msg import String

from gaze_msgs.msg import Face, FaceArray
from gaze_perception.bags.bagfile import BagReader, BagWriter
from gaze_perception.bags.qos import to_bag
from gaze_perception.cli.args import EXIT_PARTIAL
from gaze_perception.cli.main import main
from gaze_perception.messages import rgb_to_image

#: The four bags and the suffix of their one storage file.
REAL = {"sqlite3_talker": ".db3", "mcap_talker": ".mcap", "sqlite3_cdr_test": ".db3",
        "mcap_cdr_test": ".mcap"}
#: The QoS a recorder stores for a topic (rosbag2 stores one profile per publisher).
OFFERED = [to_bag(QoSProfile(depth=10))]
#: An infinite duration as rosbag2 writes it in metadata.yaml (the storage file says 0, 0).
INFINITE = {"sec": 2147483647, "nsec": 4294967295}


def real_bags(shared_dir):
    """The folder of the real rosbag2 bags (the test skips, saying why, where it is absent)."""
    found = shared_dir / "data" / "rosbag2_real"
    if not found.is_dir():
        pytest.skip(f"the real rosbag2 bags are not at {found}")
    return found


@pytest.fixture(scope="session")
def real_dir(shared_dir):
    return real_bags(shared_dir)


def _metadata(bag):
    return YAML(typ="safe").load((bag / "metadata.yaml").read_text())[
        "rosbag2_bagfile_information"]


def _content(reader):
    return [(m.topic, m.msgtype, m.timestamp, m.data) for m in reader.messages()]


def _storage(bag):
    return next(p for p in sorted(bag.iterdir()) if p.suffix in (".mcap", ".db3"))


def _as_rosbag2_writes_it(bag):
    """Rewrite metadata.yaml's QoS the way the real rosbag2 does (infinite durations as
    2147483647 s), so it no longer equals the storage file's text (0 s)."""
    path = bag / "metadata.yaml"
    yaml = YAML()
    meta = yaml.load(path.read_text())
    for topic in meta["rosbag2_bagfile_information"]["topics_with_message_count"]:
        for qos in topic["topic_metadata"]["offered_qos_profiles"]:
            for key in ("deadline", "lifespan", "liveliness_lease_duration"):
                qos[key] = dict(INFINITE)
    with path.open("w") as fh:
        yaml.dump(meta, fh)
    with Reader(bag) as reader:  # the trap: rosbags' folder reader now finds nothing
        assert reader.message_count > 0 and not list(reader.messages())


def _cut(bag, share):
    f = _storage(bag)
    with open(f, "r+b") as fh:
        fh.truncate(int(f.stat().st_size * share))
    return f


# --- reading -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", REAL)
def test_real_bag_reads_as_folder_as_file_and_without_metadata(real_dir, tmp_path, name):
    bag = real_dir / name
    meta = _metadata(bag)  # what rosbag2 itself says the bag holds
    expected = {t["topic_metadata"]["name"]: (t["topic_metadata"]["type"], t["message_count"])
                for t in meta["topics_with_message_count"]}
    folder = BagReader(bag)
    assert {t.name: (t.msgtype, t.count) for t in folder.topics.values()} == expected
    assert not folder.problems and folder.count() == folder.declared == meta["message_count"]
    messages = _content(folder)
    assert len(messages) == meta["message_count"] > 0
    assert [m[2] for m in messages] == sorted(m[2] for m in messages)

    storage = bag / REAL[name]
    storage = storage if storage.exists() else _storage(bag)
    assert _content(BagReader(storage)) == messages
    copy = tmp_path / name
    copy.mkdir()
    shutil.copy(storage, copy)  # the folder without metadata.yaml: read from the file itself
    reindexed = BagReader(copy)
    assert not reindexed.problems and reindexed.declared is None
    assert _content(reindexed) == messages
    if "talker" in name:
        texts = [deserialize_message(d, String).data for t, _, _, d in messages if t == "/topic"]
        assert texts == [f"Hello, world! {i}" for i in range(10)]


def _strings_bag(path, stamps, storage="mcap"):
    with BagWriter(path, storage) as w:
        w.add_topic("/chatter", "std_msgs/msg/String")
        for t in stamps:
            w.write("/chatter", t, serialize_message(String(data=f"at {t}")))


@pytest.mark.parametrize("with_metadata", [True, False])
def test_several_storage_files_are_one_bag_in_time_order(tmp_path, with_metadata):
    """A bag split in two files (as `ros2 bag record --max-bag-duration` writes), one of them
    SQLite: its messages interleave."""
    parts = [tmp_path / "even", tmp_path / "odd"]
    _strings_bag(parts[0], range(0, 40, 2), "mcap")
    _strings_bag(parts[1], range(1, 40, 2), "sqlite3")
    bag = tmp_path / "split"
    bag.mkdir()
    names = []
    for i, part in enumerate(parts):
        f = _storage(part)
        names.append(f"split_{i}{f.suffix}")
        shutil.move(f, bag / names[-1])
    if with_metadata:
        meta = YAML().load((parts[0] / "metadata.yaml").read_text())
        info = meta["rosbag2_bagfile_information"]
        info["relative_file_paths"] = names
        info["message_count"] = 40
        with (bag / "metadata.yaml").open("w") as fh:
            YAML().dump(meta, fh)
    reader = BagReader(bag)
    assert not reader.problems and reader.count() == 40
    assert [m.timestamp for m in reader.messages()] == list(range(40))

    if with_metadata:  # a listed file that is gone: named, the other one is read
        (bag / names[1]).unlink()
        reader = BagReader(bag)
        assert len(reader.problems) == 1 and names[1] in reader.problems[0]
        assert [m.timestamp for m in reader.messages()] == list(range(0, 40, 2))


@pytest.mark.parametrize("storage", ["MCAP", "SQLITE3"])
@pytest.mark.parametrize("mode", ["MESSAGE", "FILE"])
def test_compressed_bags_read_with_and_without_metadata(tmp_path, storage, mode):
    """rosbag2's zstd compression, per message or per file (written by rosbags' writer)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.writer import CompressionFormat, CompressionMode

    bag = tmp_path / "compressed"
    sent = [serialize_message(String(data=f"compressed {i} " + "z" * 50)) for i in range(5)]
    writer = Writer(bag, version=9, storage_plugin=StoragePlugin[storage])
    writer.set_compression(CompressionMode[mode], CompressionFormat.ZSTD)
    with writer:
        conn = writer.add_connection("/c", "std_msgs/msg/String",
                                     typestore=get_typestore(Stores.ROS2_KILTED))
        for i, data in enumerate(sent):
            writer.write(conn, i, data)
    for _ in range(2):
        reader = BagReader(bag)
        assert not reader.problems and [m.data for m in reader.messages()] == sent
        (bag / "metadata.yaml").unlink(missing_ok=True)


def test_sqlite_write_ahead_log_of_a_killed_recorder_is_read(tmp_path):
    """rosbag2's `resilient` preset writes SQLite in WAL mode; a recorder killed before the log
    was merged leaves its last messages in `<file>-wal` only."""
    import sqlite3

    bag = tmp_path / "bag"
    _strings_bag(bag, range(10), "sqlite3")
    db = _storage(bag)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.executemany("INSERT INTO messages (topic_id, timestamp, data) VALUES (1, ?, ?)",
                    [(t, serialize_message(String(data=f"at {t}"))) for t in range(10, 15)])
    con.commit()
    killed = tmp_path / "killed"  # the files as they are while the recorder still runs
    killed.mkdir()
    for f in bag.iterdir():
        shutil.copy(f, killed)
    con.close()
    assert (killed / (db.name + "-wal")).stat().st_size > 0
    reader = BagReader(killed)
    assert not reader.problems and reader.count() == 15
    assert [deserialize_message(m.data, String).data for m in reader.messages()] == [
        f"at {t}" for t in range(15)]


def test_an_unusable_metadata_yaml_is_not_the_end_of_the_bag(tmp_path, caplog):
    bag = tmp_path / "bag"
    _strings_bag(bag, range(5))
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [not, a: {mapping\n")
    reader = BagReader(bag)
    assert [m.timestamp for m in reader.messages()] == list(range(5)) and not reader.problems
    assert "metadata.yaml is not usable" in caplog.text


def test_a_file_that_is_not_a_bag_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["bag", "play", str(tmp_path / "notes.txt")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["bag", "play", str(tmp_path / "empty")]) == 2


# --- bag process -----------------------------------------------------------------------------

def _image_bag(path, frames, bad=()):
    """Images as a camera driver records them; the messages at positions `bad` are garbage."""
    with BagWriter(path) as w:
        w.add_topic("/camera/image_raw", "sensor_msgs/msg/Image", OFFERED)
        for i, rgb in enumerate(frames):
            msg = rgb_to_image(rgb, None)
            msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i, 0
            data = b"\x00\x01\x00\x00garbage" if i in bad else serialize_message(msg)
            w.write("/camera/image_raw", (100 + i) * 10**9, data)


def _process(src, out, *extra):
    return main(["bag", "process", str(src), "--config", "faces_only", "--out", str(out),
                 "--device", "cpu", "--no-progress", *extra])


def test_process_reads_a_bag_as_rosbag2_writes_it(tmp_path, astronaut):
    src = tmp_path / "rosbag2"
    _image_bag(src, [astronaut])
    _as_rosbag2_writes_it(src)
    out = tmp_path / "out"
    assert _process(src, out, "--no-images") == 0
    faces = [deserialize_message(m.data, FaceArray) for m in BagReader(out).messages()]
    assert len(faces) == 1 and len(faces[0].faces) == 1


def test_process_of_a_damaged_bag_writes_every_intact_frame(tmp_path, capsys, caplog):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(60)]
    src = tmp_path / "damaged"
    _image_bag(src, frames, bad={3})
    cut = _cut(src, 0.7)
    intact = BagReader(src).count()
    assert 10 < intact < 60
    out = tmp_path / "out"
    assert _process(src, out) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert str(cut) in caplog.text and "does not deserialize" in caplog.text  # the warnings
    assert f"processed {intact - 1} of {intact} frames" in err
    written = BagReader(out)
    assert not written.problems  # the output is complete, nothing produced is lost
    assert written.topics["/faces"].count == intact - 1
    assert written.topics["/camera/image_raw"].count == intact  # the bad one is copied too


# --- report ----------------------------------------------------------------------------------

def _faces_bag(path, n, storage="mcap", bad=()):
    """One tracked person for `n` frames at 10 Hz, as the ROS graph records /faces; the
    messages at positions `bad` are garbage."""
    with BagWriter(path, storage) as w:
        w.add_topic("/faces", "gaze_msgs/msg/FaceArray", OFFERED)
        for i in range(n):
            msg = FaceArray(image_width=640, image_height=480, faces=[Face(
                track_id=7, score=0.9, x=100.0, y=100.0, width=80.0, height=80.0,
                yaw=float("nan"), pitch=float("nan"), roll=float("nan"))])
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(i * 100_000_000,
                                                                    1_000_000_000)
            msg.header.frame_id = "camera"
            data = b"\x00\x01\x00\x00garbage" if i in bad else serialize_message(msg)
            w.write("/faces", 10**9 + i * 100_000_000, data)


def test_report_of_a_damaged_bag_reports_what_is_intact(tmp_path, capsys):
    bag = tmp_path / "session"
    _faces_bag(bag, 600, "sqlite3")  # (cut MCAP: the eval test below, both: test_bags.py)
    _cut(bag, 0.5)
    intact = BagReader(bag).count()
    assert 50 < intact < 600
    out = tmp_path / "report"
    assert main(["report", str(bag), "--out", str(out)]) == EXIT_PARTIAL
    printed = capsys.readouterr().out
    assert "skipped" in printed and "damaged" in printed
    rows = (out / "attention.csv").read_text().splitlines()
    assert len(rows) == 2  # header, the one person: seen over every intact frame
    assert rows[1].split(",")[:3] == ["7", "0.000", f"{(intact - 1) / 10:.3f}"]
    page = (out / "index.html").read_text()
    assert "damaged" in page  # the report itself says what it does not cover


def test_report_and_eval_skip_a_message_that_does_not_deserialize(tmp_path, capsys):
    bag = tmp_path / "session"
    _faces_bag(bag, 30, bad={10})
    assert main(["report", str(bag), "--out", str(tmp_path / "r")]) == EXIT_PARTIAL
    printed = capsys.readouterr().out
    assert "1 people over 2.9 s" in printed and "at 2000000000 ns" in printed
    person = tmp_path / "p.txt"
    person.write_text("".join(f"{i:05d}.jpg,95,90,185,185\n" for i in range(30)))
    assert _eval(bag, "--annotations", person) == EXIT_PARTIAL
    printed = capsys.readouterr().out
    assert "frames: 29 in the bag" in printed and "tp 29, fp 0, fn 0" in printed
    assert "skipped: /faces message at 2000000000 ns" in printed


def test_report_reads_a_bag_as_rosbag2_writes_it(tmp_path, capsys):
    bag = tmp_path / "session"
    _faces_bag(bag, 30)
    _as_rosbag2_writes_it(bag)
    assert main(["report", str(bag), "--out", str(tmp_path / "r")]) == 0
    assert "1 people over 2.9 s" in capsys.readouterr().out


# --- bag eval --------------------------------------------------------------------------------

def _eval(bag, *args):
    return main(["bag", "eval", str(bag), *map(str, args)])


def test_eval_of_a_damaged_bag_scores_what_is_intact(tmp_path, capsys):
    bag = tmp_path / "outputs"
    _faces_bag(bag, 400)
    _as_rosbag2_writes_it(bag)
    _cut(bag, 0.5)
    intact = BagReader(bag).count()
    person = tmp_path / "p.txt"
    person.write_text("".join(f"{i:05d}.jpg,95,90,185,185\n" for i in range(400)))
    out = tmp_path / "m.json"
    assert _eval(bag, "--annotations", person, "--json", out) == EXIT_PARTIAL
    printed = capsys.readouterr().out
    assert "skipped: " in printed and "damaged" in printed
    m = json.loads(out.read_text())
    assert (m["frames"], m["unmatched_frames"]) == (intact, 400 - intact)
    assert (m["faces"]["tp"], m["faces"]["fp"]) == (intact, 0) and len(m["skipped"]) == 1


@pytest.fixture(scope="module")
def vat_outputs(shared_dir, tmp_path_factory):
    """Three real VideoAttentionTarget frames through `bag process`, and their real head-box
    annotation rows."""
    root = shared_dir / "data" / "vat_demo_two_people"
    if not root.is_dir():
        pytest.skip(f"the VideoAttentionTarget demo is not at {root}")
    names = ["00002575.jpg", "00002625.jpg", "00002675.jpg"]
    tmp = tmp_path_factory.mktemp("vat")
    frames = [cv2.cvtColor(cv2.imread(str(root / "frames" / n)), cv2.COLOR_BGR2RGB)
              for n in names]
    _image_bag(tmp / "clip", frames)
    assert _process(tmp / "clip", tmp / "faces", "--no-images") == 0
    people = []
    for person in ("person1.txt", "person2.txt"):
        rows = [r for r in (root / person).read_text().splitlines() if r.split(",")[0] in names]
        assert len(rows) == 3
        people.append(tmp / person)
        people[-1].write_text("\n".join(rows) + "\n")
    return tmp / "faces", people


def test_eval_takes_head_boxes_as_head_boxes(vat_outputs, tmp_path, capsys):
    """Face boxes are about a third of a VideoAttentionTarget head box by IoU: compared as face
    boxes at IoU 0.5 a good detector scores precision 0; as head boxes it finds every head."""
    bag, people = vat_outputs
    out = tmp_path / "m.json"
    assert _eval(bag, "--annotations", *people, "--boxes", "face", "--json", out) == 0
    as_faces = json.loads(out.read_text())["faces"]
    assert "face boxes" in capsys.readouterr().out
    assert (as_faces["tp"], as_faces["precision"], as_faces["recall"]) == (0, 0.0, 0.0)

    assert _eval(bag, "--annotations", *people, "--json", out) == 0  # the default: head boxes
    printed = capsys.readouterr().out
    heads = json.loads(out.read_text())["faces"]
    assert "annotated boxes are head boxes: a face matches a head holding at least 75%" in printed
    assert heads["boxes"] == "head" and heads["rule"] in printed
    assert (heads["tp"], heads["fn"]) == (6, 0)  # both people in all three frames
    assert heads["precision"] == 6 / (6 + heads["fp"]) >= 0.7


def test_a_speck_inside_a_head_box_is_not_its_face():
    from gaze_perception.bags.evaluate import match_heads

    head = (100, 100, 300, 300)
    face, speck, outside = (140, 150, 260, 290), (150, 160, 160, 170), (250, 250, 350, 350)
    assert match_heads([head], [speck, face, outside]) == [(0, 1)]
    assert match_heads([head], [speck]) == [] and match_heads([head], [outside]) == []
