"""Start perception nodes as separate processes (where `ros2 launch` is not available) with
parameters and remappings passed as `--ros-args`. Used by `demo`, the tests and `up`."""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .lifetime import PARENT_PID_ENV

#: executable name → module with main()
NODE_MODULES = {
    "source": "gaze_perception.nodes.source",
    "face_detector": "gaze_perception.nodes.face_detector",
    "eye_state": "gaze_perception.nodes.eye_state",
    "gaze_target": "gaze_perception.nodes.gaze_target",
    "attention": "gaze_perception.nodes.attention",
    "gaze_coding": "gaze_perception.nodes.gaze_coding",
    "composed": "gaze_perception.nodes.composed",  # all of a graph's nodes in one process
}
#: parameters of the source and attention nodes whose YAML value may have another type than
#: the declared one (`rate: 10`, `source: 0`), which ROS refuses
FLOAT_PARAMS = {"rate", "window", "min_inout", "max_frame_gap"}
STRING_PARAMS = {"source", "frame_id", "camera_info"}


@dataclass
class NodeSpec:
    executable: str
    name: Optional[str] = None
    namespace: str = ""
    parameters: Dict[str, object] = field(default_factory=dict)
    remappings: Dict[str, str] = field(default_factory=dict)
    arguments: List[str] = field(default_factory=list)  # before --ros-args (composed: --graph)

    def command(self) -> List[str]:
        cmd = [sys.executable, "-m", NODE_MODULES[self.executable], *self.arguments,
               "--ros-args"]
        if self.name:
            cmd += ["-r", f"__node:={self.name}"]
        if self.namespace:  # rcl takes only an absolute namespace here (launch_ros adds the /)
            cmd += ["-r", f"__ns:=/{self.namespace.lstrip('/')}"]
        for src, dst in self.remappings.items():
            cmd += ["-r", f"{src}:={dst}"]
        for key, value in self.parameters.items():
            cmd += ["-p", f"{key}:={_param_text(value)}"]
        return cmd


#: Face-stage parameters the face node declares as ROS parameters (it rebuilds its detector
#: when one changes); with `weights_dir`, the rest of a face stage goes in `backend_params`.
FACE_DETECTOR_PARAMS = ("min_face_size", "thresholds", "max_faces")
FACE_NODE_PARAMS = FACE_DETECTOR_PARAMS + ("weights_dir",)
#: pipeline stage → node executable
STAGE_NODES = {"faces": "face_detector", "eyes": "eye_state", "gaze": "gaze_target"}


def node_specs(config, image_topic: str = "", namespace: str = "", device: str = "",
               reliability: str = "", source: Optional[Dict[str, object]] = None,
               threads: int = 0, compose: Optional[bool] = None,
               autostart: bool = True) -> List[NodeSpec]:
    """The ROS graph of a pipeline config: a `source` node when the config or `source` names
    one, one node per configured stage, and the `attention` node when the config has
    `attention:`. Every node gets the config's namespace and remappings; `namespace` and
    `image_topic` override them, `source` overrides parameters of the config's source. The
    face node takes its backend parameters as ROS parameters; the eye and gaze nodes as a JSON
    `backend_params`. Each stage node gets `threads` torch/OpenCV threads (0 = auto:
    `stage_threads`); source and attention take one. `autostart=False`: the nodes wait for a
    lifecycle manager. `compose` (None: the config's `compose:`) gives the same nodes as one
    process (`composed_spec`)."""
    specs = _separate_specs(config, image_topic, namespace, device, reliability, source, threads)
    if not autostart:
        for s in specs:
            s.parameters["autostart"] = False
    if config.graph.compose if compose is None else compose:
        return [composed_spec(specs, threads)]
    return specs


def composed_spec(specs: List[NodeSpec], threads: int = 0) -> NodeSpec:
    """`specs` as one process (nodes/composed.py): the face node feeds the eye and gaze nodes
    without DDS, so the source waits for one image subscriber, and every node shares the
    process's threads (`threads`, 0 = auto: OMP_NUM_THREADS or every core; torch's thread
    count is per process)."""
    from dataclasses import asdict

    from .core.threads import resolve_threads

    n = resolve_threads(threads, 1)
    has_faces = any(s.executable == "face_detector" for s in specs)
    inner = []
    for s in specs:
        params = {**s.parameters, "threads": n}
        if s.executable == "source":
            params["wait_for_subscribers"] = 1 if has_faces else params["wait_for_subscribers"]
        inner.append(asdict(NodeSpec(s.executable, s.name, s.namespace, params,
                                     dict(s.remappings))))
    return NodeSpec("composed", arguments=["--graph", json.dumps(inner)])


def _separate_specs(config, image_topic, namespace, device, reliability, source,
                    threads) -> List[NodeSpec]:

    graph = config.graph
    ns = namespace or graph.namespace
    remap = dict(graph.remappings)
    if image_topic:
        remap["image"] = image_topic
    common: Dict[str, object] = {}
    if device:
        common["device"] = device
    if reliability:
        common["image_reliability"] = reliability

    def spec(executable, params):
        return NodeSpec(executable, namespace=ns, parameters={**params, **common},
                        remappings=dict(remap))

    shares = stage_threads(config, threads)
    specs = []
    for stage, executable in STAGE_NODES.items():
        st = getattr(config, stage)
        if st is None:
            continue
        params: Dict[str, object] = {"backend": st.backend}
        if stage == "faces":
            node_params = {k: v for k, v in st.params.items() if k in FACE_NODE_PARAMS}
            extra = {k: v for k, v in st.params.items() if k not in FACE_NODE_PARAMS}
            params.update(node_params, backend_params=json.dumps(extra))
            params["head_pose"] = bool(config.head_pose)
            if config.landmarks is not None:  # the face node runs the landmark stage
                params["landmarks"] = config.landmarks.backend
                params["landmarks_params"] = json.dumps(config.landmarks.params)
            if config.tracking:
                params["tracking"] = True
                params.update({f"tracking_{k}": v for k, v in config.tracking.as_dict().items()})
        else:
            params["backend_params"] = json.dumps(st.params)
            if stage == "gaze" and config.landmarks is not None:  # the eyes' directions, once
                params["landmark_directions"] = True
        params["threads"] = shares[stage]
        specs.append(spec(executable, params))
    source_params = {**(graph.source or {}), **(source or {})}
    if source_params:  # first in the list; it waits until the stage nodes listen
        specs.insert(0, spec("source", {"wait_for_subscribers": len(specs),
                                        **_typed(source_params)}))
    if graph.attention is not None:
        specs.append(spec("attention", _attention_params(config)))
    return specs


#: stages whose model runs on crops or is geometry: one thread is plenty (the eye model is a
#: 0.14 M-parameter net on 24x24 crops; head-pose gaze is a ray cast)
LIGHT_STAGES = {"eyes": None, "gaze": {"head_pose"}}  # stage -> light backends (None: all)


def stage_threads(config, threads: int = 0) -> Dict[str, int]:
    """Threads of each configured stage's node: `threads` for all when it is > 0 (or
    OMP_NUM_THREADS is set); else the machine's cores divided among the heavy stages (the face
    detector and whole-frame gaze models such as gazelle) and one for each light stage.
    Dividing the cores evenly starved the face node, the graph's bottleneck: on 2 cores the
    classroom graph did fewer frames per second with 1/1/1 threads than with 2/2/2."""
    from .core.threads import env_threads, resolve_threads

    stages = {s: getattr(config, s) for s in STAGE_NODES if getattr(config, s) is not None}
    light = {s for s, st in stages.items() if s in LIGHT_STAGES
             and (LIGHT_STAGES[s] is None or st.backend in LIGHT_STAGES[s])}
    if threads or env_threads():
        return {s: resolve_threads(threads, len(stages)) for s in stages}
    heavy = max(1, len(stages) - len(light))
    return {s: 1 if s in light else resolve_threads(0, heavy) for s in stages}


def _attention_params(config) -> Dict[str, object]:
    from .analytics.regions import Regions

    params = dict(config.graph.attention)
    regions = params.pop("regions", None) or {}
    Regions(regions)  # a bad polygon fails here, before any node starts
    params["regions"] = json.dumps(regions)
    params["with_eye_states"] = config.eyes is not None
    params["with_gaze_targets"] = config.gaze is not None
    return _typed(params)


def _typed(params: Dict[str, object]) -> Dict[str, object]:
    return {k: float(v) if k in FLOAT_PARAMS else str(v) if k in STRING_PARAMS else v
            for k, v in params.items()}


def _param_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    if isinstance(value, str):  # YAML single quotes: a string stays a string ("{}", "1", "")
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def node_env(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for node processes: unbuffered output, and Fast DDS with a shared-memory
    segment large enough for camera images (config/fastdds_large_shm.xml) unless the user
    chose a profile; without it, best-effort images between processes are mostly lost."""
    from .core.config import config_dir

    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in env and "FASTRTPS_DEFAULT_PROFILES_FILE" not in env:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(config_dir() / "fastdds_large_shm.xml")
    return env


def remove_stale_shm(directory: str = "/dev/shm") -> int:
    """Remove the Fast DDS shared-memory files of processes that died without cleaning up (a
    SIGKILL, a crash): each segment `fastdds_X` comes with a lock file `fastdds_X_el` that its
    users hold (flock) while alive; where an exclusive lock can be taken nobody uses it, and the
    segment, its lock file and its semaphore go (what `fastdds shm clean` does). Hundreds of
    such files made later participants lose large best-effort images (tests that drive `ros2
    lifecycle` stopped getting faces). Returns how many segments were removed."""
    import fcntl

    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    removed = 0
    for name in names:
        if not (name.startswith("fastdds_") and name.endswith("_el")):
            continue
        lock_path = os.path.join(directory, name)
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue                       # in use
        segment = name[:-len("_el")]
        for stale in (segment, f"sem.{segment}_mutex", name):
            try:
                os.unlink(os.path.join(directory, stale))
            except OSError:
                pass
        os.close(fd)
        removed += 1
    return removed


#: ROS domain ids safe on Linux (ports below the ephemeral range); 0 is everyone's default
FREE_DOMAIN_IDS = tuple(range(1, 102)) + tuple(range(215, 233))
#: one lock file per domain id: a run holds the lock of each domain it uses
DOMAIN_LOCK_DIR = Path(tempfile.gettempdir()) / "gaze_perception_ros_domains"
_held_domains: Dict[int, object] = {}  # domain id -> open lock file of this process


def reserve_domain_id() -> int:
    """A ROS domain id no other process on this machine holds, chosen by the OS's random source
    (unaffected by `random.seed`) and held by an exclusive lock file until `release_domain_ids`
    or the end of this process (the OS drops the lock of a dead process), so two concurrent
    runs (two test sessions, a test session and a demo) never share a domain."""
    import fcntl

    DOMAIN_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    candidates = [d for d in FREE_DOMAIN_IDS if d not in _held_domains]
    random.SystemRandom().shuffle(candidates)
    for domain in candidates:
        lock = open(DOMAIN_LOCK_DIR / f"{domain}.lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held_domains[domain] = lock
        return domain
    raise RuntimeError(f"every ROS domain id in {DOMAIN_LOCK_DIR} is held by another process")


def release_domain_ids() -> None:
    """Give back every domain id this process reserved (the tests do after each test)."""
    while _held_domains:
        _held_domains.popitem()[1].close()


def isolated_ros_env(domain_id: Optional[int] = None) -> Dict[str, str]:
    """`node_env` with its own ROS_DOMAIN_ID (`reserve_domain_id` unless given) and ROS_LOG_DIR
    so runs do not see each other."""
    env = node_env()
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else reserve_domain_id())
    env.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="gaze_ros_log_"))
    return env


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_signals():
    """Within the block SIGTERM and SIGHUP (the terminal closed) raise KeyboardInterrupt as
    Ctrl-C does, so the caller's clean-up stops its nodes; the old handlers come back after."""
    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, _interrupt) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class NodeProcess:
    """A node in its own process; its output lines are prefixed with the node name."""

    def __init__(self, spec: NodeSpec, env: Dict[str, str], echo: bool = True):
        self.spec = spec
        self.label = spec.name or spec.executable
        self.lines: List[str] = []
        # Own process group: a terminal's Ctrl-C reaches only the parent, which stops each node
        # with one SIGINT (a second one, arriving mid-shutdown, would kill it uncleanly).
        # The node asks the kernel to stop it when this process dies, however (lifetime.py).
        env = {**env, PARENT_PID_ENV: str(os.getpid())}
        self.proc = subprocess.Popen(spec.command(), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     process_group=0)
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

    def wait_for_output(self, *texts: str, timeout: float = 10.0) -> bool:
        """Whether the output shows all `texts` within `timeout` (a thread reads it, so a line
        the node has written may not be here yet)."""
        end = time.monotonic() + timeout
        while not all(t in self.output for t in texts) and time.monotonic() < end:
            time.sleep(0.05)
        return all(t in self.output for t in texts)

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
