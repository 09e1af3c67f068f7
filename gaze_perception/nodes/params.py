"""Parameter descriptors the ROS tools show, and model reloads that never block the executor.

A node's PARAMS map a name to (default, description, check); `check` is a validator (value →
error text or None) or a `Range`, which is also the descriptor's `integer_range` /
`floating_point_range`, so `ros2 param describe` shows the bounds and rclpy refuses a value
outside them with the reason before the node's own validation runs.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, Optional

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.parameter import Parameter


class Range:
    """Inclusive bounds of a number (or of every element of a number array). `above`: the lower
    bound itself is refused (a descriptor range is inclusive, so that rule is the validator's
    and the descriptor's `additional_constraints`). `also`: a further validator."""

    def __init__(self, lo, hi, step=0, above: bool = False,
                 also: Optional[Callable[[Any], Optional[str]]] = None, note: str = ""):
        self.lo, self.hi, self.step, self.above, self.also, self.note = lo, hi, step, above, also, note

    def text(self) -> str:
        return f"{'(' if self.above else '['}{self.lo}, {self.hi}]"

    def __call__(self, value) -> Optional[str]:
        scalar = isinstance(value, (int, float))
        values = [value] if scalar else list(value)  # a list, or rclpy's array.array
        for v in values:
            if v < self.lo or v > self.hi or (self.above and v <= self.lo):
                return f"must lie in {self.text()}" + ("" if scalar else " (each value)")
        return self.also(value) if self.also else None

    def apply(self, descriptor: ParameterDescriptor, default) -> None:
        first = default[0] if isinstance(default, (list, tuple)) and default else default
        if isinstance(first, bool):
            return
        if isinstance(first, int):
            descriptor.integer_range = [IntegerRange(from_value=int(self.lo), to_value=int(self.hi),
                                                     step=int(self.step))]
        elif isinstance(first, float):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(self.lo), to_value=float(self.hi), step=float(self.step))]
        notes = ([f"> {self.lo}"] if self.above else []) + ([self.note] if self.note else [])
        descriptor.additional_constraints = "; ".join(notes)


def descriptor(default, description: str, check, read_only: bool) -> ParameterDescriptor:
    """The descriptor of one PARAMS entry (read-only parameters need a restart to change)."""
    d = ParameterDescriptor(description=description, read_only=read_only)
    if isinstance(check, Range):
        check.apply(d, default)
    if read_only:
        d.additional_constraints = "; ".join(filter(None, [
            d.additional_constraints, "read-only: set at start-up (a change needs a restart)"]))
    return d


class BackgroundReload:
    """Applies a parameter change that needs a model rebuilt off the executor thread: `build`
    runs on its own thread while the node keeps serving with the old model, then `install`
    swaps the new one in under the node's processing lock (a frame in work finishes with the
    old model; no frame sees half of each). Until it is done, a further change of these
    parameters is refused with the reason. If the build fails, the parameters go back to the
    values the running model was built with and the reason is logged and shown in
    /diagnostics, so parameters and model always agree."""

    def __init__(self, node, names: Iterable[str]):
        self.node, self.names = node, tuple(names)
        self.applied: Dict[str, Any] = {}
        self.busy = False
        self._reverting = False
        self._thread: Optional[threading.Thread] = None

    def remember(self) -> None:
        """Record the values the model in use was built with (after `configure`)."""
        self.applied = {n: self.node.param(n) for n in self.names}

    def refusal(self, params) -> Optional[str]:
        """The reason to refuse `params` now (a reload is running), else None."""
        if self.busy and not self._reverting and any(p.name in self.names for p in params):
            return "a model reload for an earlier change is running; set it again when it is done"
        return None

    def wanted(self, params) -> bool:
        return not self._reverting and any(p.name in self.names for p in params)

    def start(self, build: Callable[[], Any], install: Callable[[Any], None]) -> None:
        self.busy = True
        self._thread = threading.Thread(target=self._run, args=(build, install),
                                        name=f"{self.node.get_name()}-reload", daemon=True)
        self._thread.start()

    def wait(self, timeout: Optional[float] = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, build, install) -> None:
        node = self.node
        wanted = {n: node.param(n) for n in self.names}
        try:
            model = build()
            with node._processing:
                install(model)
            self.applied = wanted
            node.get_logger().info("model reloaded: " + ", ".join(
                f"{k}={v}" for k, v in wanted.items()))
        except Exception as exc:  # noqa: BLE001 - the reason goes to the log and diagnostics
            reason = f"reload failed, kept the running model: {type(exc).__name__}: {exc}"
            node.stats["last_error"] = reason
            node.get_logger().error(reason)
            self._reverting = True
            try:
                node.set_parameters([Parameter(n, value=v) for n, v in self.applied.items()
                                     if n in wanted and wanted[n] != v])
            finally:
                self._reverting = False
        finally:
            self.busy = False
