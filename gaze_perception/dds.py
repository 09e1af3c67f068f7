"""The DDS side of starting nodes: each run on a ROS domain id of its own (reserved with a lock
file, so concurrent runs never share one), the environment node processes get (Fast DDS with a
shared-memory segment large enough for camera images), and the clean-up of the shared memory
that killed processes leave behind."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Dict, Optional


def node_env(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for node processes: unbuffered output, and Fast DDS with a shared-memory
    segment large enough for camera images (config/fastdds_large_shm.xml) unless the user
    chose a profile; without it, best-effort images between processes are mostly lost."""
    from .core.config import config_dir

    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in env and "FASTRTPS_DEFAULT_PROFILES_FILE" not in env:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(config_dir() / "fastdds_large_shm.xml")
    return env


def remove_stale_shm(directory: str = "/dev/shm") -> int:
    """Remove the Fast DDS shared-memory files of processes that died without cleaning up (a
    SIGKILL, a crash): each segment `fastdds_X` comes with a lock file `fastdds_X_el` that its
    users hold (flock) while alive; where an exclusive lock can be taken nobody uses it, and the
    segment, its lock file and its semaphore go (what `fastdds shm clean` does). Hundreds of
    such files made later participants lose large best-effort images (tests that drive `ros2
    lifecycle` stopped getting faces). Returns how many segments were removed."""
    import fcntl

    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    removed = 0
    for name in names:
        if not (name.startswith("fastdds_") and name.endswith("_el")):
            continue
        lock_path = os.path.join(directory, name)
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue                       # in use
        segment = name[:-len("_el")]
        for stale in (segment, f"sem.{segment}_mutex", name):
            try:
                os.unlink(os.path.join(directory, stale))
            except OSError:
                pass
        os.close(fd)
        removed += 1
    return removed


#: ROS domain ids safe on Linux (ports below the ephemeral range); 0 is everyone's default
FREE_DOMAIN_IDS = tuple(range(1, 102)) + tuple(range(215, 233))
#: one lock file per domain id: a run holds the lock of each domain it uses
DOMAIN_LOCK_DIR = Path(tempfile.gettempdir()) / "gaze_perception_ros_domains"
_held_domains: Dict[int, object] = {}  # domain id -> open lock file of this process


def reserve_domain_id() -> int:
    """A ROS domain id no other process on this machine holds, chosen by the OS's random source
    (unaffected by `random.seed`) and held by an exclusive lock file until `release_domain_ids`
    or the end of this process (the OS drops the lock of a dead process), so two concurrent
    runs (two test sessions, a test session and a demo) never share a domain."""
    import fcntl

    DOMAIN_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    candidates = [d for d in FREE_DOMAIN_IDS if d not in _held_domains]
    random.SystemRandom().shuffle(candidates)
    for domain in candidates:
        lock = open(DOMAIN_LOCK_DIR / f"{domain}.lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held_domains[domain] = lock
        return domain
    raise RuntimeError(f"every ROS domain id in {DOMAIN_LOCK_DIR} is held by another process")


def release_domain_ids() -> None:
    """Give back every domain id this process reserved (the tests do after each test)."""
    while _held_domains:
        _held_domains.popitem()[1].close()


def isolated_ros_env(domain_id: Optional[int] = None) -> Dict[str, str]:
    """`node_env` with its own ROS_DOMAIN_ID (`reserve_domain_id` unless given) and ROS_LOG_DIR
    so runs do not see each other."""
    env = node_env()
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else reserve_domain_id())
    env.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="gaze_ros_log_"))
    return env
