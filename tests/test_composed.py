"""The one-process graph (`compose: true`, nodes/composed.py): the same nodes as the separate
processes in one, the face node handing images and faces to the eye and gaze nodes directly.
On the same frames it publishes the same messages (same stamps, same content) as the graph of
separate processes."""
import json
import math

import pytest

from gaze_perception.core.config import load_pipeline_config
from gaze_perception.core.pipeline import PipelineConfig
from gaze_perception.graph import node_specs
from rosgraph import running_graph

TOPICS = ["faces", "faces/landmarks", "eye_states", "gaze_targets"]


def _inner(spec):
    assert spec.executable == "composed" and spec.arguments[0] == "--graph"
    return json.loads(spec.arguments[1])


def test_compose_gives_one_process_with_the_same_nodes():
    config = load_pipeline_config("classroom")
    separate = node_specs(config, device="cpu", source={"source": "x.mp4"})
    (composed,) = node_specs(config, device="cpu", source={"source": "x.mp4"}, compose=True,
                             threads=3)
    inner = _inner(composed)
    assert [s["executable"] for s in inner] == [s.executable for s in separate]
    for s, c in zip(separate, inner):
        assert c["namespace"] == s.namespace and c["remappings"] == s.remappings
        assert {k: v for k, v in c["parameters"].items()
                if k not in ("threads", "wait_for_subscribers")} == \
            {k: v for k, v in s.parameters.items() if k not in ("threads", "wait_for_subscribers")}
        assert c["parameters"]["threads"] == 3  # one budget: torch's threads are per process
    # the face node feeds the others: the source waits for one image subscriber
    assert inner[0]["parameters"]["wait_for_subscribers"] == 1
    assert separate[0].parameters["wait_for_subscribers"] == 3
    # the YAML's `compose:` is the default, the argument overrides it; autostart goes inside
    data = {"stages": {"faces": "mtcnn"}, "compose": True}
    assert node_specs(PipelineConfig.from_dict(data))[0].executable == "composed"
    assert node_specs(PipelineConfig.from_dict(data), compose=False)[0].executable == \
        "face_detector"
    (managed,) = node_specs(PipelineConfig.from_dict(data), autostart=False)
    assert _inner(managed)[0]["parameters"]["autostart"] is False
    with pytest.raises(ValueError, match="'compose' must be true or false"):
        PipelineConfig.from_dict({"stages": {}, "compose": "yes"})


def _collect(specs, frames, listeners):
    out = {t: [] for t in TOPICS}
    with running_graph(specs, TOPICS, count=listeners) as (client, procs):
        for i, rgb in enumerate(frames):
            key, _ = client.publish(rgb, stamp_ns=(i + 1) * 100_000_000 + 7)
            for t in TOPICS:
                got = client.wait(t, key, timeout=120)
                assert got is not None, (t, i, [p.output[-2000:] for p in procs])
                out[t].append(got[0])
        names = set(client.node.get_node_names())
    return out, names


def _differences(a, b, path="msg"):
    """Fields where two messages differ: floats by more than 1e-5 (NaN equals NaN), anything
    else at all."""
    if hasattr(a, "get_fields_and_field_types"):
        if type(a) is not type(b):
            return [f"{path}: {type(a).__name__} != {type(b).__name__}"]
        return [d for name in a.get_fields_and_field_types()
                for d in _differences(getattr(a, name), getattr(b, name), f"{path}.{name}")]
    if isinstance(a, float) or isinstance(b, float):
        same = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-5
        return [] if same else [f"{path}: {a} != {b}"]
    if hasattr(a, "__len__") and not isinstance(a, (str, bytes)):
        if len(a) != len(b):
            return [f"{path}: {len(a)} != {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.ros
def test_composed_graph_publishes_what_the_separate_graph_does():
    from gaze_perception.samples import demo_sequence

    config = load_pipeline_config("default")
    frames = [rgb for _, rgb in demo_sequence(3)]  # one face, four, ...
    kw = dict(device="cpu", reliability="reliable", threads=1)
    separate, names = _collect(node_specs(config, **kw), frames, listeners=3)
    composed, names_c = _collect(node_specs(config, compose=True, **kw), frames, listeners=1)
    assert {"face_detector", "eye_state", "gaze_target"} <= names & names_c
    assert sum(len(m.faces) for m in separate["faces"]) >= 5
    differences = [d for topic in TOPICS
                   for i, (a, b) in enumerate(zip(separate[topic], composed[topic]))
                   for d in _differences(a, b, f"{topic}[{i}]")]
    assert not differences, "\n".join(differences[:40])
    # the gaze nodes aimed along the landmark stage's eye directions (no second mesh, as `run`)
    aimed = 0
    for lm, gz in zip(separate["faces/landmarks"], separate["gaze_targets"]):
        for m, t in zip(lm.faces, gz.targets):
            d = (m.gaze_direction.x, m.gaze_direction.y, m.gaze_direction.z)
            if any(d):
                assert (t.direction.x, t.direction.y, t.direction.z) == pytest.approx(d, abs=1e-9)
                aimed += 1
    assert aimed >= 5
