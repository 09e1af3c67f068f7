"""Reading what is intact in a damaged storage file, record by record, without its index.

rosbags (like rosbag2) needs an MCAP file's footer and summary, written last; a recorder that
was killed or a copy that was cut has neither. MCAP is a sequence of length-prefixed records,
so everything before the cut can still be read: whole chunks, and the complete messages of an
uncompressed chunk that was cut. SQLite walks its b-tree until the first missing page.
"""
from __future__ import annotations

import mmap
import sqlite3
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from rosbags.interfaces import Qos
from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.metadata import parse_qos
from rosbags.rosbag2.storage_mcap import decompress, get_qos

MCAP_MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x02, 0x03, 0x04, 0x05, 0x06
_RECORD_HEAD = 9  # opcode (1) + length (8)


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    timestamp: int  # log time, ns
    data: bytes


@dataclass
class Salvage:
    """What a scan of one file found: topics (name → type, offered QoS), and why the file could
    not be read normally (refined to where it breaks)."""

    path: Path
    damage: str
    topics: Dict[str, Tuple[str, List[Qos]]] = field(default_factory=dict)


def scan(found: Salvage) -> Iterator[BagMessage]:
    """Yield every intact message of `found.path` (.mcap or .db3), filling in `found`."""
    reader = _salvage_mcap if found.path.suffix == ".mcap" else _salvage_sqlite
    return reader(found)


class _Cut(Exception):
    """The data ends inside a record."""


def _records(buf: memoryview, start: int) -> Iterator[Tuple[int, memoryview, bool]]:
    """(opcode, body, complete) of each record from `start`; a cut record comes last."""
    pos = start
    while pos < len(buf):
        if pos + _RECORD_HEAD > len(buf):
            raise _Cut(f"cut inside a record header at byte {pos}")
        op = buf[pos]
        (size,) = struct.unpack_from("<Q", buf, pos + 1)
        body_start, end = pos + _RECORD_HEAD, pos + _RECORD_HEAD + size
        yield op, buf[body_start:min(end, len(buf))], end <= len(buf)
        if end > len(buf):
            raise _Cut(f"the data ends at byte {len(buf)}, inside a record that starts at "
                       f"byte {pos}")
        if op == OP_FOOTER:
            return
        pos = end


class _Fields:
    """Little-endian field reader over a record body; running off the end means a cut record."""

    def __init__(self, body: memoryview):
        self.body, self.pos = body, 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.body):
            raise _Cut("cut inside a record")
        out = self.body[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, fmt: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return bytes(self.take(self.uint("<I"))).decode()

    def rest(self) -> memoryview:
        return self.body[self.pos:]


def _salvage_mcap(result: Salvage) -> Iterator[BagMessage]:
    with open(result.path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            result.damage = "the file is empty"
            return
        # The map closes when the last view of it is collected (views may outlive this frame).
        buf = memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
    if bytes(buf[:8]) != MCAP_MAGIC:
        result.damage = "no MCAP magic at the start"
        return
    try:
        yield from _mcap_stream(buf, 8, result, {}, {})
    except _Cut as cut:
        result.damage = str(cut)


def _mcap_stream(buf: memoryview, start: int, result: Salvage, schemas: Dict[int, str],
                 channels: Dict[int, Tuple[str, str]]) -> Iterator[BagMessage]:
    """Messages of the records in `buf`, descending into chunks; schemas and channels are
    collected on the way (MCAP writes them before the first message that uses them)."""
    for op, body, complete in _records(buf, start):
        if op == OP_CHUNK:
            yield from _mcap_chunk(body, complete, result, schemas, channels)
            continue
        if not complete:
            continue  # _records raises _Cut when asked for the next record
        f = _Fields(body)
        if op == OP_SCHEMA:
            key = f.uint("<H")
            schemas[key] = f.string()
        elif op == OP_CHANNEL:
            key, schema = f.uint("<H"), f.uint("<H")
            topic = f.string()
            f.string()  # message encoding: cdr
            qos = _mcap_qos(bytes(f.take(f.uint("<I"))))
            channels[key] = (topic, schemas.get(schema, ""))
            result.topics.setdefault(topic, (schemas.get(schema, ""), qos))
        elif op == OP_MESSAGE:
            channel = f.uint("<H")
            f.take(4)  # sequence
            log_time = f.uint("<Q")
            f.take(8)  # publish time
            if channel in channels:
                topic, msgtype = channels[channel]
                yield BagMessage(topic, msgtype, log_time, bytes(f.rest()))


def _mcap_chunk(body: memoryview, complete: bool, result: Salvage, schemas: Dict[int, str],
                channels: Dict[int, Tuple[str, str]]) -> Iterator[BagMessage]:
    f = _Fields(body)
    f.take(16)  # message start / end time
    uncompressed_size, crc = f.uint("<Q"), f.uint("<I")
    compression = f.string()
    records_size = f.uint("<Q")
    if complete:
        try:
            data = decompress(bytes(f.take(records_size)), compression, uncompressed_size, crc)
        except ReaderError as exc:
            raise _Cut(f"unreadable chunk: {exc}") from None
        yield from _mcap_stream(memoryview(data), 0, result, schemas, channels)
    elif compression == "":  # a cut compressed chunk is lost as a whole
        try:
            yield from _mcap_stream(f.rest(), 0, result, schemas, channels)
        except _Cut:
            pass  # the enclosing record reports where the file was cut


def _salvage_sqlite(result: Salvage) -> Iterator[BagMessage]:
    with tempfile.TemporaryDirectory(prefix="gaze_bag_salvage_") as tmp:
        try:
            path = _whole_pages_copy(result.path, Path(tmp) / result.path.name)
            con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        except (OSError, sqlite3.Error) as exc:
            result.damage = f"not readable as SQLite: {exc}"
            return
        try:
            topics = {}
            for key, name, msgtype, qos in con.execute(
                    "SELECT id, name, type, offered_qos_profiles FROM topics"):
                topics[key] = (name, msgtype)
                result.topics.setdefault(name, (msgtype, _sqlite_qos(qos)))
            for key, stamp, data in con.execute("SELECT topic_id, timestamp, data FROM messages"):
                if key in topics:
                    yield BagMessage(topics[key][0], topics[key][1], stamp, bytes(data))
        except sqlite3.Error as exc:
            result.damage = f"the file ends at byte {result.path.stat().st_size}; SQLite: {exc}"
        finally:
            con.close()


def _whole_pages_copy(path: Path, copy: Path) -> Path:
    """`path` itself if it is complete, else a copy of its whole pages. SQLite trusts the page
    count in the file header and refuses a file that is shorter; the copy's header says how
    many pages are really there, so every page before the cut stays readable."""
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        raise OSError("no SQLite header")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = path.stat().st_size // page_size
    if pages >= int.from_bytes(header[28:32], "big"):
        return path
    with path.open("rb") as src, copy.open("wb") as dst:
        dst.write(src.read(pages * page_size))
        dst.seek(28)
        dst.write(pages.to_bytes(4, "big"))
    return copy


def _mcap_qos(metadata: bytes) -> List[Qos]:
    try:
        return get_qos(metadata)
    except Exception:  # noqa: BLE001 - QoS is a hint for replay; a garbled one is dropped
        return []


def _sqlite_qos(text: str) -> List[Qos]:
    try:
        return parse_qos(text or "")
    except Exception:  # noqa: BLE001 - as above
        return []
