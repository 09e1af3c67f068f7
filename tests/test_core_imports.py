"""`gaze_perception.core` is ROS-free and torch-free: every one of its modules imports with
`torch` and `rclpy` blocked (as rt_gene tests its own core)."""
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "gaze_perception" / "core"
BLOCKED = ("torch", "torchvision", "timm", "rclpy")

PROBE = f"""
import importlib, sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # `import name` now raises ImportError
failed = []
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        failed.append(f"{{module}}: {{exc}}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_core_module_imports_without_torch_and_rclpy():
    modules = sorted(f"gaze_perception.core.{p.stem}" for p in CORE.glob("*.py")
                     if p.stem != "__init__")
    assert len(modules) > 10  # the probe must see the real package
    result = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"core modules need a blocked package:\n{result.stdout}" \
                                   f"{result.stderr}"


def test_the_probe_notices_a_module_that_needs_torch():
    result = subprocess.run([sys.executable, "-c", PROBE, "gaze_perception.models.eye_state"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "models.eye_state" in result.stdout
