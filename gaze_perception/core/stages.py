"""The stage table: every pipeline stage once, with all of its names and its contract.

One row per stage: its key in a pipeline YAML (`stages:`), its registry kind (which is also the
entry-point group `gaze_perception.<kind>` and the node executable), the backend base class
and its call, the `FrameResult` field it fills, the node that runs it in a ROS graph, whether
it is light enough for one thread, and what it needs and gives. `PipelineConfig`, `Pipeline`,
`registry`, `graph`, `nodes/composed`, the launch file and `setup.py` read it; a new stage is
a row here, a backend and a node file.

What a stage needs and gives are names of the data a frame accumulates (`DATA`). A backend
class may narrow them (`Backend.needs` / `gives` / `uses`): the pipeline orders its stages
and checks the wiring from them before any model loads, and hands each backend a `Context`
with what the stages before it gave.

No imports from the rest of the package (setup.py loads this file alone); ROS-free, torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

#: what a frame accumulates, by name: always there (`image`, `intrinsics`), then what stages give
DATA = {
    "image": "the RGB uint8 frame",
    "intrinsics": "the camera intrinsics (guessed from the image size where unknown)",
    "faces": "face boxes (and track ids with tracking)",
    "landmarks": "five landmarks per face: the eyes, the nose tip, the mouth corners",
    "head_pose": "yaw/pitch/roll of each face (five points or the dense mesh)",
    "meshes": "dense landmarks and irises per face (core.face_mesh.FaceMesh)",
    "eye_directions": "the eyes' 3D gaze direction per face from the mesh (or None)",
    "eyes": "eye states per face",
    "gaze": "gaze targets per face",
    "directions": "appearance-based gaze directions per face",
    "coding": "the infant's looking code per frame",
}
ALWAYS = frozenset({"image", "intrinsics"})
#: light: every backend of the stage needs one thread at most
ALL = frozenset({"*"})


@dataclass(frozen=True)
class Stage:
    key: str                        # pipeline YAML key, e.g. "eyes"
    kind: str                       # registry kind = entry-point group suffix = node executable
    base: str                       # "module:Class" of the backend base class
    result: str                     # FrameResult field (and `DATA` name) the stage fills
    node: Optional[str]             # "module:Class" of its node; None: inside the face node
    needs: FrozenSet[str]
    gives: FrozenSet[str]
    light: FrozenSet[str] = frozenset()   # backends light enough for one thread (ALL: every one)
    default: Optional[str] = None   # backend when the YAML leaves the key out
    call: str = "estimate"          # the base class's batched call
    topic: Optional[str] = None     # the output topic its node publishes (relative)
    msg: Optional[str] = None       # ... and its message type
    #: the group's earlier name (DESIGN.md section 5), still read for plugins registered there
    old_group: Optional[str] = None

    @property
    def group(self) -> str:
        """The entry-point group its backends register in."""
        return f"gaze_perception.{self.kind}"

    @property
    def groups(self) -> Tuple[str, ...]:
        """Every group its backends are looked up in: `group`, then `old_group`."""
        return (self.group,) + ((self.old_group,) if self.old_group else ())

    def is_light(self, backend: str) -> bool:
        return self.light == ALL or backend in self.light


_B = "gaze_perception.backends.base:"
_N = "gaze_perception.nodes."
STAGES: Tuple[Stage, ...] = (
    Stage("faces", "face_detector", _B + "FaceDetector", "faces",
          _N + "face_detector:FaceDetectorNode", needs=frozenset(),
          gives=frozenset({"faces", "head_pose"}), default="mtcnn", call="detect",
          old_group="gaze_perception.face_detectors", topic="faces",
          msg="gaze_msgs/msg/FaceArray"),
    Stage("landmarks", "face_landmarks", _B + "FaceLandmarker", "meshes", None,
          needs=frozenset({"faces"}), gives=frozenset({"meshes", "eye_directions", "head_pose"}),
          topic="faces/landmarks", msg="gaze_msgs/msg/FaceLandmarksArray"),
    # the eye model is a 0.14 M-parameter net on 24x24 crops; head-pose gaze is a ray cast
    Stage("eyes", "eye_state", _B + "EyeStateEstimator", "eyes",
          _N + "eye_state:EyeStateNode", needs=frozenset({"faces"}),
          gives=frozenset({"eyes"}), light=ALL, topic="eye_states",
          msg="gaze_msgs/msg/EyeStateArray"),
    Stage("gaze", "gaze_target", _B + "GazeTargetEstimator", "gaze",
          _N + "gaze_target:GazeTargetNode", needs=frozenset({"faces"}),
          gives=frozenset({"gaze"}), light=frozenset({"head_pose"}),
          old_group="gaze_perception.gaze_targets", topic="gaze_targets",
          msg="gaze_msgs/msg/GazeTargetArray"),
    Stage("direction", "gaze_direction", _B + "GazeDirectionEstimator", "directions",
          _N + "gaze_direction:GazeDirectionNode", needs=frozenset({"faces"}),
          gives=frozenset({"directions"}), topic="gaze_directions",
          msg="gaze_msgs/msg/GazeDirectionArray"),
    Stage("coding", "gaze_coding", _B + "GazeCoder", "coding",
          _N + "gaze_coding:GazeCodingNode", needs=frozenset({"faces"}),
          gives=frozenset({"coding"}), topic="gaze_coding", msg="gaze_msgs/msg/GazeCoding"),
)


#: the nodes around the stages' own: executable -> "module[:Class]"
OTHER_NODES = {
    "source": _N + "source:SourceNode",
    "attention": _N + "attention:AttentionNode",
    "composed": _N + "composed",   # all of a graph's nodes in one process (no class of its own)
}


def nodes() -> Dict[str, str]:
    """Every node executable -> "module:Class" (the module has main()): each stage's node
    (named by its kind) and those around them. Read from the table at each call, as every
    lookup here is, so a row added at run time (a test's stub stage) is seen everywhere."""
    return {**{s.kind: s.node for s in STAGES if s.node}, **OTHER_NODES}


def by_key(key: str) -> Stage:
    for stage in STAGES:
        if stage.key == key:
            return stage
    raise KeyError(f"unknown stage '{key}'; known: {', '.join(s.key for s in STAGES)}")


def by_kind(kind: str) -> Stage:
    for stage in STAGES:
        if stage.kind == kind:
            return stage
    raise KeyError(f"unknown stage kind '{kind}'; known: {', '.join(s.kind for s in STAGES)}")


def order(contracts: Sequence[Tuple[str, FrozenSet[str], FrozenSet[str]]],
          available: FrozenSet[str] = ALWAYS) -> List[str]:
    """The configured stages `(key, needs, gives)` in an order where each one's needs are given
    before it (table order among the ready ones), `available` there from the start; a need no
    stage gives is a ValueError that names the stage, the need and the stages that could give
    it."""
    pending, have, out = list(contracts), set(available), []
    while pending:
        ready = [c for c in pending if c[1] <= have]
        if not ready:
            key, needs, _ = pending[0]
            missing = sorted(needs - have - {g for _, _, gs in pending for g in gs})
            if not missing:
                raise ValueError(f"the stages {[c[0] for c in pending]} need each other")
            givers = [s.key for s in STAGES if set(missing) & s.gives]
            raise ValueError(f"stage '{key}' needs {', '.join(missing)}, which no configured "
                             f"stage gives" + (f" (add: {', '.join(givers)})" if givers else ""))
        out.append(ready[0][0])
        have |= ready[0][2]
        pending.remove(ready[0])
    return out


@dataclass
class Context:
    """What a backend's call gets besides the images and faces: per image the camera
    intrinsics (guessed where unknown) and what the stages before it gave (`given`: DATA name ->
    one entry per image)."""

    intrinsics: List[Any]
    given: Dict[str, List[Any]] = field(default_factory=dict)

    def get(self, name: str) -> Optional[List[Any]]:
        return self.given.get(name)


def frame_context(images: Sequence[Any], intrinsics: Optional[Sequence[Any]] = None,
                  **given: List[Any]) -> Context:
    """The Context of a batch: each image's intrinsics, `CameraIntrinsics.guess` where None
    (the one place the guessed-intrinsics fallback lives)."""
    from .types import CameraIntrinsics

    given_k = list(intrinsics) if intrinsics is not None else [None] * len(images)
    if len(given_k) != len(images):
        raise ValueError(f"{len(images)} images but {len(given_k)} intrinsics")
    return Context([k or CameraIntrinsics.guess(im.shape[1], im.shape[0])
                    for k, im in zip(given_k, images)], dict(given))


def context_of(images: Sequence[Any], ctx: Optional[Context]) -> Context:
    """`ctx`, or the Context of `images` alone where the caller gave none."""
    return ctx if ctx is not None else frame_context(images)
