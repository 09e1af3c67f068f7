"""`gaze-perception demo` (the README's first command) end to end, in a subprocess."""
import json
import math
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros


def test_demo_runs_the_classroom_graph_and_writes_the_report(tmp_path):
    out = tmp_path / "demo"
    res = subprocess.run([sys.executable, "-m", "gaze_perception.cli.main", "demo", "--frames",
                          "4", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "end-to-end latency" in res.stdout
    assert "grid_000                     4" in res.stdout  # the grid frame shows four faces
    assert (out / "report" / "index.html").is_file()
    lines = (out / "demo.jsonl").read_text().splitlines()
    assert len(lines) == 4
    # the landmark stage of the classroom config: head pose from the mesh, the eyes' gaze,
    # P(looking at the camera), in the table and per face in the JSON Lines
    for column in ("head pose", "yaw/pitch", "eye gaze (x, y, z)", "P(cam)", "gaze target"):
        assert column in res.stdout
    row = next(r for r in res.stdout.splitlines() if r.startswith("astronaut "))
    cells = row.split()
    assert cells[cells.index("open") + 1] == "mesh", row
    assert float(cells[-2]) > 0.5 and cells[-1] == "camera", row  # she looks into the camera
    face = json.loads(lines[0])["faces"][0]
    assert len(face["mesh"]["points"]) == 468 and len(face["mesh"]["iris"]) == 2
    gaze = face["eye_gaze"]
    assert gaze["head_pose_source"] == "mesh" and gaze["looking_at_camera"] > 0.5
    assert math.isclose(math.hypot(*gaze["direction"]), 1.0, abs_tol=1e-3)
    assert face["head_pose"] is not None
    assert f"report: {out / 'report' / 'index.html'}" in res.stdout
