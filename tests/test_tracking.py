"""Tracking on synthetic moving boxes: crossings, an occlusion gap, noisy detections."""
import numpy as np
import pytest

from gaze_perception.core.pipeline import Pipeline, PipelineConfig
from gaze_perception.core.tracking import Tracker, TrackerConfig
from gaze_perception.core.types import Face

FRAMES = 120
GAP = range(40, 50)  # person C is occluded for 10 frames while it moves
#: id switches allowed over the whole scene (4 people, two crossings, one 10-frame gap, 3% missed
#: detections, 2 px noise); measured: 0 for seeds 0-4
MAX_ID_SWITCHES = 1


def _scene(seed=0):
    """Per frame: [(person, Face)], positions from straight-line motion plus detector noise."""
    rng = np.random.default_rng(seed)
    people = {  # start centre, velocity px/frame, size
        "A": ((60, 200), (4.0, 0.0), 60), "B": ((540, 215), (-4.0, 0.0), 56),
        "C": ((150, 360), (3.0, -0.5), 50), "D": ((330, 60), (0.0, 3.2), 54),
    }
    frames = []
    for t in range(FRAMES):
        dets = []
        for name, ((x, y), (vx, vy), s) in people.items():
            if (name == "C" and t in GAP) or rng.random() < 0.03:
                continue
            cx, cy = x + vx * t + rng.normal(0, 2), y + vy * t + rng.normal(0, 2)
            w, h = s + rng.normal(0, 2), s * 1.2 + rng.normal(0, 2)
            dets.append((name, Face(cx - w / 2, cy - h / 2, w, h)))
        rng.shuffle(dets)
        frames.append(dets)
    return frames


def _id_switches(frames, tracker):
    """Times a person's (non-zero) id differs from the one they had before, plus ids shared
    by two people in the same frame."""
    last, switches = {}, 0
    for dets in frames:
        tracker.update([f for _, f in dets])
        ids = [f.track_id for _, f in dets if f.track_id]
        switches += len(ids) - len(set(ids))
        for name, face in dets:
            if face.track_id and last.get(name, face.track_id) != face.track_id:
                switches += 1
            last[name] = face.track_id or last.get(name)
    return switches, last


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ids_survive_crossings_and_a_ten_frame_gap(seed):
    switches, last = _id_switches(_scene(seed), Tracker(TrackerConfig(max_age=15)))
    assert switches <= MAX_ID_SWITCHES
    assert sorted(last.values()) == [1, 2, 3, 4]  # four people, four ids, none wasted


def test_without_a_motion_model_the_same_scene_breaks_ids():
    """The scene is hard enough to matter: a tracker that forgets a track at once loses C."""
    switches, _ = _id_switches(_scene(), Tracker(TrackerConfig(max_age=0)))
    assert switches > MAX_ID_SWITCHES


def test_new_tracks_get_ids_after_min_hits():
    tracker = Tracker(TrackerConfig(min_hits=3))
    first = [Face(10, 10, 40, 40)]
    tracker.update(first)
    assert first[0].track_id == 1  # warm-up: the first frames are reported at once
    for _ in range(5):
        tracker.update([Face(10, 10, 40, 40)])
    newcomer = [Face(10, 10, 40, 40), Face(300, 300, 40, 40)]
    ids = []
    for _ in range(3):
        faces = [Face(f.x, f.y, f.width, f.height) for f in newcomer]
        tracker.update(faces)
        ids.append(faces[1].track_id)
    assert ids == [0, 0, 2]


def test_a_track_dies_after_max_age():
    tracker = Tracker(TrackerConfig(max_age=2, min_hits=1))
    tracker.update([Face(10, 10, 40, 40)])
    for _ in range(3):
        tracker.update([])
    again = [Face(10, 10, 40, 40)]
    tracker.update(again)
    assert again[0].track_id == 2


@pytest.mark.parametrize("value,expected", [
    (True, TrackerConfig()), (False, None), ({"max_age": 5}, TrackerConfig(max_age=5))])
def test_tracking_in_pipeline_config(value, expected):
    config = PipelineConfig.from_dict({"stages": {"faces": "mtcnn", "tracking": value}})
    assert config.tracking == expected


def test_bad_tracking_settings_are_refused():
    with pytest.raises(ValueError, match="max_age"):
        TrackerConfig.from_value({"max_agee": 5})
    with pytest.raises(ValueError, match="min_hits"):
        TrackerConfig(min_hits=0)


def test_pipeline_fills_track_ids_across_calls():
    """`gaze-perception run` output gets track ids when the config turns tracking on."""

    pipeline = Pipeline(PipelineConfig(faces=None, head_pose=False, tracking=TrackerConfig()))
    frame = np.zeros((240, 320, 3), np.uint8)
    ids = []
    for t in range(4):  # two people walking towards each other, one call per frame
        faces = [Face(20 + 10 * t, 50, 40, 40), Face(260 - 10 * t, 60, 40, 40)]
        (result,) = pipeline([frame], faces=[faces[::-1] if t % 2 else faces])
        ids.append(sorted((f.x, f.track_id) for f in result.faces))
    assert all([i for _, i in row] == [1, 2] for row in ids)
