"""Base for nodes that need the image and the faces computed from it (eye state, gaze target):
both are paired by exact stamp (`inputs.StampJoin`: a window sized in time from the measured
face latency, bounded in count and megabytes, keeping the images a newest-frame face node is
likely working on; duplicate stamps dropped), so no
message_filters is needed. A FaceArray with more than `max_faces` faces or non-finite numbers
is refused and counted, so one message cannot stall the node or poison its outputs.

In a one-process graph (nodes/composed.py) the face node hands each frame to `feed` instead:
the image it decoded and what it published (the FaceArray, the landmarks), so nothing is
paired or sent over DDS and the outputs are the ones the subscribed node would give."""
from __future__ import annotations

import json

from sensor_msgs.msg import Image

from gaze_msgs.msg import FaceArray

from ..core import registry
from ..core.stages import Context, frame_context
from ..messages import msg_to_faces
from .common import OUTPUT_QOS, PerceptionNode, mapping_ok
from .inputs import MAX_FACES, StampJoin, faces_problem
from .params import Range


class PairedNode(PerceptionNode):
    """Subscribes `image` and `faces` (and the `extra_inputs` of a subclass, joined by the same
    stamp); subclasses implement `process_pair(rgb, faces, image_msg, ctx)`, `ctx` the
    frame's `core.stages.Context` (intrinsics, and what `given` makes of the extras)."""

    KIND = ""  # registry kind of the backend

    PAIR_PARAMS = {
        "backend_params": ("{}", "backend parameters as a JSON object, e.g. "
                           "{\"threshold\": 0.5}", mapping_ok),
        "pair_window": (10.0, "longest wait (s) of an image or face array for its partner; the "
                        "window in use is sized from the measured face latency up to this",
                        Range(0.0, 3600.0, above=True)),
        "pair_cache_size": (300, "most images (and most face arrays) kept waiting for their "
                            "partner", Range(1, 1000000)),
        "pair_cache_mb": (512, "most megabytes of images kept waiting for their faces (when "
                          "full, the images a face node is likely working on are kept)",
                          Range(1, 1000000)),
        "max_faces": (MAX_FACES, "a FaceArray with more faces is refused (counted in "
                      "/diagnostics); 0 = no limit", Range(0, 1000000)),
    }
    WORK_QUEUE = 8  # pairs waiting for the model: a burst of face results is answered
    READ_ONLY = PerceptionNode.READ_ONLY + ("backend", "backend_params", "pair_window",
                                            "pair_cache_size", "pair_cache_mb")

    def __init__(self, name: str, **kwargs):
        self.PARAMS = {**self.PAIR_PARAMS, **self.PARAMS}
        super().__init__(name, **kwargs)
        self.backend = None
        self.extras = self.extra_inputs()
        self.pairer = StampJoin(("image", "faces", *self.extras), lambda got: self.submit(
                                    got["image"], got["faces"], None,
                                    {k: got[k] for k in self.extras}),
                                window=self.param("pair_window"),
                                max_pending=self.param("pair_cache_size"),
                                max_bytes=self.param("pair_cache_mb") * 1_000_000,
                                follows={"faces": "image"})  # face nodes take the newest
        self.refused_faces = 0
        self.fed_by = None  # the face node of the same process that feeds this one (composed)

    def configure(self) -> None:
        params = {**json.loads(self.param("backend_params") or "{}"), **self.implied_params()}
        self.backend = registry.create(self.KIND, self.param("backend"),
                                       device=self.param("device"), **params)

    def release(self) -> None:
        self.backend = None
        super().release()

    def open_inputs(self) -> None:
        if self.fed_by is not None:  # composed: image, faces and intrinsics come from `feed`
            return
        super().open_inputs()
        self.create_input(FaceArray, "faces", self._on_faces, OUTPUT_QOS)
        for kind, (msg_type, topic) in self.extras.items():
            self.create_input(msg_type, topic, lambda m, k=kind: self.pairer.add(k, m),
                              OUTPUT_QOS)

    def extra_inputs(self) -> dict:
        """Further inputs of the face node's, joined by stamp: kind -> (type, topic)."""
        return {}

    def _on_image(self, msg: Image) -> None:
        self.pairer.add("image", msg)

    def _faces_ok(self, msg: FaceArray) -> bool:
        problem = faces_problem(msg, self.param("max_faces"))
        if problem:  # refused before any work: bounded time, nothing non-finite downstream
            self.refused_faces += 1
            self.reject(f"faces refused: {problem}")
        return not problem

    def _on_faces(self, msg: FaceArray) -> None:
        if self._faces_ok(msg):
            self.pairer.add("faces", msg)

    def fed_topics(self) -> list:
        """The face node's output topics this node reads (resolved): `faces` and extras."""
        return [self.resolve_topic_name(t) for t in ["faces", *(t for _, t in
                                                               self.extras.values())]]

    def feed(self, image_msg: Image, rgb, intrinsics, published: dict) -> None:
        """One frame from the face node of this process: its image message, the RGB array it
        decoded, its camera intrinsics (None: guessed) and what it published, by resolved
        topic (as a subscriber receives it); processed at once in the caller's thread
        (`run_item`)."""
        faces_msg, *extras = (published[t] for t in self.fed_topics())
        if self.lifecycle_state == "active" and self._faces_ok(faces_msg):
            self.intrinsics = intrinsics
            self.stats["received"] += 1
            self.run_item((image_msg, faces_msg, rgb, dict(zip(self.extras, extras))))

    def process(self, image_msg: Image, faces_msg: FaceArray, rgb=None, extras=None) -> None:
        rgb = self.to_rgb(image_msg) if rgb is None else rgb
        faces = msg_to_faces(faces_msg)
        ctx = frame_context([rgb], [self.intrinsics], faces=[faces],
                            **self.given(faces, extras or {}))
        self.process_pair(rgb, faces, image_msg, ctx)

    def given(self, faces, extras: dict) -> dict:
        """What the extra inputs give the backend (DATA name -> one entry for this frame)."""
        return {}

    def implied_params(self) -> dict:
        """Backend parameters that follow from the node's own parameters."""
        return {}

    def process_pair(self, rgb, faces, image_msg, ctx: Context) -> None:  # pragma: no cover
        raise NotImplementedError

    def diagnostic_values(self):
        values = {"backend": self.param("backend"),
                  "device": str(getattr(self.backend, "device", "")),
                  # face arrays that got no output: no image within the window, cache
                  # full, late, duplicate stamp; and those refused (max_faces, non-finite)
                  "unpaired_dropped": str(self.pairer.unjoined("faces")),
                  "faces_refused": str(self.refused_faces),
                  **self.pairer.diagnostic_values("pair")}
        if getattr(self.backend, "precision", None):  # the resolved one (`auto` → fp32, ...)
            values["precision"] = str(self.backend.precision)
        return values
