"""`gaze-perception demo` (the README's first command) end to end, in a subprocess."""
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
    assert f"report: {out / 'report' / 'index.html'}" in res.stdout
