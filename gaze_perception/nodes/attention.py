"""Attention node: `faces` + `eye_states` + `gaze_targets` of the same frame (joined by stamp)
→ `attention` (gaze_msgs/AttentionSummary), per tracked person, at a set rate."""
from __future__ import annotations

import json

from gaze_msgs.msg import AttentionSummary, EyeStateArray, FaceArray, GazeTargetArray
from gaze_msgs.msg import TrackAttention as TrackAttentionMsg

from ..analytics.attention import AttentionAccumulator, frame_observations
from ..core.regions import Regions
from ..messages import msg_to_eyes, msg_to_faces, msg_to_gaze
from .common import OUTPUT_QOS, PerceptionNode, spin
from .inputs import MAX_FACES, StampJoin, message_problem
from .params import Range

#: frames with faces in a row without any track id after which tracking is taken to be off
UNTRACKED_FRAMES = 30


def _regions_ok(text):
    try:
        Regions(json.loads(text or "{}"))
    except (ValueError, TypeError, AttributeError) as exc:
        return f"must be a JSON object {{name: [[x, y], ...]}}: {exc}"
    return None


class AttentionNode(PerceptionNode):
    MODEL_NODE = False  # `threads: 0` = one thread
    PARAMS = {
        "regions": ("{}", "regions of interest as JSON {name: [[x, y], ...]}, image pixels",
                    _regions_ok),
        "window": (60.0, "sliding window of the summary, seconds",
                   Range(0.0, 86400.0, above=True)),
        "rate": (1.0, "summaries published per second", Range(0.0, 1000.0, above=True)),
        "min_inout": (0.5, "a gaze target with a lower in/out probability is out_of_frame",
                      Range(0.0, 1.0)),
        "max_frame_gap": (1.0, "most seconds one frame counts for",
                          Range(0.0, 3600.0, above=True)),
        "with_eye_states": (True, "wait for the eye_states of each frame", None),
        "with_gaze_targets": (True, "wait for the gaze_targets of each frame", None),
        "join_cache_size": (300, "frames kept while waiting for all their inputs",
                            Range(1, 1000000)),
        "join_window": (10.0, "longest wait (s) of a frame for all its inputs; the window in use "
                        "is sized from the measured latency of the slowest input up to this",
                        Range(0.0, 3600.0, above=True)),
        "max_faces": (MAX_FACES, "a frame with more faces is refused (counted in /diagnostics); "
                      "0 = no limit", Range(0, 1000000)),
    }
    READ_ONLY = PerceptionNode.READ_ONLY + tuple(PARAMS)

    def __init__(self, **kwargs):
        super().__init__("attention", **kwargs)

    def configure(self) -> None:
        self.regions = Regions(json.loads(self.param("regions") or "{}"))
        self.acc = AttentionAccumulator(self.param("window"), self.param("max_frame_gap"))
        self.newest_header = None
        inputs = {"faces": FaceArray}
        if self.param("with_eye_states"):
            inputs["eye_states"] = EyeStateArray
        if self.param("with_gaze_targets"):
            inputs["gaze_targets"] = GazeTargetArray
        self.join = StampJoin(inputs, self._on_frame, window=self.param("join_window"),
                              max_pending=self.param("join_cache_size"))
        self.refused = {topic: 0 for topic in inputs}
        self.untracked_faces, self._untracked_run = 0, 0
        self.inputs = inputs
        self.pub = self.create_output(AttentionSummary, "attention", OUTPUT_QOS)
        self.get_logger().info(f"attention node ready: inputs {sorted(inputs)}, regions "
                               f"{list(self.regions.names)}")

    def open_inputs(self) -> None:
        """faces (+ eye_states, gaze_targets) joined by stamp, and the summary timer."""
        for topic, msg_type in self.inputs.items():
            self.create_input(msg_type, topic, lambda m, t=topic: self._on_input(t, m),
                              OUTPUT_QOS)
        self.create_input_timer(1.0 / self.param("rate"), self._publish)

    def _on_input(self, topic: str, msg) -> None:
        self.stats["received"] += 1
        problem = message_problem(topic, msg, self.param("max_faces"))
        if problem:  # refused before the join: the frame's other inputs expire, counted
            self.refused[topic] += 1
            self.reject(f"{topic} refused: {problem}")
            return
        self.join.add(topic, msg)

    def _on_frame(self, got: dict) -> None:
        faces = msg_to_faces(got["faces"])
        self._check_tracking(faces)
        eyes = msg_to_eyes(got["eye_states"]) if "eye_states" in got else None
        gaze = msg_to_gaze(got["gaze_targets"]) if "gaze_targets" in got else None
        obs = frame_observations(faces, eyes, gaze, self.regions, self.param("min_inout"))
        stamp = got["faces"].header.stamp
        self.acc.add_frame(stamp.sec + stamp.nanosec * 1e-9, obs)
        self.newest_header = got["faces"].header
        self.stats["processed"] += 1

    def _check_tracking(self, faces) -> None:
        """Faces without a track id are not counted. With tracking on they are tracks not yet
        confirmed (counted in /diagnostics, no warning); only when UNTRACKED_FRAMES frames with
        faces in a row had no track id at all is tracking taken to be off, and said so at most
        once a minute."""
        untracked = sum(1 for f in faces if not f.track_id)
        self.untracked_faces += untracked
        if not faces:
            return
        if untracked < len(faces):
            self._untracked_run = 0
            return
        self._untracked_run += 1
        if self._untracked_run >= UNTRACKED_FRAMES:
            self.get_logger().warning(
                f"faces without track_id are not counted: {self._untracked_run} frames in a row "
                "had no tracked face; turn `tracking` on in the face node",
                throttle_duration_sec=60.0)

    def _publish(self) -> None:
        if self.newest_header is None:
            return
        out = AttentionSummary(header=self.newest_header, window=self.acc.window,
                               session=self.acc.session_length)
        for t in self.acc.summary():
            targets = sorted(t.session.dwell)
            out.tracks.append(TrackAttentionMsg(
                track_id=t.track_id, target=t.target, targets=targets,
                window_dwell=[t.window.dwell.get(k, 0.0) for k in targets],
                session_dwell=[t.session.dwell[k] for k in targets],
                window_observed=t.window.observed, session_observed=t.session.observed,
                window_eyes_closed=t.window.eyes_closed, session_eyes_closed=t.session.eyes_closed,
                window_eyes_known=t.window.eyes_known, session_eyes_known=t.session.eyes_known))
        self.pub.publish(out)

    def diagnostic_values(self):
        unjoined = sum(self.join.unjoined(k) for k in self.join.kinds)
        return {"tracks": str(len(self.acc.session)), "unjoined_dropped": str(unjoined),
                "untracked_faces": str(self.untracked_faces),
                **{f"refused_{k}": str(n) for k, n in self.refused.items()},
                **self.join.diagnostic_values("join")}


def main(args=None):
    spin(AttentionNode, args)


if __name__ == "__main__":
    main()
