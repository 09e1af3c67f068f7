"""`gaze-perception up`: the graph of a pipeline YAML, one process per node, the same nodes as
the launch file; Ctrl-C stops everything."""
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from gaze_perception.cli.main import _build_parser
from gaze_perception.cli.up import specs_for
from gaze_perception.dds import reserve_domain_id

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "gaze_perception.launch.py"


def _up(args, env):
    """`up` in its own process group, as a shell starts a foreground job."""
    return subprocess.Popen([sys.executable, "-m", "gaze_perception.cli.main", "up", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO, process_group=0)


def _env(tmp_path):
    return dict(os.environ, ROS_DOMAIN_ID=str(reserve_domain_id()),
                ROS_LOG_DIR=str(tmp_path / "ros_log"))


@pytest.mark.ros
def test_up_faces_only_with_a_source_then_sigint(tmp_path, astronaut):
    from gaze_perception.nodes.client import GraphClient

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"a{i}.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    env = _env(tmp_path)
    up = _up(["config/faces_only.yaml", "--source", str(frames), "--rate", "5", "--loop",
              "--device", "cpu"], env)
    client = GraphClient(outputs=["faces"], domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        end = time.monotonic() + 120
        while not client.received["faces"] and time.monotonic() < end and up.poll() is None:
            time.sleep(0.1)
        faces = [m for m, _ in client.received["faces"].values()]
        assert faces and len(faces[0].faces) == 1, "no faces from the graph"
        assert faces[0].header.frame_id == "camera"
    finally:
        client.close()
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = up.communicate(timeout=60)
    assert up.returncode == 0, out
    assert "Traceback" not in out and "RCLError" not in out, out  # a clean stop is quiet
    pids = [int(p) for p in re.findall(r"up: started \w+ \(pid (\d+)\)", out)]
    assert len(pids) == 2, out  # source, face_detector
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "[face_detector]" in out and "[source]" in out  # logs prefixed by node name


@pytest.mark.ros
def test_up_returns_non_zero_when_a_node_dies(tmp_path):
    config = tmp_path / "source_only.yaml"
    config.write_text("stages: {faces: null}\n")
    up = _up([str(config), "--source", str(tmp_path / "missing.mp4")], _env(tmp_path))
    out, _ = up.communicate(timeout=60)
    assert up.returncode == 1, out
    assert "source exited with code" in out and "missing.mp4' does not exist" in out


# -- the launch file resolves the same graph -----------------------------------------------------

class _Recorded:
    """Records the keyword arguments the launch file gives launch_ros.actions.Node (the real
    `ros2 launch` of these files runs in test_ros2_cli.py)."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


def _real_launch():
    """A real `launch.LaunchContext` (launch / launch_ros from a ROS install, or installed from
    ../shared/ros_python by `make test`)."""
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not importable here: `make test` installs it from "
                    "../shared/ros_python, or source a ROS 2 install")
    from launch import LaunchContext
    return LaunchContext()


def _launch_nodes(context, launch_args, launch_file=LAUNCH_FILE):
    spec = importlib.util.spec_from_file_location("gaze_launch", launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # record what the launch file asks for instead of starting it
    getattr(module, "_main", module).Node = _Recorded
    context.launch_configurations.update(launch_args)
    nodes = []
    for entity in module.generate_launch_description().entities:
        nodes += entity.execute(context) or []
    return nodes


CASES = [  # (launch arguments, the same request to `up`)
    ({"config": "classroom"}, ["classroom"]),
    ({"config": "classroom", "image": "/cam/image_raw", "namespace": "room2", "device": "cpu"},
     ["classroom", "--image", "/cam/image_raw", "--namespace", "room2", "--device", "cpu"]),
    ({"config": "faces_only"}, ["faces_only"]),
    ({"config": "classroom", "compose": "true", "threads": "2"},
     ["classroom", "--compose", "--threads", "2"]),
]


@pytest.mark.parametrize("launch_args,up_args", CASES)
def test_launch_file_and_up_resolve_the_same_graph(launch_args, up_args):
    context = _real_launch()
    launched = [(n.kwargs["executable"], n.kwargs["namespace"], n.kwargs["parameters"],
                 dict(n.kwargs["remappings"]), n.kwargs["arguments"])
                for n in _launch_nodes(context, launch_args)]
    ups = [(s.executable, s.namespace, [s.parameters], s.remappings, s.arguments)
           for s in specs_for(_build_parser().parse_args(["up", *up_args]))]
    assert launched == ups
    if "--compose" in up_args:
        assert [n[0] for n in launched] == ["composed"]
        assert "--graph" in launched[0][4]
    elif up_args[0] == "classroom":
        assert [n[0] for n in launched] == ["face_detector", "eye_state", "gaze_target",
                                            "attention"]
        assert all(n[3]["image"] == launch_args.get("image", "/camera/image_raw")
                   for n in launched)


def test_classroom_launch_file_is_the_classroom_graph():
    context = _real_launch()
    launched = [(n.kwargs["executable"], n.kwargs["namespace"], n.kwargs["parameters"],
                 dict(n.kwargs["remappings"]))
                for n in _launch_nodes(context, {}, LAUNCH_FILE.with_name("classroom.launch.py"))]
    ups = [(s.executable, s.namespace, [s.parameters], s.remappings)
           for s in specs_for(_build_parser().parse_args(["up", "classroom"]))]
    assert launched == ups


def test_launch_autostart_false_leaves_every_node_to_a_lifecycle_manager():
    context = _real_launch()
    launched = _launch_nodes(context, {"config": "classroom", "autostart": "false"})
    assert len(launched) == 4
    assert all(n.kwargs["parameters"][0]["autostart"] is False for n in launched)
    default = _launch_nodes(context, {"autostart": "true"})
    assert not any("autostart" in n.kwargs["parameters"][0] for n in default)


def test_up_adds_the_source_node_first_and_it_waits_for_the_stages():
    args = _build_parser().parse_args(["up", "classroom", "--source", "clip.mp4", "--rate", "15",
                                       "--loop"])
    specs = specs_for(args)
    assert specs[0].executable == "source"
    assert specs[0].parameters == {"wait_for_subscribers": 3, "source": "clip.mp4", "rate": 15.0,
                                   "loop": True, "device": "auto"}
    assert specs[0].namespace == "classroom"
    assert specs[0].remappings["image"] == "/camera/image_raw"
    face = specs[1]
    assert face.parameters["tracking"] is True and face.parameters["tracking_max_age"] == 30
