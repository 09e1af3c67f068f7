"""Shared test fixtures: paths to ../shared data, seeded torch, isolated ROS domains."""
import os
import random
from pathlib import Path

import numpy as np
import pytest

# before torch is imported: its OpenMP threads sleep when idle (core/threads.py WAIT_POLICY), so
# this process does not spin on the cores the node processes of a ROS test need
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GAZE_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED} (set GAZE_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's public-domain astronaut photo, 512x512 RGB uint8."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def seeded_checkpoints(tmp_path_factory) -> Path:
    """Seeded L2CS (l2cs.pt) and gaze-coding (coding.pt) checkpoints in one folder: no weights
    for those lines ship with the package."""
    import torch

    from gaze_perception.models import gaze_coding, gaze_direction
    from gaze_perception.models.state_dict import save_checkpoint
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    l2cs = gaze_direction.L2CSMeta(backbone="resnet18", bins=28, bin_width=3.0, input_size=48)
    save_checkpoint(root / "l2cs.pt", gaze_direction.build_model(l2cs), l2cs)
    coding = gaze_coding.CodingMeta(arch="resnet18", input_size=48)
    save_checkpoint(root / "coding.pt", gaze_coding.build_model(coding), coding)
    return root


@pytest.fixture(autouse=True)
def _release_ros_domains():
    """Domain ids a test reserved (`dds.reserve_domain_id`: OS randomness, unaffected by the
    seeding below, and a lock file per id so concurrent runs never share one) go back after
    the test."""
    yield
    from gaze_perception.dds import release_domain_ids
    release_domain_ids()


@pytest.fixture(scope="session", autouse=True)
def _no_stale_shared_memory():
    """Fast DDS segments left by killed processes (earlier runs, SIGKILL tests) go first."""
    from gaze_perception.dds import remove_stale_shm
    remove_stale_shm()


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
        torch.manual_seed(0)
    except ImportError:
        pass


def pytest_addoption(parser):
    parser.addoption("--lock-drift", choices=("fail", "report"), default="fail",
                     help="fail (default): the venv must equal requirements.lock; report: list "
                          "what differs and skip that test (make test-latest)")
