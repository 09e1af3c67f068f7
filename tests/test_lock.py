"""The venv holds exactly what requirements.lock pins (tools/lock_check.py), so a drifted venv is
named, not debugged. Under `make test-latest` (`--lock-drift=report`) the drift is the point:
the test lists it and is skipped."""
import sys

import pytest

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tools"))
import lock_check  # noqa: E402


def test_the_lock_pins_every_distribution_with_hashes():
    text = lock_check.LOCK.read_text()
    pins = lock_check.read_lock()
    for name in ("opencv-python-headless", "numpy", "timm", "onnxruntime", "rosbags", "torch",
                 "torchvision", "scipy", "ros-rclpy", "ros-rmw-fastrtps-cpp", "colcon-core", "pip"):
        assert name in pins, f"{name} is not pinned in requirements.lock"
    blocks = [b for b in text.split("\n") if lock_check._PIN.match(b)]
    unhashed = [b.split()[0] for b in blocks if not b.rstrip().endswith("\\")]
    assert not unhashed, f"pinned without --hash: {unhashed}"


def test_installed_distributions_equal_the_lock(request):
    drift = lock_check.compare(lock_check.read_lock())
    listing = "; ".join(str(d) for d in drift)
    if request.config.getoption("--lock-drift") == "report":
        pytest.skip(f"test-latest: {len(drift)} distributions differ from the lock: {listing}"
                    if drift else "test-latest: the newest releases are the locked ones")
    assert not drift, (f"{sys.prefix} differs from requirements.lock ({listing}); "
                       "run `make setup` after `rm -rf .venv`, or `make lock` if the change "
                       "is meant")


def test_the_check_names_a_wrong_version_a_missing_and_an_unlocked_distribution():
    pins = dict(lock_check.read_lock())
    pins["numpy"] = "0.0.1"
    pins["not-a-real-distribution"] = "1.0"
    del pins["pyyaml"]
    drift = {d.name: d for d in lock_check.compare(pins)}
    assert drift["numpy"].locked == "0.0.1" and drift["numpy"].installed not in (None, "0.0.1")
    assert drift["not-a-real-distribution"].installed is None
    assert drift["pyyaml"].locked is None and drift["pyyaml"].installed
    assert "gaze-perception" not in drift          # editable, from this folder
    assert len(drift) == 3


def test_make_lock_and_make_test_latest_do_what_the_docs_say():
    """Dry runs (`make -n -B`: every step, done or not): `make lock` compiles requirements.in with hashes in its own venv;
    `make test-latest` runs the suite in .venv-latest from the loose requirements, newest."""
    import subprocess

    def dry(target):
        res = subprocess.run(["make", "-n", "-B", target], cwd=lock_check.REPO, text=True,
                             capture_output=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout

    lock = dry("lock")
    assert ".venv-lock/bin/pip-compile" in lock and "--generate-hashes" in lock
    assert "--output-file requirements.lock" in lock and "requirements.in" in lock
    latest = dry("test-latest")
    assert "--upgrade --upgrade-strategy eager -r requirements.in" in latest
    assert ".venv-latest/bin/pytest" in latest and "--lock-drift=report" in latest
    assert "--require-hashes" not in latest.split("test-latest", 1)[-1]
