"""Running the core Pipeline offline over a bag's image topic, as fast as the backends go.

The output bag holds, per input image, the faces / eye states / gaze targets of the configured
stages with the image's header, logged at the image's log time. Nothing depends on the wall
clock, so the same input and settings give the same output bag.
"""
from __future__ import annotations

import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from tqdm import tqdm

from ..core.image import ImageError
from ..core.pipeline import Pipeline
from ..core.sources import batched
from ..core.types import CameraIntrinsics
from ..core import stages as stage_table
from ..messages import compressed_to_rgb, image_to_rgb, stage_msg
from . import STORAGE_NAMES
from .bagfile import BagReader, BagWriter
from .errors import BagError, TopicNotFoundError
from .typesys import canonical_cdr, message_class

log = logging.getLogger(__name__)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"


def outputs(config) -> dict:
    """Output topic and type of each configured stage: the topics the ROS graph publishes (the
    stage table's `topic` and `msg`); a stage the table gives neither is refused."""
    out = {}
    for s in stage_table.STAGES:
        if config.stage(s.key) is None:
            continue
        if not (s.topic and s.msg):
            raise BagError(f"stage '{s.key}' has no output topic and message type in the stage "
                           "table (core/stages.py): bag process cannot write it")
        out[s.key] = ("/" + s.topic, s.msg)
    return out


@dataclass
class ProcessSummary:
    out: Path
    images: int = 0  # image messages the bag holds on the topic
    frames: int = 0  # ... of which processed
    faces: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason → frames not processed
    problems: List[str] = field(default_factory=list)  # parts of the bag that were not readable


@dataclass
class _Frame:
    timestamp: int  # log time of the image
    data: bytes
    header: object
    rgb: Optional[np.ndarray]
    intrinsics: Optional[CameraIntrinsics]
    problem: str = ""


def choose_image_topic(reader: BagReader, topic: Optional[str] = None) -> str:
    """`topic` if it holds images, else the bag's only image topic."""
    images = reader.topics_of_type(IMAGE, COMPRESSED_IMAGE)
    if topic is not None:
        if topic not in images:
            raise TopicNotFoundError(f"'{topic}' is not an image topic of '{reader.path}' "
                                     f"(image topics: {images or 'none'})")
        return topic
    if not images:
        raise TopicNotFoundError(f"bag '{reader.path}' has no {IMAGE} or {COMPRESSED_IMAGE} "
                                 f"topic (its topics: {', '.join(reader.topics) or 'none'})")
    if len(images) > 1:
        raise TopicNotFoundError(f"bag '{reader.path}' has {len(images)} image topics "
                                 f"({', '.join(images)}); choose one with --image-topic")
    return images[0]


def process_bag(bag, out, pipeline: Pipeline, image_topic: Optional[str] = None,
                storage: str = STORAGE_NAMES[0], batch: int = 1, heatmaps: bool = False,
                copy_images: bool = True, progress: bool = True) -> ProcessSummary:
    """Write `out`: the pipeline's outputs for every image of `bag` (and the images). `bag`: a
    path, or a BagReader already open on it."""
    reader = bag if isinstance(bag, BagReader) else BagReader(bag)
    topic = choose_image_topic(reader, image_topic)
    infos = reader.topics_of_type(CAMERA_INFO)
    stages = outputs(pipeline.config)
    summary = ProcessSummary(Path(out), images=reader.count([topic]), problems=reader.problems)
    with BagWriter(out, storage) as writer, tqdm(
            total=reader.count([topic]), unit="frame", desc=reader.path.name, file=sys.stderr,
            disable=not progress) as bar:
        if copy_images:
            writer.add_topic(topic, reader.topics[topic].msgtype, reader.topics[topic].qos)
        for topic_out, msgtype in stages.values():
            writer.add_topic(topic_out, msgtype)
        frames = _frames(reader, topic, infos[0] if len(infos) == 1 else None)
        for chunk in batched(frames, max(1, batch)):
            ok = [f for f in chunk if f.rgb is not None]
            results = iter(pipeline([f.rgb for f in ok], intrinsics=[f.intrinsics for f in ok])
                           if ok else [])
            for frame in chunk:
                if copy_images:
                    writer.write(topic, frame.timestamp, frame.data)
                if frame.rgb is None:
                    summary.skipped[frame.problem] += 1
                    continue
                result = next(results)
                for stage, (topic_out, msgtype) in stages.items():
                    data = serialize_message(stage_msg(stage, result, frame.header, heatmaps))
                    writer.write(topic_out, frame.timestamp, canonical_cdr(data, msgtype))
                summary.frames += 1
                summary.faces += len(result.faces)
            bar.update(len(chunk))
    for problem, count in summary.skipped.items():
        log.warning("%d frame(s) of %s not processed: %s", count, topic, problem)
    return summary


def _frames(reader: BagReader, topic: str, info_topic: Optional[str]) -> Iterator[_Frame]:
    """Decoded images of `topic` with the intrinsics of the latest CameraInfo before each; a
    message that does not decode comes without an image and with the reason."""
    msgtype = reader.topics[topic].msgtype
    image_class = message_class(msgtype)
    info_class = message_class(CAMERA_INFO)
    intrinsics = None
    for msg in reader.messages([topic] + ([info_topic] if info_topic else [])):
        if msg.topic == info_topic:
            info = reader.deserialize(msg, info_class)  # None: the previous intrinsics stay
            if info is not None:
                intrinsics = CameraIntrinsics.from_k(info.k) if info.k[0] > 0 else None
            continue
        try:
            image = deserialize_message(msg.data, image_class)
        except Exception as exc:  # noqa: BLE001 - as above
            yield _Frame(msg.timestamp, msg.data, None, None, intrinsics,
                         f"the message does not deserialize as {msgtype} ({exc})")
            continue
        try:
            rgb, problem = _decode(msgtype, image), ""
        except ImageError as exc:
            rgb, problem = None, str(exc)
        yield _Frame(msg.timestamp, msg.data, image.header, rgb, intrinsics, problem)


def _decode(msgtype: str, image) -> np.ndarray:
    return image_to_rgb(image) if msgtype == IMAGE else compressed_to_rgb(image)

