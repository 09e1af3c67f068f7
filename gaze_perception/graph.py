"""The graph specification of a pipeline: which nodes (one per stage of the stage table with a
node, the source and attention nodes around them), with which parameters, remappings and
threads, as `NodeSpec`s: separate processes or one (`composed_spec`). `up`, `demo`, the launch
file and the tests read it; `processes.py` starts the specs, `dds.py` isolates their domain."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .core import stages


def node_module(executable: str) -> str:
    """The module with main() of a node executable (the stage table's `nodes()`)."""
    return stages.nodes()[executable].split(":")[0]


def stage_nodes() -> Dict[str, str]:
    """Pipeline stage → node executable, for each stage with a node of its own (the landmark
    stage runs in the face node)."""
    return {s.key: s.kind for s in stages.STAGES if s.node}


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
        cmd = [sys.executable, "-m", node_module(self.executable), *self.arguments,
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
    for stage, executable in stage_nodes().items():
        st = config.stage(stage)
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
            if config.landmarks is not None and "eye_directions" in _backend_uses(stage, st):
                params["landmark_directions"] = True  # the eyes' directions, computed once
        params["threads"] = shares[stage]
        specs.append(spec(executable, params))
    source_params = {**(graph.source or {}), **(source or {})}
    if source_params:  # first in the list; it waits until the stage nodes listen
        specs.insert(0, spec("source", {"wait_for_subscribers": len(specs),
                                        **_typed(source_params)}))
    if graph.attention is not None:
        specs.append(spec("attention", _attention_params(config)))
    return specs


def _backend_uses(stage: str, st) -> frozenset:
    from .core import registry

    return registry.backend_class(stages.by_key(stage).kind, st.backend).uses


def stage_threads(config, threads: int = 0) -> Dict[str, int]:
    """Threads of each configured stage's node: `threads` for all when it is > 0 (or
    OMP_NUM_THREADS is set); else the machine's cores divided among the heavy stages (the face
    detector and whole-frame gaze models such as gazelle) and one for each light stage.
    Dividing the cores evenly starved the face node, the graph's bottleneck: on 2 cores the
    classroom graph did fewer frames per second with 1/1/1 threads than with 2/2/2."""
    from .core.threads import env_threads, resolve_threads

    configured = {s: config.stage(s) for s in stage_nodes() if config.stage(s) is not None}
    light = {s for s, st in configured.items() if stages.by_key(s).is_light(st.backend)}
    if threads or env_threads():
        return {s: resolve_threads(threads, len(configured)) for s in configured}
    heavy = max(1, len(configured) - len(light))
    return {s: 1 if s in light else resolve_threads(0, heavy) for s in configured}


def _attention_params(config) -> Dict[str, object]:
    from .core.regions import Regions

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
