"""`bag record` and `bag play` over real DDS, each on its own ROS domain."""
import contextlib
import functools
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rcl_interfaces.msg import Log, ParameterEvent
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import String

from gaze_perception.bags.bagfile import BagReader, BagWriter
from gaze_perception.cli.args import EXIT_PARTIAL
from gaze_perception.core.config import config_dir
from gaze_perception.dds import isolated_ros_env
from gaze_perception.messages import rgb_to_image
from test_bags_real import real_bags

pytestmark = pytest.mark.ros

TIMING_TOLERANCE_S = 0.010
RELIABLE = QoSProfile(depth=10)
#: The probe's subscriptions keep every message a test plays (at most a few hundred): with depth
#: 10, a probe whose Python callbacks fall behind on a loaded machine would drop the oldest ones
#: itself (keep-last), and a test of the player would fail on the probe's own speed.
PROBE_QOS = QoSProfile(depth=1000)


class Probe:
    """A node in this process: publishers, and raw subscribers that log (topic, bytes, time DDS
    received it in seconds), a time our executor's scheduling does not blur."""

    def __init__(self, domain_id):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("bag_test_probe", context=self.context)
        self.received = []
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def listen(self, msg_type, topic):
        self.node.create_subscription(msg_type, topic, functools.partial(self._log, topic),
                                      PROBE_QOS, raw=True)

    def _log(self, topic, data, info):
        self.received.append((topic, data, info["received_timestamp"] / 1e9))

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def domain():
    env = isolated_ros_env()
    probe = Probe(int(env["ROS_DOMAIN_ID"]))
    yield env, probe
    probe.close()


def _wait(condition, timeout, what):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def _bag_cli(env, *args, **popen):
    return subprocess.Popen([sys.executable, "-m", "gaze_perception.cli.main", "bag", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def _play(env, probe, bag, topics, expected, *args):
    """`bag play` in a subprocess; returns its (exit code, stderr) once `expected` messages
    (not counting /clock) arrived."""
    for msg_type, topic in topics:
        probe.listen(msg_type, topic)
    proc = _bag_cli(env, "play", str(bag), "--wait-for-subscribers", "30", *args)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    _wait(lambda: sum(t != "/clock" for t, _, _ in probe.received) >= expected, 5,
          f"{expected} messages")
    return proc.returncode, err


def _small_image(i):
    rng = np.random.default_rng(i)
    msg = rgb_to_image(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), None)
    msg.header.stamp.sec = i
    return msg


class RecorderProcess:
    """`bag record` in a subprocess, interrupted once (a second SIGINT could reach it while
    Python finalizes, after the bag is closed, and kill it with the default handler)."""

    def __init__(self, env, bag, topics):
        self.proc = _bag_cli(env, "record", str(bag), "--topics", *topics)
        self.interrupted_at = None

    def interrupt(self):
        if self.interrupted_at is None:
            self.proc.send_signal(signal.SIGINT)
            self.interrupted_at = time.monotonic()


@contextlib.contextmanager
def _recording(env, bag, publishers, *topics):
    """A recorder subscribed to `publishers` when the block starts, interrupted when it ends."""
    recorder = RecorderProcess(env, bag, topics)
    proc = recorder.proc
    try:
        _wait(lambda: all(p.get_subscription_count() for p in publishers)
              or proc.poll() is not None, 60, "the recorder to subscribe")
        assert proc.poll() is None, proc.communicate()
        yield recorder
        recorder.interrupt()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_record_then_play_gives_same_bytes_and_timing(domain, tmp_path):
    env, probe = domain
    image_pub = probe.node.create_publisher(Image, "/camera/image", RELIABLE)
    text_pub = probe.node.create_publisher(String, "chatter", RELIABLE)
    bag = tmp_path / "rec"
    published = {"/camera/image": [], "/chatter": []}
    with _recording(env, bag, [image_pub, text_pub], "/camera/image", "chatter") as recorder:
        for i, gap in enumerate([0.0, 0.03, 0.07, 0.01, 0.05, 0.12, 0.02, 0.04, 0.09, 0.03]):
            time.sleep(gap)
            image, text = _small_image(i), String(data=f"text {i}")
            image_pub.publish(image)
            text_pub.publish(text)
            published["/camera/image"].append(image)
            published["/chatter"].append(text)
        time.sleep(0.3)
    assert recorder.proc.returncode == 0

    recorded = list(BagReader(bag).messages())
    for topic, msg_type in (("/camera/image", Image), ("/chatter", String)):
        assert [deserialize_message(m.data, msg_type) for m in recorded
                if m.topic == topic] == published[topic]
    rc, err = _play(env, probe, bag, [(Image, "/camera/image"), (String, "/chatter")],
                    len(recorded))
    assert rc == 0, err
    # the recorded bytes themselves, padding included, so every message is told apart
    arrival = {data: t for _, data, t in probe.received}
    assert len(probe.received) == len(recorded) and set(arrival) == {m.data for m in recorded}
    stamps = np.array([m.timestamp / 1e9 for m in recorded])
    times = np.array([arrival[m.data] for m in recorded])
    np.testing.assert_allclose(np.diff(times), np.diff(stamps), atol=TIMING_TOLERANCE_S)


def test_bag_written_by_rosbags_plays(domain, tmp_path):
    """A bag from another tool: rosbags' own typestore and writer, sqlite3, version 8."""
    env, probe = domain
    store = get_typestore(Stores.ROS2_HUMBLE)
    String_ = store.types["std_msgs/msg/String"]
    bag = tmp_path / "foreign"
    sent = []
    with Writer(bag, version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        conn = w.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        for i in range(5):
            sent.append(bytes(store.serialize_cdr(String_(data=f"hi {i}"), "std_msgs/msg/String")))
            w.write(conn, 10**9 + i * 20_000_000, sent[-1])
    rc, err = _play(env, probe, bag, [(String, "/chatter"), (Clock, "/clock")], 5,
                    "--rate", "2", "--clock", "100")
    assert rc == 0, err
    clock = [deserialize_message(d, Clock).clock for t, d, _ in probe.received if t == "/clock"]
    assert len(clock) >= 3  # 40 ms of playing at 100 Hz, one at the start
    assert all(10**9 <= c.sec * 10**9 + c.nanosec <= 10**9 + 100_000_000 for c in clock)
    # the bytes as written; Fast DDS pads payloads between processes to 4 bytes with zeros
    received = [data for t, data, _ in probe.received if t == "/chatter"]
    assert [r[:len(s)] for r, s in zip(received, sent)] == sent and len(received) == 5
    assert all(len(r) % 4 == 0 and not any(r[len(s):]) for r, s in zip(received, sent))
    assert deserialize_message(received[0], String).data == "hi 0"


def test_cut_bag_plays_what_is_intact_and_names_the_file(domain, tmp_path):
    env, probe = domain
    bag = tmp_path / "cut"
    with BagWriter(bag) as w:
        w.add_topic("/chatter", "std_msgs/msg/String")
        for i in range(400):
            w.write("/chatter", 10**9 + i * 5_000_000,
                    serialize_message(String(data=f"m{i} " + "x" * 200)))
    mcap = next(bag.glob("*.mcap"))
    with open(mcap, "r+b") as fh:
        fh.truncate(mcap.stat().st_size // 2)
    intact = BagReader(bag).count()
    rc, err = _play(env, probe, bag, [(String, "/chatter")], intact)
    assert rc == EXIT_PARTIAL and str(mcap) in err and "damaged" in err, err
    assert err.splitlines()[-1].startswith(
        f"published {intact} of {intact} messages; its metadata.yaml lists 400; 1 thing(s) "
        "skipped"), err
    texts = [deserialize_message(data, String).data.split()[0] for _, data, _ in probe.received]
    assert 150 <= len(texts) < 400 and texts == [f"m{i}" for i in range(len(texts))]


# --- bags written by the real rosbag2 (../shared/data/rosbag2_real) --------------------------

@pytest.fixture(scope="session")
def real_dir(shared_dir):
    return real_bags(shared_dir)


TALKER_TOPICS = [(String, "/topic"), (Log, "/rosout"), (ParameterEvent, "/parameter_events")]


def _received_bag_messages(probe, bag):
    """The bag's messages the probe received, per topic in arrival order (Fast DDS pads the
    payload to 4 bytes: compared by prefix); other nodes' /rosout or /parameter_events are
    left out."""
    sent = {}
    for m in BagReader(bag).messages():
        sent.setdefault(m.topic, []).append(m.data)
    got = {}
    for topic, data, _ in probe.received:
        match = [s for s in sent.get(topic, []) if data[:len(s)] == s and not any(data[len(s):])]
        if match:
            got.setdefault(topic, []).append(match[0])
    return sent, got


@pytest.mark.parametrize("name", ["sqlite3_talker", "mcap_talker"])
def test_real_rosbag2_talker_bag_plays_every_message(domain, real_dir, name):
    env, probe = domain
    bag = real_dir / name
    rc, err = _play(env, probe, bag, TALKER_TOPICS, 20, "--rate", "10")
    assert rc == 0, err
    assert err.splitlines()[-1] == "published 20 of 20 messages", err
    sent, got = _received_bag_messages(probe, bag)
    assert got == sent and sum(map(len, got.values())) == 20


@pytest.mark.parametrize("name", ["sqlite3_cdr_test", "mcap_cdr_test"])
def test_topics_of_types_not_installed_are_skipped_with_one_warning_each(domain, real_dir, name):
    env, _ = domain
    proc = _bag_cli(env, "play", str(real_dir / name))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_PARTIAL, err
    for topic, msgtype in (("/array_topic", "test_msgs/msg/Arrays"),
                           ("/test_topic", "test_msgs/msg/BasicTypes")):
        assert sum(topic in line and msgtype in line for line in err.splitlines()) == 1, err
    assert err.splitlines()[-1].startswith("published 0 of 7 messages; 2 thing(s) skipped"), err


def test_a_folder_of_several_real_files_without_metadata_plays_what_it_can(domain, real_dir,
                                                                         tmp_path):
    """talker.mcap and cdr_test_0.db3 in one folder, no metadata.yaml: the talker's 20
    messages play, the test_msgs topics are skipped."""
    env, probe = domain
    bag = tmp_path / "mixed"
    bag.mkdir()
    shutil.copy(real_dir / "mcap_talker" / "talker.mcap", bag)
    shutil.copy(real_dir / "sqlite3_cdr_test" / "cdr_test_0.db3", bag)
    rc, err = _play(env, probe, bag, TALKER_TOPICS, 20, "--rate", "10")
    assert rc == EXIT_PARTIAL, err
    assert "/test_topic (test_msgs/msg/BasicTypes" in err and "/array_topic" in err
    assert err.splitlines()[-1].startswith("published 20 of 27 messages"), err
    sent, got = _received_bag_messages(probe, bag)
    assert got == {t: sent[t] for t in ("/topic", "/rosout")}


# --- bag record: the transport `up` uses ---------------------------------------------------

def _shm_segments(pid):
    """Sizes of the Fast DDS shared-memory segments process `pid` has mapped (bytes)."""
    sizes = []
    with open(f"/proc/{pid}/maps") as fh:
        for line in fh:
            path = line.split()[-1]
            if path.startswith("/dev/shm/fastdds_") and "port" not in path:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                sizes.append(hi - lo)
    return sizes


@pytest.mark.parametrize("own_profile", [False, True])
def test_record_uses_the_large_shared_memory_profile(domain, tmp_path, own_profile):
    """Without a profile of the user's, `bag record` takes `up`'s (a 32 MB segment, so 1080p
    frames are not lost in UDP fragments); a user's own profile is kept."""
    env, probe = domain
    env = {k: v for k, v in env.items()
           if k not in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")}
    if own_profile:
        own = tmp_path / "own.xml"
        large = (config_dir() / "fastdds_large_shm.xml").read_text()
        assert "33554432" in large
        own.write_text(large.replace("33554432", "4194304"))
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(own)
    pub = probe.node.create_publisher(Image, "/camera/image_raw", RELIABLE)
    with _recording(env, tmp_path / "rec", [pub], "/camera/image_raw") as recorder:
        sizes = _shm_segments(recorder.proc.pid)
    assert recorder.proc.returncode == 0
    assert sizes, "the recorder maps no Fast DDS segment"
    if own_profile:
        assert 4 * 2**20 <= max(sizes) < 8 * 2**20, sizes
    else:
        assert max(sizes) >= 32 * 2**20, sizes


def test_recorder_stopped_by_sigint_keeps_every_message_before_it(domain, tmp_path):
    env, probe = domain
    period = 1 / 30
    pub = probe.node.create_publisher(Image, "/camera/image_raw", RELIABLE)
    bag = tmp_path / "sigint"
    frame = np.zeros((480, 640, 3), np.uint8)
    sent = []
    with _recording(env, bag, [pub], "/camera/image_raw") as recorder:
        start = time.monotonic()
        for i in range(45):  # 1.5 s at 30 Hz; the signal after 1 s
            time.sleep(max(0.0, start + i * period - time.monotonic()))
            msg = rgb_to_image(frame, None)
            msg.header.stamp.sec = i
            pub.publish(msg)
            sent.append((i, time.monotonic()))
            if i == 30:
                recorder.interrupt()
    assert recorder.proc.returncode == 0
    reader = BagReader(bag)
    assert not reader.damaged
    stamps = [deserialize_message(m.data, Image).header.stamp.sec for m in reader.messages()]
    must_have = [i for i, t in sent if t < recorder.interrupted_at - period]
    assert len(must_have) >= 29
    assert set(must_have) <= set(stamps), sorted(set(must_have) - set(stamps))
    assert stamps == sorted(set(stamps))  # no duplicates, in order
