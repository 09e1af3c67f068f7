"""Attention analytics: labels, dwell times, sliding window, the report, and the node."""
import csv
import json
import math
import time

import pytest
import yaml

from gaze_perception.analytics.attention import (AttentionAccumulator, Observation,
                                                 frame_observations, gaze_label)
from gaze_perception.core.regions import Regions
from gaze_perception.cli.main import main
from gaze_perception.core.types import EyeState, Face, GazeTarget

FPS = 10.0
REGIONS = {"board": [[0, 0], [300, 0], [300, 150], [0, 150]],
           "screen": [[400, 0], [640, 0], [640, 150], [400, 150]],
           "teacher_desk": [[200, 350], [440, 350], [440, 480], [200, 480]]}
BOXES = {1: [100, 250, 60, 70], 2: [500, 250, 60, 70], 3: [300, 200, 50, 60]}
POINTS = {"board": [150, 75], "screen": [500, 75], "teacher_desk": [320, 400],
          "person:2": [530, 285], "elsewhere": [320, 300], "out_of_frame": [320, 300]}
#: per person: (first frame, last frame, target, eye state) at FPS frames per second
SCRIPT = {
    1: [(0, 49, "board", "closed"), (50, 99, "board", "open"), (100, 199, "screen", "open"),
        (200, 249, "person:2", "open"), (250, 299, "out_of_frame", "open")],
    2: [(0, 149, "teacher_desk", "unknown"), (150, 299, "elsewhere", "unknown")],
    3: [(100, 199, "board", "open")],
}


def _face_json(track_id, target, eyes):
    return {"box": BOXES[track_id], "score": 0.99, "landmarks": [], "track_id": track_id,
            "head_pose": [0.0, 0.0, 0.0],
            "eyes": {"state": eyes, "closed_prob": 0.9 if eyes == "closed" else 0.1,
                     "left": eyes, "right": eyes},
            "gaze": {"point": POINTS[target], "inout": 0.1 if target == "out_of_frame" else 0.9,
                     "score": 0.8, "label": "", "direction": None}}


@pytest.fixture(scope="module")
def session_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("session") / "lesson.jsonl"
    with open(path, "w") as fh:
        for frame in range(300):
            faces = [_face_json(tid, target, eyes) for tid, parts in SCRIPT.items()
                     for first, last, target, eyes in parts if first <= frame <= last]
            fh.write(json.dumps({"frame": frame, "source": f"lesson#{frame}",
                                 "stamp": 100.0 + frame / FPS, "width": 640, "height": 480,
                                 "faces": faces}) + "\n")
    return path


@pytest.fixture(scope="module")
def report(session_jsonl, tmp_path_factory):
    config = tmp_path_factory.mktemp("cfg") / "room.yaml"
    config.write_text(yaml.safe_dump({"stages": {"faces": "mtcnn"},
                                      "attention": {"regions": REGIONS}}))
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(session_jsonl), "--out", str(out), "--config", str(config)]) == 0
    return out


def _expected():
    """Seconds per person and target, eyes-closed seconds, from the script."""
    dwell, closed = {}, {}
    for tid, parts in SCRIPT.items():
        for first, last, target, eyes in parts:
            secs = (last - first + 1) / FPS
            dwell[tid, target] = dwell.get((tid, target), 0.0) + secs
            closed[tid] = closed.get(tid, 0.0) + (secs if eyes == "closed" else 0.0)
    return dwell, closed


def test_csv_durations_within_one_frame(report):
    rows = {int(r["track_id"]): r for r in csv.DictReader(open(report / "attention.csv"))}
    assert sorted(rows) == [1, 2, 3]
    dwell, closed = _expected()
    for (tid, target), secs in dwell.items():
        assert abs(float(rows[tid][f"{target}_s"]) - secs) <= 1.0 / FPS + 1e-6, (tid, target)
    for tid, secs in closed.items():
        assert abs(float(rows[tid]["eyes_closed_s"]) - secs) <= 1.0 / FPS + 1e-6
    assert rows[2]["eyes_closed_ratio"] == ""  # eye state never known
    assert float(rows[3]["first_seen_s"]) == pytest.approx(10.0)
    assert float(rows[1]["teacher_desk_s"]) == 0.0  # every region gets a column


def test_plots_and_page_exist(report):
    for name in ("timeline.png", "share.png", "eyes_closed.png"):
        data = (report / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, name
    page = (report / "index.html").read_text()
    assert all(f'src="{n}"' in page for n in ("timeline.png", "share.png", "eyes_closed.png"))
    assert "<td>1</td>" in page


def test_report_tracks_people_when_the_input_has_no_ids(session_jsonl, tmp_path):
    untracked = tmp_path / "untracked.jsonl"
    lines = [json.loads(x) for x in session_jsonl.read_text().splitlines()]
    for line in lines:
        for face in line["faces"]:
            face["track_id"] = 0
            face["gaze"]["point"] = POINTS["board"]
    untracked.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["report", str(untracked), "--out", str(tmp_path / "r")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "r" / "attention.csv")))
    assert len(rows) == 3


def test_stamps_that_do_not_advance_need_fps(session_jsonl, tmp_path):
    frozen = tmp_path / "frozen.jsonl"
    frozen.write_text("".join(json.dumps({**json.loads(x), "stamp": 0.0}) + "\n"
                              for x in session_jsonl.read_text().splitlines()))
    assert main(["report", str(frozen), "--out", str(tmp_path / "a")]) == 2
    assert main(["report", str(frozen), "--out", str(tmp_path / "b"), "--fps", "10"]) == 0


def test_labels():
    regions = Regions(REGIONS)
    faces = [Face(*BOXES[1], track_id=1), Face(*BOXES[2], track_id=2),
             Face(150, 40, 40, 40, track_id=3)]  # person 3 stands in front of the board

    def at(point, inout=0.9, score=0.5):
        return gaze_label(0, faces, GazeTarget(0, point, inout, score), regions)

    assert at(POINTS["screen"]) == "screen"
    assert at((170, 60)) == "person:3"
    assert at((170, 60), inout=0.2) == "out_of_frame"
    assert at((320, 300)) == "elsewhere"
    assert at((170, 60), inout=0.0, score=0.0) == "unknown"
    assert at((math.nan, 1.0)) == "unknown"
    assert gaze_label(0, faces, None, regions) == "unknown"
    obs = frame_observations(faces + [Face(0, 0, 5, 5)], [EyeState(1, "closed")],
                             [GazeTarget(1, (50, 75))], regions)
    assert obs == [Observation(1, "unknown", None), Observation(2, "board", True),
                   Observation(3, "unknown", None)]  # the untracked face is not counted


def test_reserved_and_bad_regions_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        Regions({"person:1": [[0, 0], [1, 0], [1, 1]]})
    with pytest.raises(ValueError, match="polygon"):
        Regions({"board": [[0, 0], [1, 0]]})


def test_sliding_window_and_frame_gaps():
    acc = AttentionAccumulator(window=5.0, max_frame_gap=0.5)
    for i in range(100):  # 10 s at 10 fps: board, then screen
        acc.add_frame(i / 10, [Observation(7, "board" if i < 50 else "screen", i % 2 == 0)])
    acc.add_frame(19.9, [Observation(7, "screen", None)])  # after a 10 s stall: 0.5 s at most
    (t,) = acc.summary()
    assert t.session.dwell["board"] == pytest.approx(4.9)
    assert t.session.dwell["screen"] == pytest.approx(5.5)
    assert t.window.dwell == {"screen": pytest.approx(0.5)}  # frames of the last 5 s
    assert t.session.eyes_closed == pytest.approx(4.9) and t.target == "screen"
    assert acc.add_frame(3.0, []) == 0.0  # an old stamp counts nothing


@pytest.mark.ros
def test_attention_node_publishes_summaries():
    """faces + gaze_targets joined by stamp → AttentionSummary with per-person dwell times."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from std_msgs.msg import Header

    from gaze_msgs.msg import AttentionSummary, FaceArray, GazeTargetArray
    from gaze_perception.dds import isolated_ros_env
    from gaze_perception.graph import NodeSpec
    from gaze_perception.processes import NodeProcess
    from gaze_perception.messages import faces_to_msg, gaze_to_msg

    env = isolated_ros_env()
    spec = NodeSpec("attention", parameters={"regions": json.dumps(REGIONS), "rate": 20.0,
                                             "with_eye_states": False})
    proc = NodeProcess(spec, env, echo=False)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("attention_test", context=ctx)
    got = []
    node.create_subscription(AttentionSummary, "attention", got.append, 10)
    pubs = {"faces": node.create_publisher(FaceArray, "faces", 10),
            "gaze": node.create_publisher(GazeTargetArray, "gaze_targets", 10)}
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 60
        while (min(p.get_subscription_count() for p in pubs.values()) == 0
               and time.monotonic() < deadline):
            executor.spin_once(timeout_sec=0.05)
        time.sleep(0.5)  # let discovery settle in both directions
        faces = [Face(*BOXES[1], track_id=1)]
        for i in range(11):  # 1 s of board at 10 fps, gaze before faces on odd frames
            header = Header(frame_id="cam")
            header.stamp.sec, header.stamp.nanosec = divmod(5_000_000_000 + i * 100_000_000,
                                                            1_000_000_000)
            fa = faces_to_msg(faces, header, 640, 480)
            ga = gaze_to_msg([GazeTarget(0, POINTS["board"], 0.9, 0.8)], faces, fa.header)
            for key in (("gaze", "faces") if i % 2 else ("faces", "gaze")):
                pubs[key].publish(ga if key == "gaze" else fa)
            time.sleep(0.05)  # inputs keep 10: the node may stall 0.5 s and lose none
        while time.monotonic() < deadline and not (
                got and got[-1].tracks and got[-1].tracks[0].session_observed > 0.95):
            executor.spin_once(timeout_sec=0.05)
        assert got, proc.output
        last = got[-1]
        assert (last.header.stamp.sec, last.header.stamp.nanosec) == (6, 0)
        assert last.header.frame_id == "cam"
        (track,) = last.tracks
        assert track.track_id == 1 and track.target == "board"
        assert dict(zip(track.targets, track.session_dwell)) == {"board": pytest.approx(1.0)}
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        assert proc.stop() == 0, proc.output
