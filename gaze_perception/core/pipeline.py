"""The ROS-free pipeline: the face stage, then the stages of the stage table that a config names."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import registry, stages
from .face_stage import FaceStage
from .image import check_rgb
from .tracking import Tracker, TrackerConfig
from .types import CameraIntrinsics, Face, FrameResult


@dataclass
class StageConfig:
    backend: str
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphConfig:
    """What a ROS graph adds around the stages (the YAML's top-level keys besides `stages`):
    the namespace and remappings of every node, the optional `source` and `attention`
    nodes with their parameters, and `compose` (all nodes in one process). The pipeline
    itself ignores it."""

    namespace: str = ""
    remappings: Dict[str, str] = field(default_factory=dict)
    source: Optional[Dict[str, Any]] = None
    attention: Optional[Dict[str, Any]] = None
    compose: bool = False  # one process for every node (nodes/composed.py)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "GraphConfig":
        unknown = set(data) - {"stages", "namespace", "remappings", "source", "attention",
                               "compose"}
        if unknown:
            raise ValueError(f"unknown pipeline key(s) {sorted(unknown)}; known: stages, "
                             "namespace, remappings, source, attention, compose")
        if not isinstance(data.get("compose", False), bool):
            raise ValueError("'compose' must be true or false")
        for key in ("remappings", "source", "attention"):
            if not isinstance(data.get(key) or {}, dict):
                raise ValueError(f"'{key}' must be a mapping")
        return cls(namespace=str(data.get("namespace") or ""),
                   remappings={str(k): str(v) for k, v in (data.get("remappings") or {}).items()},
                   source=data.get("source"), attention=data.get("attention"),
                   compose=bool(data.get("compose", False)))


#: the stage results FrameResult has a field for (a plugin stage's go into `FrameResult.extra`)
_RESULT_FIELDS = frozenset(f.name for f in fields(FrameResult))


class PipelineConfig:
    """The stages of a pipeline YAML: one `StageConfig` (or None: off) per row of the stage
    table (`core/stages.py`), by its key (`config.eyes`, `config.stage("eyes")`; a row's
    `default` backend where none is given), and the face stage's `head_pose` and `tracking`."""

    def __init__(self, head_pose: bool = True, tracking: Optional[TrackerConfig] = None,
                 graph: Optional[GraphConfig] = None, **stage_configs: Optional[StageConfig]):
        keys = [st.key for st in stages.STAGES]
        unknown = set(stage_configs) - set(keys)
        if unknown:
            raise TypeError(f"unknown pipeline stage(s) {sorted(unknown)}; known: "
                            f"{', '.join(keys)}")
        self.__dict__["stages"] = {
            st.key: stage_configs[st.key] if st.key in stage_configs
            else (StageConfig(st.default) if st.default else None) for st in stages.STAGES}
        self.head_pose, self.tracking = head_pose, tracking
        self.graph = graph if graph is not None else GraphConfig()

    def __getattr__(self, name: str):
        configured = self.__dict__.get("stages", {})
        if name in configured:
            return configured[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or stage '{name}'")

    def __setattr__(self, name: str, value) -> None:
        if name in self.__dict__.get("stages", {}):
            self.__dict__["stages"][name] = value
        else:
            super().__setattr__(name, value)

    def __eq__(self, other) -> bool:
        return isinstance(other, PipelineConfig) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return (f"PipelineConfig({self.stages}, head_pose={self.head_pose}, "
                f"tracking={self.tracking}, graph={self.graph})")

    def stage(self, key: str) -> Optional[StageConfig]:
        """The configuration of the stage table's row `key` (None: off)."""
        return self.stages[stages.by_key(key).key]

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PipelineConfig":
        """Read a pipeline YAML: `stages:` (a key per row of the stage table, `head_pose`,
        `tracking`) and the graph keys; a mapping without `stages:` is the stages alone."""
        given = data.get("stages", data) or {}
        graph = GraphConfig.from_dict(data) if "stages" in data else GraphConfig()
        known = (*(st.key for st in stages.STAGES), "head_pose", "tracking")
        unknown = set(given) - set(known)
        if unknown:
            raise ValueError(f"unknown pipeline stage(s) {sorted(unknown)}; "
                             f"known: {', '.join(known)}")

        def stage(key, default):
            spec = given.get(key, default)
            if spec is None or spec is False:
                return None
            if isinstance(spec, str):
                return StageConfig(spec)
            if not isinstance(spec, dict) or not isinstance(spec.get("backend"), str) \
                    or not isinstance(spec.get("params") or {}, dict) \
                    or set(spec) - {"backend", "params"}:
                raise ValueError(f"stage '{key}' must be a backend name or a mapping "
                                 "{backend: NAME, params: {...}}, got " + repr(spec)[:200])
            return StageConfig(spec["backend"], dict(spec.get("params") or {}))

        return cls(**{st.key: stage(st.key, st.default) for st in stages.STAGES},
                   head_pose=bool(given.get("head_pose", True)),
                   tracking=TrackerConfig.from_value(given.get("tracking")), graph=graph)

    def contracts(self) -> List[Tuple[str, frozenset, frozenset]]:
        """`(key, needs, gives)` of each configured stage: the table's row joined with what
        its backend class declares (loaded, not built; an unknown name fails here)."""
        out = []
        for row in stages.STAGES:
            st = self.stages[row.key]
            if st is None:
                continue
            cls = registry.backend_class(row.kind, st.backend)
            gives = set(row.gives | cls.gives)
            if row.key == "faces" and not self.head_pose:
                gives.discard("head_pose")
            out.append((row.key, frozenset(row.needs | cls.needs), frozenset(gives)))
        return out


class Pipeline:
    """Runs the configured stages over RGB uint8 frames, in batches; with tracking on, calls
    must come in frame order (the tracker keeps state between them). The face stage
    (`core.face_stage.FaceStage`) comes first; every other stage is called in the order their
    needs and gives allow (`core.stages.order`), each with a `Context` of what came before."""

    def __init__(self, config: Optional[PipelineConfig] = None, **overrides):
        self.config = config or PipelineConfig()
        contracts = {c[0]: c for c in self.config.contracts()}
        # without a face stage every call hands the pipeline its faces (e.g. head boxes)
        have = set(stages.ALWAYS) | (set() if self.config.faces else {"faces"})
        keys = stages.order(list(contracts.values()), frozenset(have))  # before any model loads
        self.backends = {}
        for key in keys:
            st = self.config.stage(key)
            self.backends[key] = registry.create(stages.by_key(key).kind, st.backend,
                                                 **{**st.params, **overrides})
            self.backends[key].prepare(frozenset(have))
            have |= contracts[key][2]
        self.face_stage = FaceStage(
            self.backends.get("faces"), self.backends.get("landmarks"),
            Tracker(self.config.tracking) if self.config.tracking else None,
            self.config.head_pose)
        self.later = [k for k in keys if k not in ("faces", "landmarks")]

    def __call__(self, frames: Sequence[np.ndarray],
                 faces: Optional[Sequence[List[Face]]] = None,
                 intrinsics: Optional[Sequence[Optional[CameraIntrinsics]]] = None,
                 ) -> List[FrameResult]:
        """Process a batch. `faces` (per frame) replaces the detector, e.g. given head boxes."""
        frames = [check_rgb(f) for f in frames]
        return self._after_faces(frames, self._faces(frames, faces), intrinsics)

    def stream(self, items: Iterable[Tuple[Sequence[np.ndarray],
                                           Optional[Sequence[List[Face]]], Any]]
               ) -> Iterator[Tuple[Any, List[FrameResult]]]:
        """`(tag, results)` for each `(frames, faces or None, tag)` of `items`, in order: the
        same results as calling the pipeline on each batch, but the face detector works on the
        next batch (in a second thread) while the other stages work on this one, so a video
        runs at the pace of its slowest stage rather than of all stages together (both release
        the GIL; a two-core machine then keeps both cores busy)."""
        it = iter(items)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="faces") as pool:
            def start(item):
                frames = [check_rgb(f) for f in item[0]]
                return frames, item, pool.submit(self._faces, frames, item[1])

            pending = next((start(item) for item in it), None)
            while pending is not None:
                frames, item, detection = pending
                faces = detection.result()
                pending = next((start(nxt) for nxt in it), None)
                yield item[2], self._after_faces(frames, faces, None)

    def _faces(self, frames: List[np.ndarray],
               faces: Optional[Sequence[List[Face]]]) -> List[List[Face]]:
        if faces is None:
            return self.face_stage.detect(frames)
        return [list(fs) for fs in faces]

    def _after_faces(self, frames: List[np.ndarray], faces: List[List[Face]],
                     intrinsics: Optional[Sequence[Optional[CameraIntrinsics]]]
                     ) -> List[FrameResult]:
        """Every stage after face detection, on frames whose faces are known."""
        ctx = stages.frame_context(frames, intrinsics, faces=faces)
        meshes, eye_gaze = self.face_stage.finish(frames, faces, ctx)
        results: Dict[str, Any] = {"meshes": meshes}
        if eye_gaze is not None:
            ctx.given.update(meshes=meshes, eye_directions=[[g.direction for g in gs]
                                                            for gs in eye_gaze])
        for key in self.later:
            stage = stages.by_key(key)
            results[stage.result] = getattr(self.backends[key], stage.call)(frames, faces, ctx)
            ctx.given[stage.result] = results[stage.result]
        pick = lambda values, i: None if values is None else values[i]  # noqa: E731
        return [FrameResult(width=f.shape[1], height=f.shape[0], faces=fs,
                            eye_gaze=pick(eye_gaze, i),
                            **{name: pick(values, i) for name, values in results.items()
                               if name in _RESULT_FIELDS},
                            extra={name: values[i] for name, values in results.items()
                                   if name not in _RESULT_FIELDS})
                for i, (f, fs) in enumerate(zip(frames, faces))]
