"""Weights are untrusted files: find them through `weights/manifest.yaml`, check sha256,
load with `torch.load(weights_only=True)`."""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Dict, Optional, Union

import yaml

from .safe_yaml import YamlError, load_yaml_file

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
    #: needed by the default pipeline (`weights verify` fails when it is missing); the others
    #: are optional: missing is fine, corrupt is not
    required: bool = False


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
    try:
        data = load_yaml_file(path, "weights manifest") or {}
    except YamlError as exc:
        raise WeightsError(str(exc)) from None
    entries = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(entries or {}, dict):
        raise WeightsError(f"weights manifest '{path}': 'weights' must be a mapping of names")
    known = {f.name for f in fields(WeightEntry)} - {"name"}
    out = {}
    for name, entry in (entries or {}).items():
        if not isinstance(entry, dict) or "file" not in entry:
            raise WeightsError(f"weights manifest '{path}': entry '{name}' must be a mapping with "
                               "a 'file' key")
        out[str(name)] = WeightEntry(name=str(name), required=entry.get("required") is True,
                                     **{k: "" if v is None else str(v) for k, v in entry.items()
                                        if k in known and k != "required"})
    return out


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
        why = "is a folder" if path.is_dir() else "does not exist"
        raise WeightsError(f"{what} '{spec}' are neither a manifest name (known: "
                           f"{', '.join(sorted(entries))}) nor a file: '{path}' {why}")
    return check_unlisted(path, entries)


# -- files given by path: pinned by the user ------------------------------------------------
def pins_path() -> Path:
    """The user's pins of weights files given by path (`gaze-perception weights pin FILE`):
    `$GAZE_PERCEPTION_PINS`, else `$XDG_CONFIG_HOME/gaze_perception/pinned_weights.yaml`
    (`~/.config/...`)."""
    env = os.environ.get("GAZE_PERCEPTION_PINS")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "gaze_perception" / "pinned_weights.yaml"


def _read_pins() -> Dict[str, dict]:
    """The `pins:` mapping of the pins file ({} when there is none)."""
    path = pins_path()
    if not path.exists():
        return {}
    try:
        data = load_yaml_file(path, "pinned weights file") or {}
    except YamlError as exc:
        raise WeightsError(str(exc)) from None
    pins = data.get("pins") if isinstance(data, dict) else None
    if not isinstance(pins or {}, dict) or not all(isinstance(v, dict) for v in
                                                   (pins or {}).values()):
        raise WeightsError(f"pinned weights file '{path}': 'pins' must map paths to "
                           "{sha256: ...}")
    return dict(pins or {})


def load_pins() -> Dict[str, str]:
    """Pinned files: absolute path -> sha256."""
    return {str(k): str(v.get("sha256", "")) for k, v in _read_pins().items()}


def pin(path: Union[str, Path]) -> str:
    """Record the sha256 of the file `path` in the user's pins; returns it. Later loads of
    that path are refused when the file no longer matches."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"cannot pin '{path}': "
                           f"{'it is a folder' if path.is_dir() else 'no such file'}")
    digest = sha256_of(path)
    pins = _read_pins()
    pins[str(path.resolve())] = {"sha256": digest,
                                 "pinned": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    pins_file = pins_path()
    pins_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = pins_file.with_name(pins_file.name + ".tmp")
    tmp.write_text("# sha256 of weights files given by path, written by `gaze-perception "
                   "weights pin FILE`\n" + yaml.safe_dump({"pins": pins}, sort_keys=True))
    tmp.replace(pins_file)
    return digest


def check_unlisted(path: Path, entries: Optional[Dict[str, WeightEntry]] = None) -> Path:
    """A weights file given by path: checked against the user's pin when it has one (a
    mismatch is an error); otherwise its sha256 is logged (matching a manifest entry, or with
    the command that pins it)."""
    digest = sha256_of(path)
    pinned = load_pins().get(str(path.resolve()))
    if pinned:
        if digest != pinned:
            raise WeightsError(f"weights file '{path}' has sha256 {digest}, but it was pinned "
                               f"with {pinned} (in {pins_path()}): the file is corrupt or was "
                               "replaced; pin it again once you trust it")
        log.info("weights file '%s' matches its pin (sha256 %s)", path, digest)
        return path
    same = [e.name for e in (entries or {}).values() if e.sha256 == digest]
    if same:
        log.info("weights file '%s' is manifest entry '%s' (sha256 %s)", path, same[0], digest)
    else:
        log.warning("weights file '%s' is in no manifest; its sha256 is %s. Run `gaze-perception "
                    "weights pin %s` to record it, so that a changed file is refused", path,
                    digest, path)
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
