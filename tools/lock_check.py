"""Does a venv hold exactly what requirements.lock pins? Names the drift instead of leaving it to
be debugged.

    .venv/bin/python tools/lock_check.py                   # this interpreter's venv against the lock
    .venv-latest/bin/python tools/lock_check.py            # what `make test-latest` installed

Every locked distribution must be installed at its locked version, and every installed one must
be in the lock unless it was installed from a local folder: this project (editable), the
`../shared/ros_python` sources (pip from a copy) and the interface packages colcon builds
(`gaze_msgs`, ...; no pip INSTALLER record). Prints one row per difference; exit status 1 if
there is any. `tests/test_lock.py` asserts the same inside `make test`.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normalize(name: str) -> str:
    """PEP 503 name: case and runs of `-_.` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> Dict[str, str]:
    """name -> pinned version of every `name==version` line of a pip-compile lock."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        m = _PIN.match(line)
        if m:
            pins[normalize(m.group(1))] = m.group(2)
    if not pins:
        raise ValueError(f"{path} pins nothing (no 'name==version' lines)")
    return pins


def _from_local_folder(dist: importlib.metadata.Distribution) -> bool:
    """Installed from a folder, not an index: a direct_url.json naming a file:// URL, or no pip
    INSTALLER record at all (colcon's CMake installs)."""
    installer = dist.read_text("INSTALLER")
    if installer is None or installer.strip() != "pip":
        return True
    direct = dist.read_text("direct_url.json")
    return bool(direct) and json.loads(direct).get("url", "").startswith("file://")


@dataclass(frozen=True)
class Drift:
    name: str
    locked: Optional[str]        # None: installed but not in the lock
    installed: Optional[str]     # None: locked but not installed

    def __str__(self) -> str:
        return f"{self.name}: lock {self.locked or '-'}, installed {self.installed or '-'}"


def compare(pins: Dict[str, str], path: Optional[List[str]] = None) -> List[Drift]:
    """The differences between the pins and the distributions on `path` (default sys.path)."""
    installed = {}
    for dist in importlib.metadata.distributions(path=path or sys.path):
        name = normalize(dist.metadata["Name"] or "")
        if name and name not in installed:          # the first on the path is the one imported
            installed[name] = dist
    out = []
    for name, version in sorted(pins.items()):
        dist = installed.get(name)
        if dist is None or dist.version != version:
            out.append(Drift(name, version, dist.version if dist else None))
    for name, dist in sorted(installed.items()):
        if name not in pins and not _from_local_folder(dist):
            out.append(Drift(name, None, dist.version))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lock", type=Path, default=LOCK)
    args = ap.parse_args(argv)
    pins = read_lock(args.lock)
    drift = compare(pins)
    if not drift:
        print(f"{sys.prefix}: the {len(pins)} distributions of {args.lock.name}, nothing else")
        return 0
    print(f"{sys.prefix} differs from {args.lock.name} in {len(drift)} distributions:")
    width = max(len(d.name) for d in drift)
    print(f"  {'distribution':<{width}}  {'lock':<14} installed")
    for d in drift:
        print(f"  {d.name:<{width}}  {d.locked or '-':<14} {d.installed or '-'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
