"""The ROS-free pipeline: face detection, head pose, then the optional eye and gaze stages."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .. import registry
from .face_mesh import analyse_faces
from .head_pose import fill_head_pose
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


@dataclass
class PipelineConfig:
    faces: Optional[StageConfig] = field(default_factory=lambda: StageConfig("mtcnn"))
    landmarks: Optional[StageConfig] = None  # dense landmarks (mediapipe): head pose, eye gaze
    eyes: Optional[StageConfig] = None
    gaze: Optional[StageConfig] = None
    direction: Optional[StageConfig] = None  # appearance-based gaze direction (l2cs, itracker)
    coding: Optional[StageConfig] = None     # infant gaze coding (icatcher)
    head_pose: bool = True
    tracking: Optional[TrackerConfig] = None
    graph: GraphConfig = field(default_factory=GraphConfig)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PipelineConfig":
        """Read a pipeline YAML: `stages:` (`faces`, `landmarks`, `eyes`, `gaze`, `direction`,
        `coding`, `head_pose`, `tracking`) and the graph keys; a mapping without `stages:` is
        the stages alone."""
        stages = data.get("stages", data) or {}
        graph = GraphConfig.from_dict(data) if "stages" in data else GraphConfig()
        known = ("faces", "landmarks", "eyes", "gaze", "direction", "coding", "head_pose",
                 "tracking")
        unknown = set(stages) - set(known)
        if unknown:
            raise ValueError(f"unknown pipeline stage(s) {sorted(unknown)}; "
                             f"known: {', '.join(known)}")

        def stage(key, default):
            spec = stages.get(key, default)
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

        return cls(faces=stage("faces", "mtcnn"), landmarks=stage("landmarks", None),
                   eyes=stage("eyes", None),
                   gaze=stage("gaze", None), direction=stage("direction", None),
                   coding=stage("coding", None), head_pose=bool(stages.get("head_pose", True)),
                   tracking=TrackerConfig.from_value(stages.get("tracking")), graph=graph)


class Pipeline:
    """Runs the configured stages over RGB uint8 frames, in batches; with tracking on, calls
    must come in frame order (the tracker keeps state between them)."""

    def __init__(self, config: Optional[PipelineConfig] = None, **overrides):
        self.config = config or PipelineConfig()
        build = lambda kind, st: None if st is None else registry.create(  # noqa: E731
            kind, st.backend, **{**st.params, **overrides})
        self.face_detector = build("face_detector", self.config.faces)
        self.landmarker = build("face_landmarks", self.config.landmarks)
        self.eye_state = build("eye_state", self.config.eyes)
        self.gaze_target = build("gaze_target", self.config.gaze)
        self.gaze_direction = build("gaze_direction", self.config.direction)
        self.gaze_coder = build("gaze_coding", self.config.coding)
        self.tracker = Tracker(self.config.tracking) if self.config.tracking else None

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
            if self.face_detector is None:
                raise ValueError("no face stage configured and no faces given")
            faces = self.face_detector.detect(frames)
        return [list(fs) for fs in faces]

    def _after_faces(self, frames: List[np.ndarray], faces: List[List[Face]],
                     intrinsics: Optional[Sequence[Optional[CameraIntrinsics]]]
                     ) -> List[FrameResult]:
        """Every stage after face detection, on frames whose faces are known."""
        if self.tracker:  # frames arrive in order, batch after batch
            for fs in faces:
                self.tracker.update(fs)
        intr = list(intrinsics) if intrinsics is not None else [None] * len(frames)
        intr = [k or CameraIntrinsics.guess(f.shape[1], f.shape[0]) for k, f in zip(intr, frames)]
        meshes = self.landmarker.estimate(frames, faces) if self.landmarker else None
        eye_gaze = None
        if meshes is not None:  # head pose from the meshes (five points where untrusted)
            eye_gaze = [analyse_faces(fs, ms, k, self.config.head_pose)
                        for fs, ms, k in zip(faces, meshes, intr)]
        elif self.config.head_pose:
            for fs, k in zip(faces, intr):
                for face in fs:
                    fill_head_pose(face, k)
        eyes = self.eye_state.estimate(frames, faces) if self.eye_state else None
        gaze = None
        if self.gaze_target is not None:
            # a gaze backend that aims along given directions gets the eyes' (no second mesh)
            given = getattr(self.gaze_target, "takes_directions", False) and eye_gaze
            gaze = (self.gaze_target.estimate(frames, faces, intr, directions=[
                        [g.direction for g in gs] for gs in eye_gaze]) if given
                    else self.gaze_target.estimate(frames, faces, intr))
        directions = (self.gaze_direction.estimate(frames, faces) if self.gaze_direction
                      else None)
        codes = self.gaze_coder.code(frames, faces) if self.gaze_coder else None
        pick = lambda values, i: None if values is None else values[i]  # noqa: E731
        return [FrameResult(width=f.shape[1], height=f.shape[0], faces=fs, eyes=pick(eyes, i),
                            gaze=pick(gaze, i), directions=pick(directions, i),
                            coding=pick(codes, i), meshes=pick(meshes, i),
                            eye_gaze=pick(eye_gaze, i))
                for i, (f, fs) in enumerate(zip(frames, faces))]
