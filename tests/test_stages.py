"""The stage table (core/stages.py) and everything that reads it: each row names a real base
class, call, backends, node and entry points; every stage a config names is built by every
runner (`run`'s Pipeline, `up` and `ros2 launch` through node_specs, the composed graph), and the
ROS graph publishes the direction and coding stages as `run` computes them; a stub stage added
in a test needs one table entry, one backend and one node file."""
import importlib
import importlib.metadata
import json
import textwrap

import pytest

from gaze_perception.core import registry
from gaze_perception.core import stages
from gaze_perception.core.pipeline import Pipeline, PipelineConfig
from gaze_perception.graph import node_module, node_specs


def every_stage(seeded_checkpoints, **extra) -> dict:
    return {"stages": {
        "faces": "mtcnn", "landmarks": "mediapipe", "eyes": "timm_eye", "gaze": "head_pose",
        "direction": {"backend": "l2cs", "params": {"weights": str(seeded_checkpoints / "l2cs.pt")}},
        "coding": {"backend": "icatcher", "params": {"weights": str(seeded_checkpoints / "coding.pt")}},
        **extra}}


def _load(ref: str):
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name) if name else \
        importlib.import_module(module)


def test_every_row_names_a_real_base_call_node_and_installed_backends():
    dist = importlib.metadata.distribution("gaze_perception")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    for row in stages.STAGES:
        base = _load(row.base)
        assert callable(getattr(base, row.call)), (row.key, row.call)
        assert row.needs <= set(stages.DATA) and row.gives <= set(stages.DATA), row.key
        assert row.result in stages.DATA, row.key
        names = registry.available(row.kind)
        assert names, f"no {row.kind} backend installed"
        for name in names:
            cls = registry.backend_class(row.kind, name)
            assert issubclass(cls, base), (row.kind, name)
            assert (cls.needs | cls.uses | cls.gives) <= set(stages.DATA), (row.kind, name)
        assert {ep.group for ep in dist.entry_points} >= {row.group}
        if row.node:
            node_cls = _load(row.node)
            assert node_cls.KIND == row.kind if hasattr(node_cls, "KIND") and node_cls.KIND \
                else row.kind == "face_detector"
            assert scripts[row.kind] == f"{node_module(row.kind)}:main"
    for name in stages.OTHER_NODES:
        assert scripts[name] == f"{node_module(name)}:main"


def test_each_runner_builds_each_stage(seeded_checkpoints):
    config = PipelineConfig.from_dict(every_stage(seeded_checkpoints))
    pipe = Pipeline(config, device="cpu")
    assert list(pipe.backends) == [row.key for row in stages.STAGES]
    for key, backend in pipe.backends.items():
        assert isinstance(backend, _load(stages.by_key(key).base))
    # the ROS graph: one node per stage with a node of its own, separate or composed
    wanted = [row.kind for row in stages.STAGES if row.node]
    separate = node_specs(config, device="cpu")
    assert [s.executable for s in separate] == wanted
    by_exe = {s.executable: s for s in separate}
    assert json.loads(by_exe["gaze_direction"].parameters["backend_params"]) == \
        {"weights": str(seeded_checkpoints / "l2cs.pt")}
    assert by_exe["gaze_coding"].parameters["backend"] == "icatcher"
    assert by_exe["gaze_target"].parameters["landmark_directions"] is True  # uses eye_directions
    assert "landmark_directions" not in by_exe["eye_state"].parameters
    (composed,) = node_specs(config, device="cpu", compose=True)
    assert [s["executable"] for s in json.loads(composed.arguments[1])] == wanted


def test_the_launch_file_starts_every_stage_node(seeded_checkpoints, tmp_path):
    from test_up import _launch_nodes, _real_launch

    path = tmp_path / "lines.yaml"
    path.write_text(json.dumps(every_stage(seeded_checkpoints)))  # JSON is YAML
    launched = [n.kwargs["executable"] for n in _launch_nodes(_real_launch(),
                                                               {"config": str(path)})]
    assert launched == [row.kind for row in stages.STAGES if row.node]


def test_the_order_follows_needs_and_gives_and_a_missing_need_is_refused():
    contracts = [("b", frozenset({"faces", "x"}), frozenset({"y"})),
                 ("a", frozenset(), frozenset({"faces"})),
                 ("c", frozenset({"faces"}), frozenset({"x"}))]
    assert stages.order(contracts) == ["a", "c", "b"]
    with pytest.raises(ValueError, match="stage 'gaze' needs meshes, which no configured stage "
                                         r"gives \(add: landmarks\)"):
        stages.order([("faces", frozenset(), frozenset({"faces"})),
                      ("gaze", frozenset({"faces", "meshes"}), frozenset({"gaze"}))])
    # the face stage gives head pose only where `head_pose` is on
    on = dict((k, g) for k, _, g in PipelineConfig.from_dict({"stages": {}}).contracts())
    off = dict((k, g) for k, _, g in
               PipelineConfig.from_dict({"stages": {"head_pose": False}}).contracts())
    assert "head_pose" in on["faces"] and "head_pose" not in off["faces"]


@pytest.mark.ros
def test_the_graph_publishes_direction_and_coding_as_run_computes_them(seeded_checkpoints, astronaut):
    from rosgraph import running_graph

    data = {"stages": {k: v for k, v in every_stage(seeded_checkpoints)["stages"].items()
                       if k in ("faces", "direction", "coding")}}
    config = PipelineConfig.from_dict(data)
    (expected,) = Pipeline(config, device="cpu")([astronaut])
    assert expected.faces and expected.directions and expected.coding is not None
    topics = ["faces", "gaze_directions", "gaze_coding"]
    for compose in (False, True):
        specs = node_specs(config, device="cpu", reliability="reliable", threads=1,
                           compose=compose)
        with running_graph(specs, topics, count=1 if compose else 3) as (client, procs):
            key, _ = client.publish(astronaut, stamp_ns=123_000_000)
            got = {t: client.wait(t, key, timeout=120) for t in topics}
            assert all(got.values()), (compose, got, [p.output[-2000:] for p in procs])
        directions, coding = got["gaze_directions"][0], got["gaze_coding"][0]
        assert directions.header.stamp.nanosec == 123_000_000
        assert len(directions.directions) == len(expected.directions)
        for msg, want in zip(directions.directions, expected.directions):
            assert msg.face_index == want.face_index
            assert msg.yaw == pytest.approx(want.yaw, abs=1e-4)
            assert msg.pitch == pytest.approx(want.pitch, abs=1e-4)
            assert (msg.direction.x, msg.direction.y, msg.direction.z) == \
                pytest.approx(want.direction, abs=1e-4)
        assert coding.code == expected.coding.code
        assert coding.raw_code == expected.coding.raw_code
        assert coding.face_index == expected.coding.face_index


STUB_BACKEND = '''
from gaze_perception.backends.base import FaceStageBackend


class StubCounter(FaceStageBackend):
    """Counts each image's faces and open eyes (it needs the eye stage's result)."""

    needs = frozenset({"faces", "eyes"})

    def __init__(self, device="auto"):
        self.device = device

    def estimate(self, images, faces, ctx=None):
        eyes = ctx.get("eyes")
        return [(len(fs), sum(e.state == "open" for e in es)) for fs, es in zip(faces, eyes)]
'''
STUB_NODE = '''
from std_msgs.msg import String

from gaze_perception.nodes.common import OUTPUT_QOS, spin
from gaze_perception.nodes.paired import PairedNode


class StubNode(PairedNode):
    KIND = "stub_counter"
    PARAMS = {"backend": ("count", "stub backend", None)}

    def __init__(self, **kwargs):
        super().__init__("stub_counter", **kwargs)

    def configure(self):
        super().configure()
        self.pub = self.create_output(String, "stub_counts", OUTPUT_QOS)

    def process_pair(self, rgb, faces, image_msg, ctx):
        self.pub.publish(String(data=str(len(faces))))


def main(args=None):
    spin(StubNode, args)
'''


def test_a_stub_stage_is_one_table_entry_one_backend_and_one_node_file(
        tmp_path, monkeypatch, astronaut):
    # one backend (a module and its entry point, as a plugin package installs them)
    (tmp_path / "stub_counter_backend.py").write_text(textwrap.dedent(STUB_BACKEND))
    dist = tmp_path / "stub_counter-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stub-counter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[gaze_perception.stub_counter]\ncount = stub_counter_backend:StubCounter\n")
    # one node file
    (tmp_path / "stub_counter_node.py").write_text(textwrap.dedent(STUB_NODE))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    # one table entry
    row = stages.Stage("counts", "stub_counter", "gaze_perception.backends.base:FaceStageBackend",
                       "counts", "stub_counter_node:StubNode", needs=frozenset({"faces"}),
                       gives=frozenset(), light=stages.ALL)
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, row))

    assert registry.list_backends()["stub_counter"] == ["count"]
    config = PipelineConfig.from_dict({"stages": {"faces": "mtcnn", "eyes": "timm_eye",
                                                  "counts": "count"}})
    (result,) = Pipeline(config, device="cpu")([astronaut])
    assert result.extra["counts"] == (1, 1 if result.eyes[0].state == "open" else 0)
    # needs what no configured stage gives: refused before anything loads, naming the giver
    with pytest.raises(ValueError, match="stage 'counts' needs eyes.*add: eyes"):
        Pipeline(PipelineConfig.from_dict({"stages": {"faces": "mtcnn", "counts": "count"}}))
    specs = node_specs(config, device="cpu")
    assert [s.executable for s in specs] == ["face_detector", "eye_state", "stub_counter"]
    assert specs[-1].command()[:3][1:] == ["-m", "stub_counter_node"]
    assert specs[-1].parameters["threads"] == 1            # a light stage
    from gaze_perception.nodes.composed import build_node
    (composed,) = node_specs(config, device="cpu", compose=True)
    assert [s["executable"] for s in json.loads(composed.arguments[1])][-1] == "stub_counter"
    from gaze_perception.bags.errors import BagError
    from gaze_perception.bags.process import outputs
    with pytest.raises(BagError, match="stage 'counts' has no output topic"):
        outputs(config)                           # bag process refuses what it cannot write
    import rclpy

    from gaze_perception.dds import reserve_domain_id
    rclpy.init(domain_id=reserve_domain_id())
    try:
        node = build_node(specs[-1])
        assert type(node).__name__ == "StubNode" and node.get_name() == "stub_counter"
        assert node.autostart()                   # configured: its backend came from the table
        assert type(node.backend).__name__ == "StubCounter"
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_without_a_face_stage_the_calls_hand_the_faces(astronaut):
    """`run --faces FILE` drops the face stage: the later stages then take the faces each call
    hands the pipeline (head boxes), and the wiring check knows it."""
    from gaze_perception.core.types import Face

    config = PipelineConfig.from_dict({"stages": {"faces": None, "eyes": "timm_eye",
                                                  "gaze": "head_pose"}})
    pipe = Pipeline(config, device="cpu")
    assert list(pipe.backends) == ["eyes", "gaze"]
    (result,) = pipe([astronaut], faces=[[Face(180, 60, 90, 110)]])
    assert len(result.eyes) == len(result.gaze) == 1
    assert result.eyes[0].state == "unknown"   # a head box has no eye landmarks


def test_bag_process_writes_every_stage_as_the_graph_publishes_it(seeded_checkpoints, astronaut,
                                                                  tmp_path):
    from rclpy.serialization import deserialize_message

    from gaze_msgs.msg import GazeCoding, GazeDirectionArray
    from gaze_perception.bags.bagfile import BagReader
    from gaze_perception.cli.main import main
    from test_bags import _image_bag

    src, out, config = tmp_path / "in", tmp_path / "out", tmp_path / "lines.yaml"
    _image_bag(src, astronaut)
    config.write_text(json.dumps(every_stage(seeded_checkpoints)))
    assert main(["bag", "process", str(src), "--config", str(config), "--out", str(out),
                 "--device", "cpu", "--no-progress"]) == 0
    reader = BagReader(out)
    assert {t.name: t.msgtype for t in reader.topics.values()} == {
        "/camera/image_raw": "sensor_msgs/msg/Image",
        **{"/" + row.topic: row.msg for row in stages.STAGES}}
    assert all(reader.topics["/" + row.topic].count == 2 for row in stages.STAGES)
    first = next(iter(reader.messages(["/gaze_directions"])))
    directions = deserialize_message(first.data, GazeDirectionArray)
    assert directions.header.stamp.sec == 7 and len(directions.directions) == 1
    coding = deserialize_message(next(iter(reader.messages(["/gaze_coding"]))).data, GazeCoding)
    assert coding.face_index == 0 and len(coding.probabilities) == 4
