"""Processes that end with their parent: node processes started by `up`, `demo` and the tests
ask the kernel for SIGTERM when their parent dies, however it dies (SIGHUP, SIGTERM, SIGKILL),
so no node is left running as an orphan. rclpy stops a node cleanly on SIGTERM.

`processes.NodeProcess` names the parent in the child's environment (PARENT_PID_ENV); the node's
`spin()` calls `die_with_parent()` first thing. Linux only (prctl PR_SET_PDEATHSIG); elsewhere
a no-op. The signal comes when the *thread* that started the child ends, so start node
processes from a thread that lives as long as they should (the main thread in our tools)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PARENT_PID_ENV = "GAZE_PERCEPTION_PARENT_PID"
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send `sig` to this process when its parent (named in PARENT_PID_ENV)
    dies; exit at once if it is already gone (it died while this process was starting).
    Returns whether the request was made (False off Linux or without PARENT_PID_ENV)."""
    parent = os.environ.get(PARENT_PID_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != int(parent):  # the parent died before the request: no signal will come
        os._exit(0)
    return True
