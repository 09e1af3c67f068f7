"""Both packages build as a ROS 2 workspace with colcon, and the graph description is sound."""
import os
import subprocess
import sys
from pathlib import Path

from gaze_perception.core.config import load_pipeline_config
from gaze_perception.graph import NodeSpec, node_specs

REPO = Path(__file__).resolve().parents[1]


def test_colcon_builds_both_packages(tmp_path):
    venv = Path(sys.prefix)
    env = dict(os.environ, AMENT_PREFIX_PATH=str(venv), CMAKE_PREFIX_PATH=str(venv),
               PATH=f"{venv}/bin:{os.environ['PATH']}")
    cmd = [str(venv / "bin" / "colcon"), "--log-base", str(tmp_path / "log"), "build",
           "--base-paths", str(REPO), str(REPO / "gaze_msgs"),
           "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
           "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Finished <<< gaze_msgs" in res.stdout and "Finished <<< gaze_perception" in res.stdout
    share = tmp_path / "install" / "gaze_perception" / "share" / "gaze_perception"
    for rel in ("package.xml", "launch/gaze_perception.launch.py", "launch/classroom.launch.py",
                "config/default.yaml",
                "config/fastdds_large_shm.xml",
                "weights/manifest.yaml"):
        assert (share / rel).is_file(), rel
    lib = tmp_path / "install" / "gaze_perception" / "lib" / "gaze_perception"
    assert {"face_detector", "eye_state", "gaze_target"} <= {p.name for p in lib.iterdir()}
    assert (tmp_path / "install" / "gaze_msgs" / "share" / "gaze_msgs" / "msg" / "Face.msg").is_file()


def test_launch_file_compiles():
    compile((REPO / "launch" / "gaze_perception.launch.py").read_text(), "launch", "exec")


def test_node_specs_from_pipeline_yaml():
    specs = node_specs(load_pipeline_config("faces_only"), image_topic="/cam/image_raw",
                       namespace="gaze", device="cpu")
    assert [s.executable for s in specs] == ["face_detector"]
    cmd = specs[0].command()
    assert cmd[cmd.index("--ros-args"):][:5] == ["--ros-args", "-r", "__ns:=/gaze", "-r",
                                                 "image:=/cam/image_raw"]
    assert "thresholds:=[0.6,0.7,0.7]" in " ".join(cmd)
    assert "device:='cpu'" in cmd


def test_string_parameters_stay_strings():
    spec = NodeSpec("eye_state", parameters={"backend_params": '{"a": 1}', "weights_dir": "",
                                             "flag": True, "n": 3})
    args = spec.command()
    assert "backend_params:='{\"a\": 1}'" in args and "weights_dir:=''" in args
    assert "flag:=true" in args and "n:=3" in args
