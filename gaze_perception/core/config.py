"""Pipeline descriptions (YAML in config/): which stages run, with which backends and params."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .pipeline import PipelineConfig
from .safe_yaml import load_yaml_file
from .weights import PACKAGE_ROOT


def config_dir() -> Path:
    here = PACKAGE_ROOT / "config"
    if here.is_dir():
        return here
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory("gaze_perception")) / "config"


def load_pipeline_config(path: Optional[str] = None) -> PipelineConfig:
    """Read a pipeline YAML; a bare name such as `faces_only` means `config/faces_only.yaml`."""
    p = Path(path) if path else config_dir() / "default.yaml"
    if not p.exists() and not p.suffix:
        p = config_dir() / f"{path}.yaml"
    if not p.exists():
        names = sorted(f.stem for f in config_dir().glob("*.yaml"))
        raise FileNotFoundError(f"pipeline config '{path}' not found (neither a file nor a "
                                f"name in config/: {', '.join(names)})")
    data = load_yaml_file(p, "pipeline config") or {}
    if not isinstance(data, dict):
        raise ValueError(f"pipeline config '{p}' must be a mapping with a 'stages' key")
    return PipelineConfig.from_dict(data)
