"""Reading and writing rosbag2 bags (MCAP or SQLite 3) through rosbags, with our types.

Bags written by any rosbag2 writer read the same way: the real rosbag2's too, with or without
metadata.yaml, one or several storage files. A storage file that cannot be opened normally (no
index or summary because a recorder was killed, a copy that was cut) is read record by record
instead (salvage.py): its intact messages are read and the damage is named in `problems`.
"""
from __future__ import annotations

import heapq
import logging
import re
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from rosbags.interfaces import Connection, Qos
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader
from ruamel.yaml import YAML

from . import STORAGE_NAMES
from .errors import BagError, TopicNotFoundError
from .salvage import BagMessage, Salvage, scan
from .typesys import check_known, message_class, typestore

try:  # the zstd rosbags itself uses (Python 3.14's, else the backport it depends on)
    from compression import zstd
except ImportError:
    from backports import zstd

log = logging.getLogger(__name__)

STORAGES = {name: StoragePlugin[name.upper()] for name in STORAGE_NAMES}
STORAGE_SUFFIXES = (".mcap", ".db3")
#: Storage files compressed as a whole (rosbag2's compression_mode: file).
ZSTD_SUFFIXES = tuple(s + ".zstd" for s in STORAGE_SUFFIXES)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_STORAGE_READERS = {".mcap": McapReader, ".db3": Sqlite3Reader}
#: rosbag2 metadata version written (that of Jazzy and Kilted).
BAG_VERSION = 9

__all__ = ["BagMessage", "BagReader", "BagTopic", "BagWriter", "STORAGES"]


@dataclass(frozen=True)
class BagTopic:
    """A topic as the bag describes it; `qos`: what its publishers offered when recorded."""

    name: str
    msgtype: str
    count: int
    qos: Sequence[Qos] = ()


@dataclass
class _Part:
    """One storage file: its connections as the file itself describes them, or, for a file
    that does not open normally, what a record-by-record scan found."""

    path: Path
    connections: List[Connection] = field(default_factory=list)
    salvage: Optional[Salvage] = None


class BagReader:
    """Topics and messages of a bag: a rosbag2 folder or a single .mcap / .db3 file.

    The storage files themselves are the truth: each is opened on its own (rosbags' storage
    readers), and its topics and messages are matched by name and type only. rosbags' folder
    reader matches the storage's topics to metadata.yaml's by the exact QoS text, which the
    real rosbag2 writes differently in the two places, and then finds no message at all.
    metadata.yaml, when present, only says which files there are and in which order; without
    it the folder's .mcap / .db3 files are read (a reindex). Compression is seen in the files
    themselves (a `.zstd` file, a zstd frame for a message), so it needs no metadata either.

    What cannot be read is never fatal for the rest: a damaged file is read record by record
    (salvage.py), a missing or unreadable one is skipped; each is named once in `problems`
    (and logged). `messages` yields every intact message and never raises for damage.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag '{self.path}' does not exist")
        #: What could not be read (a file or part of one), one line each, in order found.
        self.problems: List[str] = []
        #: Messages metadata.yaml says the bag holds (None without a metadata.yaml).
        self.declared: Optional[int] = None
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        self._copies: Dict[Path, Path] = {}  # decompressed / merged copy -> the bag's file
        self._parts = [self._open_part(f) for f in self._storage_files()]
        self.topics: Dict[str, BagTopic] = self._collect_topics()

    @property
    def damaged(self) -> bool:
        """True when some file (or part of one) could not be read."""
        return bool(self.problems)

    def count(self, topics: Optional[Iterable[str]] = None) -> int:
        return sum(self.topics[t].count for t in self.select(topics))

    def topics_of_type(self, *msgtypes: str) -> List[str]:
        return sorted(t.name for t in self.topics.values() if t.msgtype in msgtypes)

    def messages(self, topics: Optional[Iterable[str]] = None) -> Iterator[BagMessage]:
        """Messages of `topics` (default: all), in log-time order across the storage files
        (file order within a damaged file). Damage found while reading goes to `problems`."""
        wanted = set(self.select(topics))
        streams = [self._part_messages(part, wanted) for part in self._parts]
        yield from heapq.merge(*streams, key=lambda m: m.timestamp)

    def select(self, topics: Optional[Iterable[str]]) -> List[str]:
        """`topics` (default: all) sorted, or TopicNotFoundError naming those not in the bag."""
        wanted = set(topics) if topics else set(self.topics)
        missing = wanted - set(self.topics)
        if missing:
            raise TopicNotFoundError(f"topic(s) {sorted(missing)} not in bag '{self.path}' "
                                     f"(it has {sorted(self.topics)})")
        return sorted(wanted)

    def deserialize(self, msg: BagMessage, cls: Optional[type] = None):
        """The rclpy message of `msg` (class `cls`, default: that of its type), or None when its
        bytes do not deserialize; that is named in `problems`."""
        from rclpy.serialization import deserialize_message

        try:
            return deserialize_message(msg.data, cls or message_class(msg.msgtype))
        except Exception as exc:  # noqa: BLE001 - rclpy raises several kinds on bad CDR
            self.problem(f"{msg.topic} message at {msg.timestamp} ns in '{self.path}' does not "
                         f"deserialize as {msg.msgtype} ({exc})")
            return None

    def problem(self, text: str) -> None:
        """Note (once) and log something that could not be read."""
        if text not in self.problems:
            self.problems.append(text)
            log.warning("%s", text)

    # --- files -----------------------------------------------------------------------------

    def _storage_files(self) -> List[Path]:
        if self.path.is_file():
            if not self.path.name.endswith(STORAGE_SUFFIXES + ZSTD_SUFFIXES):
                raise BagError(f"'{self.path}' is not a bag: give a rosbag2 folder or a "
                               f"{' / '.join(STORAGE_SUFFIXES)} file")
            return [self._checkpointed(self._decompressed(self.path))]
        found = sorted((p for p in self.path.iterdir()
                        if p.is_file() and p.name.endswith(STORAGE_SUFFIXES + ZSTD_SUFFIXES)),
                       key=_natural)
        listed = self._listed_files()
        if listed is None:
            files = found
        else:
            for name in listed:
                if not (self.path / name).is_file():
                    self.problem(f"bag file '{self.path / name}' is listed in metadata.yaml "
                                 "but missing; its messages are lost")
            files = [self.path / n for n in listed if (self.path / n).is_file()]
            extra = [p for p in found if p not in files]
            if extra:
                log.warning("%s: read too, though metadata.yaml does not list them: %s",
                            self.path, ", ".join(p.name for p in extra))
            files += extra
        if not files and not self.problems:
            raise BagError(f"'{self.path}' is not a bag: no metadata.yaml and no "
                           f"{' or '.join(STORAGE_SUFFIXES)} file")
        return [self._checkpointed(self._decompressed(f)) for f in files]

    def _listed_files(self) -> Optional[List[str]]:
        """File names metadata.yaml lists (and its message count); None when there is no
        usable metadata.yaml."""
        meta = self.path / "metadata.yaml"
        if not meta.is_file():
            return None
        try:
            info = YAML(typ="safe").load(meta.read_text())["rosbag2_bagfile_information"]
            names = [PurePath(str(x)).name for x in info["relative_file_paths"]]
        except Exception as exc:  # noqa: BLE001 - any unusable metadata: read the files instead
            log.warning("%s: metadata.yaml is not usable (%s); reading the storage files", meta,
                        f"{type(exc).__name__}: {exc}")
            return None
        try:
            self.declared = int(info["message_count"])
        except (KeyError, TypeError, ValueError):
            self.declared = None
        return names

    def _decompressed(self, path: Path) -> Path:
        """`path`, or for a file compressed as a whole (`.mcap.zstd`) its decompressed copy."""
        if not path.name.endswith(ZSTD_SUFFIXES):
            return path
        out = self._scratch() / path.name[:-len(".zstd")]
        self._copies[out] = path
        try:
            with path.open("rb") as src, zstd.open(src, "rb") as z, out.open("wb") as dst:
                shutil.copyfileobj(z, dst)
        except (OSError, zstd.ZstdError, EOFError) as exc:
            self.problem(f"bag file '{path}' does not decompress ({exc}); read what came out")
        return out

    def _checkpointed(self, path: Path) -> Path:
        """`path`, or for an SQLite file whose write-ahead log was never merged into it (a
        recorder with rosbag2's `resilient` preset that was killed) a copy with the log merged:
        SQLite opened read-only as immutable would not see the log's messages."""
        wal = path.with_name(path.name + "-wal")
        if path.suffix != ".db3" or not wal.is_file() or wal.stat().st_size == 0:
            return path
        out = self._scratch() / path.name
        self._copies[out] = self._copies.get(path, path)
        try:
            shutil.copyfile(path, out)
            shutil.copyfile(wal, out.with_name(out.name + "-wal"))
            con = sqlite3.connect(out)
            try:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                con.close()
        except (OSError, sqlite3.Error) as exc:
            self.problem(f"the write-ahead log '{wal}' cannot be merged ({exc}); the messages "
                         "in it are not read")
            return path
        return out

    def _shown(self, part: "_Part") -> Path:
        """The bag's own file behind `part` (not a temporary copy of it)."""
        return self._copies.get(part.path, part.path)

    def _scratch(self) -> Path:
        """A folder for decompressed or merged copies, removed with the reader."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gaze_bag_")
        return Path(self._tmp.name)

    def _open_part(self, path: Path) -> "_Part":
        try:
            storage = _STORAGE_READERS[path.suffix](path)
            storage.open()
        except Exception as exc:  # noqa: BLE001 - whatever the reason, read it record by record
            return _Part(path, salvage=Salvage(path, _reason(exc)))
        try:
            return _Part(path, connections=list(storage.connections))
        finally:
            storage.close()

    def _collect_topics(self) -> Dict[str, BagTopic]:
        counts: Dict[str, int] = {}
        types: Dict[str, str] = {}
        qos: Dict[str, List[Qos]] = {}
        for part in self._parts:
            if part.salvage is not None:
                intact = 0
                for msg in scan(part.salvage):
                    counts[msg.topic] = counts.get(msg.topic, 0) + 1
                    intact += 1
                self.problem(damage_text(self._shown(part), part.salvage.damage, intact))
                described = [(n, t, q) for n, (t, q) in part.salvage.topics.items()]
            else:
                described = [(c.topic, c.msgtype, c.ext.offered_qos_profiles)
                             for c in part.connections]
                for c in part.connections:
                    counts[c.topic] = counts.get(c.topic, 0) + c.msgcount
            for name, msgtype, offered in described:
                types.setdefault(name, msgtype)
                qos.setdefault(name, list(offered))
        return {name: BagTopic(name, types[name], counts.get(name, 0), tuple(qos[name]))
                for name in sorted(types)}

    def _part_messages(self, part: "_Part", wanted: set) -> Iterator[BagMessage]:
        if part.salvage is not None:
            for msg in scan(Salvage(part.path, part.salvage.damage)):
                if msg.topic in wanted:
                    yield BagMessage(msg.topic, msg.msgtype, msg.timestamp, _payload(msg.data))
            return
        conns = [c for c in part.connections if c.topic in wanted]
        if not conns:
            return
        storage = _STORAGE_READERS[part.path.suffix](part.path)
        try:
            storage.open()
        except Exception as exc:  # noqa: BLE001 - it opened a moment ago; say why not now
            self.problem(f"bag file '{self._shown(part)}' cannot be opened any more: "
                         f"{_reason(exc)}")
            return
        try:
            for conn, stamp, data in storage.messages(conns):
                yield BagMessage(conn.topic, conn.msgtype, stamp, _payload(data))
        except Exception as exc:  # noqa: BLE001 - keep what was read, name the file
            self.problem(damage_text(self._shown(part), _reason(exc)))
        finally:
            storage.close()


def damage_text(path: Path, reason: str, intact: Optional[int] = None) -> str:
    read = "" if intact is None else f"; {intact} intact message(s) read"
    return f"bag file '{path}' is damaged ({reason}){read}, the rest of that file is lost"


def _payload(data) -> bytes:
    """The CDR bytes of a message, decompressed if rosbag2 compressed it (compression_mode:
    message); CDR starts with a zero byte, a zstd frame with its magic number."""
    data = bytes(data)
    return zstd.decompress(data) if data[:4] == ZSTD_MAGIC else data


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _natural(path: Path):
    """Sort key: name_2 before name_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


class BagWriter:
    """A new bag; a topic's connection is described from the typestore when first added."""

    def __init__(self, path, storage: str = STORAGE_NAMES[0]):
        self.path = Path(path)
        if storage not in STORAGES:
            raise ValueError(f"unknown storage '{storage}' (known: {', '.join(STORAGES)})")
        if self.path.exists():
            raise BagError(f"'{self.path}' exists already; a bag is never overwritten")
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"cannot create bag '{self.path}': {exc}") from exc
        self._connections: Dict[str, object] = {}

    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Qos] = ()) -> None:
        if topic in self._connections:
            return
        check_known(msgtype)
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=typestore(), offered_qos_profiles=list(qos))

    def write(self, topic: str, timestamp: int, data: bytes) -> None:
        self._writer.write(self._connections[topic], timestamp, data)

    def close(self) -> None:
        """Writes the index and metadata.yaml: only a closed bag is complete."""
        if self._writer.storage is not None:
            self._writer.close()

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
