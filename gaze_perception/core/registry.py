"""The plugin door: backends register as setuptools entry points and are built by `create`.

Entry point groups are ``gaze_perception.<kind>``; a backend class is called with keyword
parameters. This is the pip-world equivalent of pluginlib (ROS 2's own CLI does the same).
"""
from __future__ import annotations

import difflib
import inspect
from importlib.metadata import entry_points
from typing import Callable, Dict, List

KINDS = {
    "face_detector": "gaze_perception.face_detectors",
    "face_landmarks": "gaze_perception.face_landmarks",
    "eye_state": "gaze_perception.eye_state",
    "gaze_target": "gaze_perception.gaze_targets",
    "gaze_direction": "gaze_perception.gaze_direction",
    "gaze_coding": "gaze_perception.gaze_coding",
}


class UnknownBackendError(LookupError):
    """Raised for a backend or kind name that is not installed; the message lists known ones."""


class BackendParameterError(ValueError):
    """Raised for a parameter a backend does not take; the message lists the ones it takes."""


def _group(kind: str) -> str:
    if kind not in KINDS:
        raise UnknownBackendError(f"unknown backend kind '{kind}'; known kinds: {', '.join(KINDS)}")
    return KINDS[kind]


def available(kind: str) -> Dict[str, object]:
    """Installed entry points of one kind, by name."""
    return {ep.name: ep for ep in entry_points(group=_group(kind))}


def list_backends() -> Dict[str, List[str]]:
    return {kind: sorted(available(kind)) for kind in KINDS}


def create(kind: str, name: str, **params):
    """Build backend `name` of `kind` (face_detector, eye_state, gaze_target) with `params`."""
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


def _checked(kind: str, name: str, params: Dict[str, object]):
    eps = available(kind)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise UnknownBackendError(f"unknown {kind} backend '{name}'; installed: {known}")
    cls = eps[name].load()
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
