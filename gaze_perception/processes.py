"""Process supervision: each node of a graph in its own process (output prefixed with its name,
stopped with one SIGINT, killed after a timeout, dying with its parent), and SIGTERM / SIGHUP
turned into Ctrl-C for the caller's clean-up."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List

from .graph import NodeSpec
from .lifetime import PARENT_PID_ENV


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_signals():
    """Within the block SIGTERM and SIGHUP (the terminal closed) raise KeyboardInterrupt as
    Ctrl-C does, so the caller's clean-up stops its nodes; the old handlers come back after."""
    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, _interrupt) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class NodeProcess:
    """A node in its own process; its output lines are prefixed with the node name."""

    def __init__(self, spec: NodeSpec, env: Dict[str, str], echo: bool = True):
        self.spec = spec
        self.label = spec.name or spec.executable
        self.lines: List[str] = []
        # Own process group: a terminal's Ctrl-C reaches only the parent, which stops each node
        # with one SIGINT (a second one, arriving mid-shutdown, would kill it uncleanly).
        # The node asks the kernel to stop it when this process dies, however (lifetime.py).
        env = {**env, PARENT_PID_ENV: str(os.getpid())}
        self.proc = subprocess.Popen(spec.command(), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     process_group=0)
        self._reader = threading.Thread(target=self._pump, args=(echo,), daemon=True)
        self._reader.start()

    def _pump(self, echo: bool) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if echo:
                sys.stderr.write(f"[{self.label}] {line}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_output(self, *texts: str, timeout: float = 10.0) -> bool:
        """Whether the output shows all `texts` within `timeout` (a thread reads it, so a line
        the node has written may not be here yet)."""
        end = time.monotonic() + timeout
        while not all(t in self.output for t in texts) and time.monotonic() < end:
            time.sleep(0.05)
        return all(t in self.output for t in texts)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then SIGKILL after `timeout`; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2.0)
        return self.proc.returncode
