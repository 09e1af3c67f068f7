"""Message types for bags: a rosbags typestore that knows gaze_msgs (registered from our .msg
files, so bags carry their definitions and other tools can read them), and the rclpy class of a
type name (rclpy needs one to subscribe or publish, even raw bytes)."""
from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import List

from rosbags.typesys import Stores, get_typestore, get_types_from_msg
from rosbags.typesys.store import Typestore

from ..core.weights import PACKAGE_ROOT
from .errors import UnknownTypeError

#: The ROS distribution whose standard messages the typestore knows (the rclpy wheels' one).
STORE = Stores.ROS2_KILTED
INTERFACE_PACKAGE = "gaze_msgs"


def msg_files() -> List[Path]:
    """Our .msg files: from the source tree when we run from it, else the installed package."""
    folder = PACKAGE_ROOT / INTERFACE_PACKAGE / "msg"
    if not folder.is_dir():
        try:
            from ament_index_python.packages import get_package_share_directory
            folder = Path(get_package_share_directory(INTERFACE_PACKAGE)) / "msg"
        except (ImportError, LookupError, OSError) as exc:  # OSError: no AMENT_PREFIX_PATH
            raise UnknownTypeError(
                f"cannot find the {INTERFACE_PACKAGE} .msg files: {exc}") from None
    files = sorted(folder.glob("*.msg"))
    if not files:
        raise UnknownTypeError(f"no {INTERFACE_PACKAGE} .msg files in '{folder}'")
    return files


@functools.lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The standard ROS 2 types plus gaze_msgs."""
    store = get_typestore(STORE)
    types = {}
    for path in msg_files():
        types.update(get_types_from_msg(path.read_text(), f"{INTERFACE_PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


def check_known(msgtype: str) -> None:
    """Raise UnknownTypeError unless a bag connection for `msgtype` can be described."""
    if msgtype not in typestore().fielddefs:
        raise UnknownTypeError(f"message type '{msgtype}' is not known to the bag typestore "
                               f"({STORE.name} plus {INTERFACE_PACKAGE})")


def message_class(msgtype: str) -> type:
    """The rclpy message class of 'pkg/msg/Name'."""
    pkg, _, name = msgtype.rpartition("/")
    module = pkg.replace("/", ".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):  # ValueError: no package in the name
        raise UnknownTypeError(f"message type '{msgtype}' is not importable here (is the "
                               f"Python package '{module}' installed and sourced?)") from None


def canonical_cdr(data: bytes, msgtype: str) -> bytes:
    """`data` re-encoded by rosbags. rclpy leaves CDR padding bytes uninitialised, so two
    serializations of one message may differ; rosbags writes zeros, so bag content is
    reproducible."""
    store = typestore()
    return bytes(store.serialize_cdr(store.deserialize_cdr(data, msgtype), msgtype))
