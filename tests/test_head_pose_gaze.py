"""The geometric `head_pose` gaze backend: rays from head pose, regions, people, frame exits."""
import math

import numpy as np
import pytest

from gaze_perception.backends.head_pose_gaze import (CAMERA_LABEL, IN_FRAME, OUT_OF_FRAME,
                                                      HeadPoseGaze)
from gaze_perception.core.stages import frame_context
from gaze_perception.core.types import CameraIntrinsics, Face

W, H = 640, 480
IMAGE = np.zeros((H, W, 3), np.uint8)
CAM = CameraIntrinsics(600.0, 600.0, W / 2, H / 2)


def face_at(ex, ey, yaw=0.0, pitch=0.0, roll=0.0, size=60, track_id=0):
    """A face whose eyes are centred on (ex, ey)."""
    eyes = [(ex - 0.2 * size, ey), (ex + 0.2 * size, ey)]
    mouth = [(ex - 0.15 * size, ey + 0.4 * size), (ex + 0.15 * size, ey + 0.4 * size)]
    return Face(ex - size / 2, ey - 0.4 * size, size, size,
                landmarks=eyes + [(ex, ey + 0.2 * size)] + mouth,
                yaw=yaw, pitch=pitch, roll=roll, track_id=track_id)


def one(backend, faces, index=0):
    return backend.estimate([IMAGE], [faces], frame_context([IMAGE], [CAM]))[0][index]


def test_frontal_face_looks_at_the_camera():
    target = one(HeadPoseGaze(), [face_at(W / 2, H / 2)])
    assert target.direction == pytest.approx((0.0, 0.0, -1.0), abs=1e-9)
    assert target.label == CAMERA_LABEL and target.inout == OUT_OF_FRAME


def test_face_turned_right_targets_the_region_on_its_right():
    board = [[450, 150], [620, 150], [620, 330], [450, 330]]
    backend = HeadPoseGaze(regions={"board": board, "door": [[0, 0], [100, 0], [100, 400]]})
    target = one(backend, [face_at(200, 240, yaw=math.radians(50))])
    assert target.label == "board" and target.inout == IN_FRAME and target.score == 1.0
    assert 450 <= target.point[0] <= 620 and 150 <= target.point[1] <= 330
    assert target.direction[0] > 0.7


def test_region_within_the_cone_counts_but_not_outside_it():
    backend = HeadPoseGaze(regions={"poster": [[500, 350], [560, 350], [560, 410], [500, 410]]},
                           cone_deg=15)
    # The ray runs along y = 240; seen from the eyes, the poster starts 17 degrees below it.
    assert one(backend, [face_at(200, 240, yaw=math.radians(50))]).label == ""
    wide = HeadPoseGaze(regions=backend.regions, cone_deg=25)
    assert one(wide, [face_at(200, 240, yaw=math.radians(50))]).label == "poster"


def test_looking_at_another_person_labels_them():
    faces = [face_at(150, 240, yaw=math.radians(45)), face_at(480, 250, track_id=7),
             face_at(480, 60)]
    target = one(HeadPoseGaze(), faces)
    assert target.label == "person:7" and target.point == faces[1].center
    # Untracked people are named by their face index.
    faces[1].track_id = 0
    assert one(HeadPoseGaze(), faces).label == "person:1"


def test_nothing_hit_gives_the_frame_exit_with_low_inout():
    target = one(HeadPoseGaze(), [face_at(200, 240, yaw=math.radians(50))])
    assert target.label == "" and target.inout == OUT_OF_FRAME and target.score == 0.0
    assert target.point == pytest.approx((W, 240.0))
    down = one(HeadPoseGaze(), [face_at(W / 2, 200, pitch=math.radians(40))])
    assert down.point[1] == pytest.approx(H) and down.inout == OUT_OF_FRAME
    assert down.direction[1] > 0.6


def test_max_distance_ignores_far_targets():
    board = [[450, 150], [620, 150], [620, 330], [450, 330]]
    near = HeadPoseGaze(regions={"board": board}, max_distance_px=200)
    assert one(near, [face_at(200, 240, yaw=math.radians(50))]).label == ""


def test_unknown_head_pose_points_at_the_face_with_zero_inout():
    face = face_at(300, 200)
    face.yaw = math.nan
    target = one(HeadPoseGaze(), [face])
    assert target.point == face.center and target.inout == 0.0 and target.score == 0.0
    assert target.direction is None


def test_intrinsics_default_to_a_guess_from_the_image_size():
    backend = HeadPoseGaze()
    face = face_at(200, 240, yaw=math.radians(50))
    guessed = backend.estimate([IMAGE], [[face]])[0][0]
    explicit = backend.estimate([IMAGE], [[face]],
                                frame_context([IMAGE], [CameraIntrinsics.guess(W, H)]))[0][0]
    assert guessed.point == explicit.point


def test_bad_regions_are_refused():
    with pytest.raises(ValueError, match="region 'line'"):
        HeadPoseGaze(regions={"line": [[0, 0], [10, 10]]})
