"""Pipeline descriptions (YAML in config/): which stages run, with which backends and params."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from .pipeline import PipelineConfig
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
        raise FileNotFoundError(f"pipeline config '{path}' not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"pipeline config '{p}' is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"pipeline config '{p}' must be a mapping with a 'stages' key")
    return PipelineConfig.from_dict(data)
