"""Rewrite the build machine's paths baked into the ROS 2 wheels' CMake files.

The PyPI ROS 2 wheels export CMake targets that point at /opt/python/cp311-cp311/include/python3.11
and at that machine's numpy include dir; colcon builds of message packages fail until both point
at this venv. Idempotent; run after every wheel install (see DESIGN.md section 6).
"""
import re
import sys
import sysconfig
from pathlib import Path

import numpy

PY_INCLUDE = sysconfig.get_paths()["include"]
NP_INCLUDE = numpy.get_include()
PATTERNS = [
    (re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+"), PY_INCLUDE),
    (re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include"),
     NP_INCLUDE),
]


def main(prefix: str = sys.prefix) -> int:
    changed = 0
    for path in Path(prefix, "share").glob("**/cmake/*.cmake"):
        text = path.read_text(errors="surrogateescape")
        new = text
        for pat, repl in PATTERNS:
            new = pat.sub(repl, new)
        if new != text:
            path.write_text(new, errors="surrogateescape")
            changed += 1
    print(f"fix_ros_cmake_paths: rewrote {changed} file(s) under {prefix}/share")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
