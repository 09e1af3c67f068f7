"""Layers that only point down (`tools/structure.py`, run in-process): no circle between files,
no import up the declared layer order, and a core that is ROS-free, torch-free and imports
nothing of the package but itself (the exceptions are named below, not hidden)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import structure  # noqa: E402

#: imports of core modules inside functions, on purpose: the torch helpers the torch backends
#: share (torch loads only when they run) and the ament index of an installed ROS package
#: (looked up only when the source tree has no config/ or weights/)
CORE_LAZY_THIRD_PARTY = {
    ("core.device", "resolve_device", "torch"),
    ("core.weights", "load_state_dict", "torch"),
    ("core.config", "config_dir", "ament_index_python"),
    ("core.weights", "default_weights_dir", "ament_index_python"),
}


@pytest.fixture(scope="module")
def s():
    return structure.analyse()


def _listing(arrows, s):
    return "\n".join(f"{a}  [{a.where(s.package)}]" for a in arrows)


def test_the_scan_sees_the_real_package(s):
    assert len(s.modules) > 100
    assert {"core", "messages", "bags", "analytics", "nodes", "cli"} <= set(s.layer_of)
    assert any(a.lazy for a in s.internal) and any(not a.lazy for a in s.internal)


def test_no_circle_between_files(s):
    assert not s.file_circles, structure.picture(s)


def test_no_arrow_runs_up_the_layers(s):
    assert not s.upward, _listing(s.upward, s)


def test_no_other_circle_between_parts_and_every_new_part_fits(s):
    assert not s.part_circles, structure.picture(s)
    assert not s.misfits, s.misfits
    assert not s.missing, _listing(s.missing, s)


def test_the_core_imports_no_ros_no_torch_and_only_itself(s):
    core = [a for a in s.arrows if s.part_of[a.source] == "core"]
    ros = [a for a in core if not a.internal
           and (a.target in ("rclpy", "cv_bridge") or a.target.endswith("_msgs"))]
    assert not ros, _listing(ros, s)
    heavy = [a for a in core if not a.internal
             and (a.target in structure.TORCH or structure.is_ros(a.target)
                  or a.target == "ament_index_python")]
    eager = [a for a in heavy if not a.lazy]
    assert not eager, _listing(eager, s)
    lazy = {(structure.short(a.source), a.function, a.target) for a in heavy}
    assert lazy <= CORE_LAZY_THIRD_PARTY, sorted(lazy - CORE_LAZY_THIRD_PARTY)
    outside = {(structure.short(a.source), structure.short(a.target)) for a in core
               if a.internal and s.part_of[a.target] != "core"}
    assert not outside, sorted(outside)


def test_main_prints_the_picture(capsys, s):
    rc = structure.main([])
    out = capsys.readouterr().out
    assert rc == (1 if s.problems else 0)
    assert "file circles: none" in out and "arrows up the layer order: none" in out
    for name, _, _ in structure.LAYERS:
        assert name in out


def _write(root: Path, files: dict) -> Path:
    pkg = root / "gaze_perception"
    for rel, text in {"__init__.py": "", **files}.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


def test_it_finds_lazy_circles_upward_arrows_misfits_and_missing_modules(tmp_path):
    pkg = _write(tmp_path, {
        "core/__init__.py": "",
        "core/a.py": "def f():\n    from .b import g\n",
        "core/b.py": "from . import a\n",
        "core/c.py": "from ..nodes import x\n",                  # up: core -> nodes
        "nodes/__init__.py": "", "nodes/x.py": "from ..newpart import y\n",
        "newpart.py": "import gaze_perception.cli.z\n",          # in no layer, fits nowhere
        "cli/__init__.py": "", "cli/z.py": "from ..core import gone\n",
    })
    s = structure.analyse(pkg)
    assert s.file_circles == [["gaze_perception.core.a", "gaze_perception.core.b"]]
    assert [str(a) for a in s.upward] == ["core.c -> nodes.x"]
    assert s.layer_of["newpart"] is None and len(s.misfits) == 1
    assert [str(a) for a in s.missing] == []  # `from ..core import gone`: the package core exists
    assert s.problems and structure.main(["--package", str(pkg)]) == 1


def test_a_new_part_that_fits_is_no_problem_and_a_missing_module_is(tmp_path):
    pkg = _write(tmp_path, {
        "core/__init__.py": "", "core/a.py": "",
        "supervise.py": "from .core import a\n",                 # in no layer: fits above core
        "cli/__init__.py": "", "cli/z.py": "from .. import supervise\nimport gaze_perception.gone\n",
    })
    s = structure.analyse(pkg)
    assert s.layer_of["supervise"] is None and not s.misfits
    assert not s.file_circles and not s.upward
    assert [structure.short(a.target) for a in s.missing] == ["gone"]
    assert "supervise" in structure.picture(s)
