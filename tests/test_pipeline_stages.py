"""The other model lines as pipeline stages: gaze direction and infant gaze coding in `run`."""
import json

import pytest

from gaze_perception.cli.main import main


def test_run_fills_direction_and_coding(seeded_checkpoints, astronaut, tmp_path):
    import cv2
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    config = tmp_path / "lines.yaml"
    config.write_text(
        "stages:\n"
        "  faces: mtcnn\n"
        f"  direction: {{backend: l2cs, params: {{weights: {seeded_checkpoints / 'l2cs.pt'}}}}}\n"
        f"  coding: {{backend: icatcher, params: {{weights: {seeded_checkpoints / 'coding.pt'}}}}}\n")
    out = tmp_path / "out.jsonl"
    assert main(["run", str(image), "--config", str(config), "--jsonl", str(out),
                 "--device", "cpu"]) == 0
    row = json.loads(out.read_text())
    direction = row["faces"][0]["direction"]
    assert set(direction) == {"yaw", "pitch", "vector", "point_cm"}
    assert abs(sum(v * v for v in direction["vector"]) - 1.0) < 1e-3
    assert direction["point_cm"] is None
    coding = row["coding"]
    assert coding["face_index"] == 0 and coding["code"] in ("away", "left", "right")
    assert set(coding["probs"]) == {"away", "left", "right", "no_face"}
    assert abs(sum(coding["probs"].values()) - 1.0) < 1e-3


def test_stages_not_configured_leave_the_schema_as_it_was(astronaut, tmp_path):
    import cv2
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.jsonl"
    assert main(["run", str(image), "--config", "faces_only", "--jsonl", str(out)]) == 0
    row = json.loads(out.read_text())
    assert "coding" not in row and "direction" not in row["faces"][0]


def test_gaze_target_from_a_direction_backend(seeded_checkpoints, astronaut):
    """The head_pose gaze backend casts its ray along an appearance-based direction when one is
    configured: the target's direction is then that backend's, not the head pose's."""
    from gaze_perception import create
    from gaze_perception.core.pipeline import Pipeline, PipelineConfig, StageConfig

    direction = create("gaze_direction", "l2cs", weights=str(seeded_checkpoints / "l2cs.pt"),
                       device="cpu")
    config = PipelineConfig(gaze=StageConfig("head_pose", {
        "direction_backend": "l2cs", "direction_params": {"weights": str(seeded_checkpoints / "l2cs.pt")}}))
    result = Pipeline(config, device="cpu")([astronaut])[0]
    (expected,) = direction.estimate([astronaut], [result.faces])[0]
    (target,) = result.gaze
    assert target.direction == pytest.approx(expected.direction, abs=1e-5)
    head = Pipeline(PipelineConfig(gaze=StageConfig("head_pose")), device="cpu")([astronaut])[0]
    assert head.gaze[0].direction != pytest.approx(target.direction, abs=1e-3)


def test_stream_gives_what_batch_by_batch_calls_give():
    """`Pipeline.stream` (faces of the next batch detected in a second thread) returns, in
    order, the results of calling the pipeline on each batch, tracking included."""
    from gaze_perception.core.config import load_pipeline_config
    from gaze_perception.core.pipeline import Pipeline
    from gaze_perception.samples import demo_sequence

    frames = [rgb for _, rgb in demo_sequence(5)]
    config = load_pipeline_config("classroom")  # tracking, landmarks, eyes, gaze
    calls = Pipeline(config, device="cpu")
    want = [calls([f])[0].to_json() for f in frames]
    streamed = Pipeline(config, device="cpu")
    got = list(streamed.stream(([f], None, i) for i, f in enumerate(frames)))
    assert [tag for tag, _ in got] == list(range(len(frames)))
    assert [r[0].to_json() for _, r in got] == want
    assert sum(len(w["faces"]) for w in want) >= 10 and any(
        f["track_id"] for w in want for f in w["faces"])
