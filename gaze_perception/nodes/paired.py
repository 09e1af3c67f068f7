"""Base for nodes that need the image and the faces computed from it (eye state, gaze target):
both are paired by exact stamp in a bounded cache, so no message_filters is needed."""
from __future__ import annotations

import json

from sensor_msgs.msg import Image

from gaze_msgs.msg import FaceArray

from .. import registry
from ..core.types import CameraIntrinsics
from .common import OUTPUT_QOS, PerceptionNode, StampPairer, mapping_ok
from .convert import msg_to_faces


class PairedNode(PerceptionNode):
    """Subscribes `image` and `faces`; subclasses implement `process_pair(rgb, faces, image_msg)`."""

    KIND = ""  # registry kind of the backend

    PAIR_PARAMS = {
        "backend_params": ("{}", "backend parameters as a JSON object, e.g. "
                           "{\"threshold\": 0.5}", mapping_ok),
        "pair_cache_size": (30, "images / face arrays kept while waiting for their partner",
                            lambda v: None if v > 0 else "must be > 0"),
    }
    READ_ONLY = PerceptionNode.READ_ONLY + ("backend", "backend_params", "pair_cache_size")

    def __init__(self, name: str, **kwargs):
        self.PARAMS = {**self.PAIR_PARAMS, **self.PARAMS}
        super().__init__(name, **kwargs)
        self.backend = None
        self.pairer = StampPairer(lambda img, faces: self.submit(img, faces),
                                  self.param("pair_cache_size"))

    def configure(self) -> None:
        params = {**json.loads(self.param("backend_params") or "{}"), **self.implied_params()}
        self.backend = registry.create(self.KIND, self.param("backend"),
                                       device=self.param("device"), **params)

    def release(self) -> None:
        self.backend = None
        super().release()

    def open_inputs(self) -> None:
        super().open_inputs()
        self.create_input(FaceArray, "faces", self.pairer.add_faces, OUTPUT_QOS)

    def _on_image(self, msg: Image) -> None:
        self.pairer.add_image(msg)

    def process(self, image_msg: Image, faces_msg: FaceArray) -> None:
        rgb = self.to_rgb(image_msg)
        self.process_pair(rgb, msg_to_faces(faces_msg), image_msg)

    def implied_params(self) -> dict:
        """Backend parameters that follow from the node's own parameters."""
        return {}

    def intrinsics_for(self, rgb) -> CameraIntrinsics:
        return self.intrinsics or CameraIntrinsics.guess(rgb.shape[1], rgb.shape[0])

    def process_pair(self, rgb, faces, image_msg) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def diagnostic_values(self):
        values = {"backend": self.param("backend"),
                  "device": str(getattr(self.backend, "device", "")),
                  "unpaired_dropped": str(self.pairer.dropped)}
        if getattr(self.backend, "precision", None):  # the resolved one (`auto` → fp32, ...)
            values["precision"] = str(self.backend.precision)
        return values
