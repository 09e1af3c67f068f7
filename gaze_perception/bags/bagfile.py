"""Reading and writing rosbag2 bags (MCAP or SQLite 3) through rosbags, with our types.

Bags written by any rosbag2 writer read the same way. A storage file that rosbags refuses (no
index or metadata because a recorder was killed, a copy that was cut) is read record by record
instead (salvage.py): its intact messages come first, then BagDamagedError names the file.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from rosbags.interfaces import Qos
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError

from . import STORAGE_NAMES
from .errors import BagDamagedError, BagError, TopicNotFoundError
from .salvage import BagMessage, Salvage, scan
from .typesys import check_known, typestore

STORAGES = {name: StoragePlugin[name.upper()] for name in STORAGE_NAMES}
STORAGE_SUFFIXES = (".mcap", ".db3")
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


class BagReader:
    """Topics and messages of a bag: a rosbag2 directory, or a single .mcap / .db3 file."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag '{self.path}' does not exist")
        self._salvage: List[Salvage] = []
        try:
            with Reader(self.path) as reader:
                self.topics: Dict[str, BagTopic] = {
                    name: BagTopic(name, info.msgtype or "", info.msgcount,
                                   tuple(info.connections[0].ext.offered_qos_profiles))
                    for name, info in reader.topics.items()}
        except (ReaderError, FileNotFoundError, sqlite3.Error) as exc:  # no metadata.yaml, ...
            self._salvage = [Salvage(f, str(exc)) for f in self._storage_files(exc)]
            self.topics = self._salvaged_topics()

    @property
    def damaged(self) -> bool:
        """True when rosbags refused the bag and it is read record by record (salvage.py)."""
        return bool(self._salvage)

    def count(self, topics: Optional[Iterable[str]] = None) -> int:
        return sum(self.topics[t].count for t in self.select(topics))

    def topics_of_type(self, *msgtypes: str) -> List[str]:
        return sorted(t.name for t in self.topics.values() if t.msgtype in msgtypes)

    def messages(self, topics: Optional[Iterable[str]] = None) -> Iterator[BagMessage]:
        """Messages of `topics` (default: all) in log-time order. For a damaged bag: the intact
        messages in file order, then BagDamagedError."""
        wanted = set(self.select(topics))
        if self._salvage:
            yield from self._salvaged_messages(wanted)
            return
        read = 0
        try:
            with Reader(self.path) as reader:
                conns = [c for c in reader.connections if c.topic in wanted]
                for conn, stamp, data in reader.messages(conns):
                    read += 1
                    yield BagMessage(conn.topic, conn.msgtype, stamp, bytes(data))
        except (ReaderError, sqlite3.Error) as exc:
            raise BagDamagedError(self.path, str(exc), read) from exc

    def select(self, topics: Optional[Iterable[str]]) -> List[str]:
        """`topics` (default: all) sorted, or TopicNotFoundError naming those not in the bag."""
        wanted = set(topics) if topics else set(self.topics)
        missing = wanted - set(self.topics)
        if missing:
            raise TopicNotFoundError(f"topic(s) {sorted(missing)} not in bag '{self.path}' "
                                     f"(it has {sorted(self.topics)})")
        return sorted(wanted)

    def _storage_files(self, cause: Exception) -> List[Path]:
        if self.path.is_file():
            return [self.path]
        files = [p for p in self.path.iterdir() if p.suffix in STORAGE_SUFFIXES]
        if not files:
            raise BagError(f"'{self.path}' is not a readable bag ({cause}) and holds no "
                           f"{' or '.join(STORAGE_SUFFIXES)} file") from cause
        return sorted(files, key=lambda p: (len(p.name), p.name))  # name_2 before name_10

    def _salvaged_topics(self) -> Dict[str, BagTopic]:
        counts: Dict[str, int] = {}
        for found in self._salvage:
            for msg in scan(found):
                counts[msg.topic] = counts.get(msg.topic, 0) + 1
        return {name: BagTopic(name, msgtype, counts.get(name, 0), tuple(qos))
                for found in self._salvage for name, (msgtype, qos) in found.topics.items()}

    def _salvaged_messages(self, wanted: set) -> Iterator[BagMessage]:
        read = 0
        for found in self._salvage:
            for msg in scan(Salvage(found.path, found.damage)):
                read += 1
                if msg.topic in wanted:
                    yield msg
        first = self._salvage[0]
        raise BagDamagedError(first.path, first.damage, read)


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
