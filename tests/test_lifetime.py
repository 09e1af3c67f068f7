"""Process lifetime and isolation over real DDS: nodes end with `up` however it ends, a source
that cannot give frames stops the graph, concurrent runs never share a ROS domain."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import cv2
import pytest

from gaze_perception.dds import isolated_ros_env, reserve_domain_id

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]
#: the smallest real graph: a source and the geometric gaze-target node (no model to load)
GRAPH = "stages: {faces: null, eyes: null, gaze: {backend: head_pose}}\n"


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's parent may be slow to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


class Up:
    """`gaze-perception up` in its own process group (as a shell runs a foreground job),
    its output read by a thread."""

    def __init__(self, args, tmp_path):
        env = dict(os.environ, ROS_DOMAIN_ID=str(reserve_domain_id()),
                   ROS_LOG_DIR=str(tmp_path / "ros_log"), OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "gaze_perception.cli.main", "up",
                                      *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                     process_group=0)
        self.lines = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout),
                                        daemon=True)
        self._reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, *texts, timeout=60.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            if all(t in self.output for t in texts):
                return True
            time.sleep(0.05)
        return all(t in self.output for t in texts)

    def node_pids(self):
        import re
        return [int(p) for p in re.findall(r"up: started \w+ \(pid (\d+)\)", self.output)]

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)
        for pid in self.node_pids():  # never leave a node behind, even when a test fails
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def frames(tmp_path, astronaut):
    folder = tmp_path / "frames"
    folder.mkdir()
    small = cv2.resize(astronaut, (128, 128))
    for i in range(2):
        cv2.imwrite(str(folder / f"f{i}.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return folder


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL], ids=["SIGHUP", "SIGKILL"])
def test_nodes_end_with_up_however_it_ends(sig, tmp_path, frames):
    config = tmp_path / "graph.yaml"
    config.write_text(GRAPH)
    up = Up([str(config), "--source", str(frames), "--rate", "5", "--loop", "--device", "cpu"],
            tmp_path)
    try:
        assert up.wait_for("gaze-target node ready", "source ready"), up.output
        pids = up.node_pids()
        assert len(pids) == 2 and all(_running(p) for p in pids), up.output
        up.proc.send_signal(sig)  # SIGHUP: the terminal closed; SIGKILL: nothing runs in `up`
        end = time.monotonic() + 5.0
        while time.monotonic() < end and any(_running(p) for p in pids):
            time.sleep(0.05)
        assert not any(_running(p) for p in pids), f"nodes outlived `up`:\n{up.output}"
        up.proc.wait(10)
        if sig == signal.SIGHUP:  # handled as a stop: clean, no traceback
            up._reader.join(5)
            assert up.proc.returncode == 0, up.output
            assert "up: stopping" in up.output and "Traceback" not in up.output
    finally:
        up.close()


@pytest.mark.parametrize("kind", ["corrupt video", "folder of damaged images"])
def test_a_source_without_frames_stops_the_graph_with_the_reason(kind, tmp_path):
    if kind == "corrupt video":
        bad, reason = tmp_path / "corrupt.mp4", "has no readable frame"
        bad.write_bytes(os.urandom(4096))
    else:  # opens, then every file fails to decode: found while playing, not at start
        bad, reason = tmp_path / "photos", "gave no frame: a.png: the file is empty"
        bad.mkdir()
        for name in ("a.png", "b.png"):
            (bad / name).write_bytes(b"")
    config = tmp_path / "graph.yaml"
    config.write_text(GRAPH)
    up = Up([str(config), "--source", str(bad), "--device", "cpu"], tmp_path)
    try:
        up.proc.wait(60)
        up._reader.join(5)
        assert up.proc.returncode == 1, up.output
        assert reason in up.output and str(bad.name) in up.output, up.output
        assert "source exited with code 1" in up.output and "Traceback" not in up.output
    finally:
        up.close()


# -- two runs at once on one machine never share a ROS domain -----------------------------------

RUN = textwrap.dedent("""
    import json, random, sys, time
    from pathlib import Path
    random.seed(0)  # as the test fixture seeds every test: the domain must not follow it
    import rclpy
    from gaze_perception.dds import isolated_ros_env
    from gaze_perception.graph import NodeSpec
    from gaze_perception.processes import NodeProcess
    tag, frames, ready, other = sys.argv[1:5]
    env = isolated_ros_env()
    node = NodeProcess(NodeSpec("source", name=f"run_{tag}", parameters={
        "source": frames, "rate": 2.0, "loop": True}), env, echo=False)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    probe = rclpy.create_node(f"probe_{tag}", context=ctx)
    seen, end = set(), time.monotonic() + 60
    def look():
        seen.update(probe.get_node_names())
    while f"run_{tag}" not in seen and time.monotonic() < end and node.alive():
        look(); time.sleep(0.1)
    Path(ready).write_text("up")
    while not Path(other).exists() and time.monotonic() < end:  # both graphs up at once
        look(); time.sleep(0.1)
    stop = time.monotonic() + 2.0  # discovery has seconds to show a shared domain
    while time.monotonic() < stop:
        look(); time.sleep(0.1)
    node.stop()
    probe.destroy_node(); rclpy.shutdown(context=ctx)
    print(json.dumps({"domain": env["ROS_DOMAIN_ID"], "seen": sorted(seen)}))
""")


def test_two_concurrent_runs_never_see_each_others_nodes(tmp_path, frames):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    flags = {tag: tmp_path / f"{tag}.ready" for tag in "ab"}
    runs = {tag: subprocess.Popen([sys.executable, str(script), tag, str(frames),
                                   str(flags[tag]), str(flags["b" if tag == "a" else "a"])],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"))
            for tag in "ab"}
    results = {}
    for tag, proc in runs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results[tag] = json.loads(out.strip().splitlines()[-1])
    a, b = results["a"], results["b"]
    assert a["domain"] != b["domain"]
    assert "run_a" in a["seen"] and "run_b" in b["seen"], results
    assert "run_b" not in a["seen"] and "probe_b" not in a["seen"], results
    assert "run_a" not in b["seen"] and "probe_a" not in b["seen"], results


def test_domain_ids_ignore_the_seeded_random_module_and_are_held():
    import random

    from gaze_perception.dds import DOMAIN_LOCK_DIR, release_domain_ids

    random.seed(0)
    first = reserve_domain_id()
    random.seed(0)
    second = reserve_domain_id()
    assert first != second  # the first is held by this process until released
    probe = subprocess.run([sys.executable, "-c", "import fcntl, sys\n"
                            f"f = open({str(DOMAIN_LOCK_DIR / f'{first}.lock')!r}, 'a')\n"
                            "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                            "except OSError:\n    sys.exit(3)\n"], timeout=30)
    assert probe.returncode == 3  # another process cannot take it
    release_domain_ids()
    probe = subprocess.run([sys.executable, "-c", "import fcntl\n"
                            f"f = open({str(DOMAIN_LOCK_DIR / f'{first}.lock')!r}, 'a')\n"
                            "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"], timeout=30)
    assert probe.returncode == 0  # released


def test_a_node_stopped_while_it_starts_exits_quietly():
    """Ctrl-C reaching a node before it spins (its graph stopped while it still loaded, as `up`
    does when the source fails at once) ends it with status 0 and no traceback."""
    code = ("from gaze_perception.nodes.common import spin_nodes\n"
            "def make():\n    raise KeyboardInterrupt\n"
            "spin_nodes(make)\n")
    res = subprocess.run([sys.executable, "-c", code], env=isolated_ros_env(), text=True,
                         capture_output=True, timeout=120)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
