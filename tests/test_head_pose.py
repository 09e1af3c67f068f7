"""Head pose from five landmarks: angles and the sign conventions promised by the docstring."""
import math

import cv2
import numpy as np
import pytest

from gaze_perception.core.head_pose import FACE_MODEL_3D, estimate_head_pose, fill_head_pose
from gaze_perception.core.types import CameraIntrinsics, Face

CAM = CameraIntrinsics.guess(640, 480)
K = np.array([[CAM.fx, 0, CAM.cx], [0, CAM.fy, CAM.cy], [0, 0, 1]], dtype=np.float64)
LEFT_EYE, RIGHT_EYE, NOSE = 0, 1, 2


def _project(axis: int, angle: float) -> np.ndarray:
    """The model face 600 mm in front of the camera, turned `angle` about camera axis `axis`."""
    rvec = np.zeros(3)
    rvec[axis] = angle
    pts, _ = cv2.projectPoints(FACE_MODEL_3D, rvec, np.array([0.0, 0.0, 600.0]), K, None)
    return pts.reshape(-1, 2)


def _eye_mid(pts):
    return (pts[LEFT_EYE] + pts[RIGHT_EYE]) / 2


# (camera axis, rotation angle, expected (yaw, pitch, roll), what the image must show).
# The image checks pin down what each rotation looks like, so the expected signs follow from
# the docstring's words, not from the rotation algebra under test.
CASES = [
    (1, -0.3, (0.3, 0, 0), lambda p: p[NOSE, 0] > _eye_mid(p)[0] + 5),   # turned image-right
    (1, 0.3, (-0.3, 0, 0), lambda p: p[NOSE, 0] < _eye_mid(p)[0] - 5),   # turned image-left
    (0, 0.3, (0, 0.3, 0), lambda p: p[NOSE, 1] - _eye_mid(p)[1] > 38),   # looks down: nose drops
    (0, -0.3, (0, -0.3, 0), lambda p: p[NOSE, 1] - _eye_mid(p)[1] < 28),  # looks up
    (2, 0.3, (0, 0, 0.3), lambda p: p[RIGHT_EYE, 1] > p[LEFT_EYE, 1] + 10),  # clockwise
    (2, -0.3, (0, 0, -0.3), lambda p: p[RIGHT_EYE, 1] < p[LEFT_EYE, 1] - 10),  # anticlockwise
]


@pytest.mark.parametrize("axis, angle, expected, looks_right", CASES)
def test_single_axis_rotations(axis, angle, expected, looks_right):
    pts = _project(axis, angle)
    assert looks_right(pts), pts
    pose = estimate_head_pose(pts, CAM)
    assert pose is not None
    np.testing.assert_allclose(pose, expected, atol=0.02)


def test_frontal_is_zero():
    frontal = _project(0, 0.0)
    # the eyes-to-nose drop of a frontal face, which the pitch cases compare against
    assert 28 < frontal[NOSE, 1] - _eye_mid(frontal)[1] < 38
    np.testing.assert_allclose(estimate_head_pose(frontal, CAM), (0, 0, 0), atol=0.02)


@pytest.mark.parametrize("bad", [np.zeros((4, 2)), np.full((5, 2), np.nan)])
def test_unusable_landmarks_give_none(bad):
    assert estimate_head_pose(bad, CAM) is None


@pytest.fixture(scope="module")
def astronaut_pose(astronaut):
    from gaze_perception.backends.mtcnn import MTCNNDetector

    face = MTCNNDetector(device="cpu").detect([astronaut])[0][0]
    h, w = astronaut.shape[:2]
    return fill_head_pose(face, CameraIntrinsics.guess(w, h)).head_pose


def test_frontal_astronaut_yaw_roll(astronaut_pose):
    yaw, _, roll = astronaut_pose
    assert abs(yaw) < 0.5 and abs(roll) < 0.5, astronaut_pose


#: the standard 5-point alignment template (ArcFace, 112x112): a frontal face by definition
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_frontal_template_at_the_image_centre_is_near_zero(scale):
    pts = (ARCFACE_TEMPLATE - 56.0) * scale + np.array([320.0, 240.0])
    pose = estimate_head_pose(pts, CameraIntrinsics.guess(640, 480))
    assert np.all(np.abs(pose) < np.radians(5)), np.degrees(pose)


def test_fill_head_pose_without_landmarks_keeps_nan():
    face = fill_head_pose(Face(0, 0, 10, 10), CAM)
    assert face.head_pose is None and math.isnan(face.yaw)
