"""The plugin door: backends register as setuptools entry points and are built by `create`.

Entry point groups are ``gaze_perception.<kind>``, one per row of the stage table
(`core/stages.py`); a backend class is called with keyword parameters. This is the pip-world
equivalent of pluginlib (ROS 2's own CLI does the same).
"""
from __future__ import annotations

import difflib
import inspect
from importlib.metadata import entry_points
from typing import Callable, Dict, List

from . import stages


def kinds() -> Dict[str, tuple]:
    """Backend kind -> entry-point groups (the group, then its earlier name): the stage table."""
    return {stage.kind: stage.groups for stage in stages.STAGES}


class UnknownBackendError(LookupError):
    """Raised for a backend or kind name that is not installed; the message lists known ones."""


class BackendParameterError(ValueError):
    """Raised for a parameter a backend does not take; the message lists the ones it takes."""


def _groups(kind: str) -> tuple:
    known = kinds()
    if kind not in known:
        raise UnknownBackendError(f"unknown backend kind '{kind}'; known kinds: {', '.join(known)}")
    return known[kind]


def available(kind: str) -> Dict[str, object]:
    """Installed entry points of one kind, by name (the current group wins over the old)."""
    found: Dict[str, object] = {}
    for group in _groups(kind):
        for ep in entry_points(group=group):
            found.setdefault(ep.name, ep)
    return found


def list_backends() -> Dict[str, List[str]]:
    return {kind: sorted(available(kind)) for kind in kinds()}


def create(kind: str, name: str, **params):
    """Build backend `name` of `kind` (a kind of the stage table) with `params`."""
    return _checked(kind, name, params)(**params)


def deferred(kind: str, name: str, **params) -> Callable[[], object]:
    """`create` checked now (name and parameters: a mistake fails at once) and built at the
    first call, for a backend its owner may never need (the head_pose gaze backend's
    direction backend where the pipeline hands it the landmark stage's directions)."""
    cls = _checked(kind, name, params)
    built: List[object] = []

    def get():
        if not built:
            built.append(cls(**params))
        return built[0]
    return get


def backend_class(kind: str, name: str):
    """The class of backend `name` of `kind`, loaded but not built (its needs/uses/gives)."""
    eps = available(kind)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise UnknownBackendError(f"unknown {kind} backend '{name}'; installed: {known}")
    return eps[name].load()


def _checked(kind: str, name: str, params: Dict[str, object]):
    cls = backend_class(kind, name)
    check_params(cls, params, f"{kind} backend '{name}'")
    return cls


def parameters(cls) -> List[str]:
    """The keyword parameters `cls(...)` takes; None when it takes any (**kwargs)."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # a builtin without a signature: cannot tell
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return [n for n, p in sig.parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_params(cls, params: Dict[str, object], what: str) -> None:
    """BackendParameterError naming every parameter of `params` that `cls` does not take (with
    the closest valid name) and listing the valid ones."""
    valid = parameters(cls)
    if valid is None:
        return
    unknown = [k for k in params if k not in valid]
    if not unknown:
        return
    hints = []
    for k in unknown:
        close = difflib.get_close_matches(str(k), valid, n=1)
        hints.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    raise BackendParameterError(f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                                f"{', '.join(hints)} for {what}; valid parameters: "
                                f"{', '.join(valid) or 'none'}")
