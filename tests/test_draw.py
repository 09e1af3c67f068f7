"""Annotated frames people can read (core/draw.py): on crowded frames from 640x480 to 4K with up
to 40 faces no two labels overlap, none covers the legend or leaves the frame, and each label
is short (id, eye state, target)."""
import numpy as np
import pytest

from gaze_perception.core.draw import annotate, face_label, plan
from gaze_perception.core.types import CLOSED, OPEN, UNKNOWN, EyeState, Face, FrameResult, GazeTarget


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def crowded(width, height, n, seed):
    """n faces of 20-200 px (a crowd: many touch or overlap) with eye states and targets."""
    rng = np.random.default_rng(seed)
    faces, eyes, gaze = [], [], []
    for i in range(n):
        s = float(rng.uniform(20, min(200, height / 3)))
        x, y = rng.uniform(0, width - s), rng.uniform(0, height - s)
        faces.append(Face(x, y, s, s * 1.2, score=0.99, track_id=int(rng.integers(1, 400)),
                          landmarks=[(x + .3 * s, y + .4 * s), (x + .7 * s, y + .4 * s),
                                     (x + .5 * s, y + .6 * s), (x + .35 * s, y + .8 * s),
                                     (x + .65 * s, y + .8 * s)]))
        state = [OPEN, CLOSED, UNKNOWN][i % 3]
        eyes.append(EyeState(i, state, state, state, 0.5, 0.5, 0.5))
        label = ["", "camera", f"person:{int(rng.integers(1, 400))}", "board"][i % 4]
        gaze.append(GazeTarget(i, (float(rng.uniform(0, width)), float(rng.uniform(0, height))),
                               inout=0.9, score=0.5, label=label))
    return FrameResult(width, height, faces, eyes=eyes, gaze=gaze)


@pytest.mark.parametrize("width,height,n", [(640, 480, 1), (640, 480, 12), (1280, 720, 25),
                                            (1920, 1080, 40), (3840, 2160, 40)])
def test_no_two_labels_overlap_on_crowded_frames(width, height, n):
    for seed in range(3):
        result = crowded(width, height, n, seed)
        p = plan(result, width, height)
        assert len(p.labels) == n and p.legend is not None
        boxes = [label.box for label in p.labels]
        for i, a in enumerate(boxes):
            assert 0 <= a[0] < a[2] <= width and 0 <= a[1] < a[3] <= height, a
            assert not _overlap(a, p.legend), (a, p.legend)
            clash = [b for b in boxes[i + 1:] if _overlap(a, b)]
            assert not clash, (width, height, n, seed, a, clash)
        image = annotate(np.zeros((height, width, 3), np.uint8), result)
        assert image.shape == (height, width, 3) and image.any()


def test_labels_are_short_and_scale_with_the_frame():
    assert face_label(3, 17, OPEN, "person:4") == "17 open >person:4"
    assert face_label(3, 0, UNKNOWN, "") == "#3 ?"
    assert face_label(0, 5, None, None) == "5"
    small, large = (plan(crowded(w, h, 5, 0), w, h) for w, h in ((640, 480), (3840, 2160)))
    height = lambda p: max(lb.box[3] - lb.box[1] for lb in p.labels)  # noqa: E731
    assert 3 <= height(large) / height(small) <= 6   # 4K text is readable, not 640x480's
