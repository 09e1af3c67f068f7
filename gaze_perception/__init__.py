"""gaze_perception: faces, eye states and gaze targets, as ROS 2 nodes or a plain Pipeline."""
from .core import registry
from .core.registry import create, list_backends

__all__ = ["create", "list_backends", "registry"]
