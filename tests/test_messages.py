"""gaze_msgs, built by colcon, imports and round-trips through rclpy serialization."""
import math

import pytest
from geometry_msgs.msg import Point, Vector3
from rclpy.serialization import deserialize_message, serialize_message

from gaze_msgs.msg import (EyeState, EyeStateArray, Face, FaceArray, GazeTarget,
                           GazeTargetArray)


def _face():
    return Face(track_id=7, score=0.9, x=1.5, y=2.5, width=30.0, height=40.0,
                landmarks=[Point(x=float(i), y=float(2 * i), z=0.0) for i in range(5)],
                yaw=0.1, pitch=-0.2, roll=float("nan"))


def _samples():
    fa = FaceArray(image_width=640, image_height=480, faces=[_face(), Face()])
    fa.header.frame_id, fa.header.stamp.sec, fa.header.stamp.nanosec = "cam", 12, 345
    eye = EyeState(track_id=7, face_index=1, left=EyeState.OPEN, right=EyeState.CLOSED,
                   state=EyeState.UNKNOWN, left_closed_prob=0.1, right_closed_prob=0.9,
                   closed_prob=0.5)
    gt = GazeTarget(track_id=3, face_index=0, point=Point(x=10.0, y=20.0), inout=0.8, score=0.7,
                    label="board", direction=Vector3(x=0.0, y=0.6, z=0.8), heatmap_width=2,
                    heatmap_height=2, heatmap=[0.0, 0.25, 0.5, 1.0])
    return [_face(), fa, eye, EyeStateArray(eyes=[eye, EyeState()]), gt,
            GazeTargetArray(targets=[gt])]


def _equal(a, b):
    if isinstance(a, float):  # float32 fields: compare at float32 precision
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6)
    if hasattr(a, "get_fields_and_field_types"):
        return all(_equal(getattr(a, f), getattr(b, f)) for f in a.get_fields_and_field_types())
    if isinstance(a, (list, tuple)) or type(a).__name__ == "array":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("msg", _samples(), ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    data = serialize_message(msg)
    back = deserialize_message(data, type(msg))
    assert _equal(msg, back)


def test_eye_state_constants():
    assert (EyeState.OPEN, EyeState.CLOSED, EyeState.UNKNOWN) == (0, 1, 2)
