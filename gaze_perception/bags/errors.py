"""Named errors of the bag tools. All derive from RuntimeError or ValueError so the command line
reports them as one clear line (see cli/main.py) instead of a traceback."""
from __future__ import annotations

from pathlib import Path


class BagError(RuntimeError):
    """A bag cannot be read or written as asked."""


class BagDamagedError(BagError):
    """A storage file ends or breaks mid-record, e.g. a recorder that was killed or a copy that
    was cut. Raised after every intact message has been yielded, so callers keep what was read."""

    def __init__(self, path: Path, reason: str, messages_read: int):
        self.path = Path(path)
        self.reason = reason
        self.messages_read = messages_read
        super().__init__(f"bag file '{self.path}' is damaged ({reason}); read {messages_read} "
                         "intact message(s), the rest of that file is lost")


class TopicNotFoundError(BagError, LookupError):
    """A topic that was asked for is not in the bag (or never appeared on the graph)."""


class UnknownTypeError(BagError, LookupError):
    """A message type we can neither describe in a bag nor import as an rclpy class."""

