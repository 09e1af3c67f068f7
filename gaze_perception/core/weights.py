"""Weights are untrusted files: find them through `weights/manifest.yaml`, check sha256,
load with `torch.load(weights_only=True)`."""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import yaml

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class WeightsError(RuntimeError):
    """Missing, tampered or unloadable weights; the message names the file."""


@dataclass
class WeightEntry:
    name: str
    file: str
    sha256: str
    source: str = ""
    url: str = ""
    licence: str = ""
    notes: str = ""


def default_weights_dir() -> Path:
    """`$GAZE_PERCEPTION_WEIGHTS`, else the repository's (or installed share's) `weights/`."""
    env = os.environ.get("GAZE_PERCEPTION_WEIGHTS")
    if env:
        return Path(env)
    here = PACKAGE_ROOT / "weights"
    if (here / "manifest.yaml").exists():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory("gaze_perception")) / "weights"
    except Exception:  # noqa: BLE001 - no ament index: fall back to the source tree
        return here


def manifest_path(weights_dir: Optional[Path] = None) -> Path:
    return Path(weights_dir or default_weights_dir()) / "manifest.yaml"


def load_manifest(weights_dir: Optional[Path] = None) -> Dict[str, WeightEntry]:
    path = manifest_path(weights_dir)
    if not path.exists():
        path = PACKAGE_ROOT / "weights" / "manifest.yaml"
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    return {name: WeightEntry(name=name, **{k: str(v) for k, v in entry.items()})
            for name, entry in (data.get("weights") or {}).items()}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, expected_sha256: str) -> Path:
    """Check `path` against `expected_sha256`. An empty expectation (a manifest entry whose
    published file we could not hash yet) only warns and prints the digest to pin."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' is missing (expected sha256 "
                           f"{expected_sha256 or 'not pinned'}); run `make weights` or "
                           "`gaze-perception weights fetch NAME [--from FILE]`")
    got = sha256_of(path)
    if not expected_sha256:
        log.warning("weights file '%s' has no sha256 in the manifest; its sha256 is %s: pin it "
                    "in weights/manifest.yaml once you trust the file", path, got)
        return path
    if got != expected_sha256:
        raise WeightsError(f"weights file '{path}' has sha256 {got}, expected {expected_sha256}: "
                           "the file is corrupt or was replaced")
    return path


def resolve(name: str, weights_dir: Optional[Path] = None) -> Path:
    """Path of manifest entry `name` inside `weights_dir`, sha256-checked."""
    wdir = Path(weights_dir or default_weights_dir())
    entries = load_manifest(wdir)
    if name not in entries:
        raise WeightsError(f"no manifest entry '{name}' (known: {', '.join(sorted(entries))})")
    entry = entries[name]
    return verify(wdir / entry.file, entry.sha256)


def locate(spec: Union[str, Path], weights_dir: Optional[Path] = None,
           what: str = "weights") -> Path:
    """The file `spec` names: a manifest name's file inside `weights_dir` (default
    `default_weights_dir()`), sha256-checked; otherwise `spec` as a file path ("~" expanded),
    which must exist. A manifest name wins over a file of the same name. `what` ("YuNet
    weights", "DINOv2 backbone weights", ...) starts the error messages."""
    wdir = Path(weights_dir or default_weights_dir())
    entries = load_manifest(wdir)
    name = str(spec)
    if name in entries:
        entry = entries[name]
        path = wdir / entry.file
        if not path.is_file():
            fetch = (f"Run `gaze-perception weights fetch {name}` to download them from "
                     f"{entry.url}, or `gaze-perception weights fetch {name} --from FILE` to "
                     "install a copy you already have." if entry.url else
                     f"Run `gaze-perception weights fetch {name} --from FILE` to install a "
                     "copy you have.")
            raise WeightsError(f"{what} '{name}' are not installed ({path} is missing). {fetch}")
        return verify(path, entry.sha256)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise WeightsError(f"{what} '{spec}' are neither a manifest name (known: "
                           f"{', '.join(sorted(entries))}) nor a file: '{path}' does not exist")
    return path


def load_state_dict(path: Path, expected_sha256: Optional[str] = None):
    """torch.load a state dict safely; checks sha256 first when given."""
    import torch

    path = Path(path)
    if expected_sha256:
        verify(path, expected_sha256)
    elif not path.is_file():
        raise WeightsError(f"weights file '{path}' is missing")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise WeightsError(f"cannot load weights file '{path}': {exc}") from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"weights file '{path}' holds a {type(obj).__name__}, not a state dict")
    return obj
