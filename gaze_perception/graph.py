"""Start perception nodes as separate processes (where `ros2 launch` is not available) with
parameters and remappings passed as `--ros-args`. Used by `demo`, the tests and `up`."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional

#: executable name → module with main()
NODE_MODULES = {
    "face_detector": "gaze_perception.nodes.face_detector",
    "eye_state": "gaze_perception.nodes.eye_state",
    "gaze_target": "gaze_perception.nodes.gaze_target",
}


@dataclass
class NodeSpec:
    executable: str
    name: Optional[str] = None
    namespace: str = ""
    parameters: Dict[str, object] = field(default_factory=dict)
    remappings: Dict[str, str] = field(default_factory=dict)

    def command(self) -> List[str]:
        cmd = [sys.executable, "-m", NODE_MODULES[self.executable], "--ros-args"]
        if self.name:
            cmd += ["-r", f"__node:={self.name}"]
        if self.namespace:
            cmd += ["-r", f"__ns:={self.namespace}"]
        for src, dst in self.remappings.items():
            cmd += ["-r", f"{src}:={dst}"]
        for key, value in self.parameters.items():
            cmd += ["-p", f"{key}:={_param_text(value)}"]
        return cmd


#: pipeline stage → node executable
STAGE_NODES = {"faces": "face_detector", "eyes": "eye_state", "gaze": "gaze_target"}


def node_specs(config, image_topic: str = "", namespace: str = "", device: str = "",
               reliability: str = "") -> List[NodeSpec]:
    """The ROS graph of a pipeline config: one node per configured stage. The face node takes
    its backend parameters as ROS parameters; the eye and gaze nodes as a JSON `backend_params`."""
    specs = []
    for stage, executable in STAGE_NODES.items():
        st = getattr(config, stage)
        if st is None:
            continue
        params: Dict[str, object] = {"backend": st.backend}
        if stage == "faces":
            params.update(st.params)
            params["head_pose"] = bool(config.head_pose)
        else:
            params["backend_params"] = json.dumps(st.params)
        if device:
            params["device"] = device
        if reliability:
            params["image_reliability"] = reliability
        remap = {"image": image_topic} if image_topic else {}
        specs.append(NodeSpec(executable, namespace=namespace, parameters=params, remappings=remap))
    return specs


def _param_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    if isinstance(value, str):  # YAML single quotes: a string stays a string ("{}", "1", "")
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def isolated_ros_env(domain_id: Optional[int] = None) -> Dict[str, str]:
    """Environment with its own ROS_DOMAIN_ID and ROS_LOG_DIR so runs do not see each other."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else random.randint(1, 100))
    env.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="gaze_ros_log_"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class NodeProcess:
    """A node in its own process; its output lines are prefixed with the node name."""

    def __init__(self, spec: NodeSpec, env: Dict[str, str], echo: bool = True):
        self.spec = spec
        self.label = spec.name or spec.executable
        self.lines: List[str] = []
        self.proc = subprocess.Popen(spec.command(), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._pump, args=(echo,), daemon=True)
        self._reader.start()

    def _pump(self, echo: bool) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if echo:
                sys.stderr.write(f"[{self.label}] {line}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then SIGKILL after `timeout`; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2.0)
        return self.proc.returncode
