"""Named errors of the bag tools. All derive from RuntimeError or ValueError so the command line
reports them as one clear line (see cli/main.py) instead of a traceback."""
from __future__ import annotations


class BagError(RuntimeError):
    """A bag cannot be read or written as asked."""


class TopicNotFoundError(BagError, LookupError):
    """A topic that was asked for is not in the bag (or never appeared on the graph)."""


class UnknownTypeError(BagError, LookupError):
    """A message type we can neither describe in a bag nor import as an rclpy class."""

