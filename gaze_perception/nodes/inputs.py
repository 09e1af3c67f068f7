"""What consumer nodes do with their inputs before any work: join the messages of one frame by
exact header (stamp and frame_id) over a window sized in time, and refuse messages that would
stall a node or carry non-finite numbers. One implementation for the paired nodes (image +
faces) and the attention node (faces + eye states + gaze targets)."""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Dict, Iterable, Optional

#: joined keys, keys of dropped frames and keys of duplicates are remembered this many
#: windows (and at most RECENT_KEYS of each), to recognise a late partner or a repeated stamp
REMEMBER_WINDOWS = 3.0
RECENT_KEYS = 4096
#: the auto window: this many times the longest recent wait for a partner, plus MARGIN_S
WINDOW_FACTOR, MARGIN_S, MIN_SAMPLES = 2.0, 0.5, 5
#: consumers refuse FaceArrays with more faces than this by default (parameter `max_faces`)
MAX_FACES = 100
#: waiting frames marked as the likely next answer of a `follows` partner (see StampJoin):
#: at least this many, and those that came within `follow_window` (at most FOLLOW_SPAN_MAX s)
FOLLOW_NEWEST, FOLLOW_SPAN_MAX = 4, 3.0


def stamp_key(header) -> tuple:
    return (header.stamp.sec, header.stamp.nanosec, header.frame_id)


def payload_bytes(msg) -> int:
    """The bulk of a message (an image's pixels); 0 for small messages."""
    data = getattr(msg, "data", None)
    return len(data) if data is not None else 0


class _Recent(OrderedDict):
    """key -> time, kept for `keep` seconds and at most RECENT_KEYS entries."""

    def remember(self, key, when: float) -> None:
        self[key] = when
        self.move_to_end(key)
        while len(self) > RECENT_KEYS:
            self.popitem(last=False)

    def forget_before(self, when: float) -> None:
        while self and next(iter(self.values())) < when:
            self.popitem(last=False)


class StampJoin:
    """Hands on the messages of all `kinds` that share a header once the last one is in, as
    `on_complete({kind: msg})`.

    An incomplete frame waits at most `window` seconds (wall clock, from its first message).
    With `auto_window`, once MIN_SAMPLES frames were joined the window shrinks to twice the
    longest recent wait plus MARGIN_S (the measured upstream latency, so a slow face node
    still gets its images paired) and never exceeds `window`; a partner arriving after its
    frame was dropped counts as `late` and widens the window. At most `max_pending`
    incomplete frames and `max_bytes` of payload (images) wait; the oldest go first.

    `follows` = {"faces": "image"} is for a partner computed from the newest message of another
    kind (a face node that, once free, takes the newest image): when a `faces` message
    arrives, the waiting frames with an `image` but no `faces` that came within
    `follow_window` (learnt from where the answered images lay; at most half the cache) are
    kept when the cache is full (the unmarked oldest go first) until the next `faces` message,
    since one of them is what the face node works on now. So late faces still find their
    image while the cache stays small, as long as the face node's images lag ours by less
    than half the cache.

    A second message of one kind with the same header (two images with one stamp) makes the
    frame ambiguous: everything of that header, now and for a while after, is dropped and
    counted as `duplicates`, never joined with the wrong partner.

    Counters per kind: `expired` (waited the whole window), `evicted` (cache full), `late`,
    `duplicates`; `joined` frames in all."""

    def __init__(self, kinds: Iterable[str], on_complete: Callable[[dict], None],
                 window: float = 10.0, max_pending: int = 300, max_bytes: int = 1 << 30,
                 auto_window: bool = True, size_of: Callable = payload_bytes,
                 follows: Optional[Dict[str, str]] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.kinds = frozenset(kinds)
        self.on_complete = on_complete
        self.max_window, self.max_pending, self.max_bytes = float(window), max_pending, max_bytes
        self.auto_window, self.size_of, self.clock = auto_window, size_of, clock
        self.follows = dict(follows or {})
        self._marked: list = []  # the entries marked by the newest `follows` message
        self._last_follow: Optional[float] = None  # when the newest `follows` message came
        self._leads: deque = deque(maxlen=20)
        # key -> [first arrival, {kind: msg}, bytes, kept when the cache is full]
        self.pending: "OrderedDict[tuple, list]" = OrderedDict()
        self.bytes = 0
        self.joined = 0
        self.counts: Dict[str, Dict[str, int]] = {
            what: {k: 0 for k in self.kinds} for what in ("expired", "evicted", "late",
                                                          "duplicates")}
        self._waits: deque = deque(maxlen=50)
        self._done, self._dropped, self._ambiguous = _Recent(), _Recent(), _Recent()
        self._lock = threading.Lock()

    @property
    def window(self) -> float:
        """Seconds an incomplete frame waits now."""
        if not self.auto_window or len(self._waits) < MIN_SAMPLES:
            return self.max_window
        return min(self.max_window, WINDOW_FACTOR * max(self._waits) + MARGIN_S)

    def add(self, kind: str, msg) -> None:
        key, now = stamp_key(msg.header), self.clock()
        with self._lock:
            complete = self._add(kind, msg, key, now)
            if kind in self.follows:  # whatever became of it, its sender moved on
                self._mark_recent(kind, self.follows[kind], now)
        if complete is not None:
            self.on_complete(complete)

    def _add(self, kind: str, msg, key: tuple, now: float) -> Optional[dict]:
        self._expire(now)
        entry = self.pending.get(key)
        if key in self._ambiguous or (entry is not None and kind in entry[1]) or \
                key in self._done:
            self._duplicate(key, kind, now)
            return None
        if key in self._dropped:  # its partner waited the whole window, or the cache was full
            self.counts["late"][kind] += 1
            self._waits.append(now - self._dropped[key])  # widens the auto window
            return None
        if entry is None:
            entry = self.pending[key] = [now, {}, 0, False]
        size = self.size_of(msg)
        entry[1][kind] = msg
        entry[2] += size
        self.bytes += size
        if len(entry[1]) == len(self.kinds):
            del self.pending[key]
            self.bytes -= entry[2]
            self.joined += 1
            self._waits.append(now - entry[0])
            self._done.remember(key, now)
            if kind in self.follows and self._last_follow is not None:
                # it came this long before the partner's previous answer (when it was taken)
                self._leads.append(max(0.0, self._last_follow - entry[0]))
            return entry[1]
        while len(self.pending) > self.max_pending or \
                (self.bytes > self.max_bytes and len(self.pending) > 1):
            self._evict(now)
        return None

    def follow_window(self) -> tuple:
        """(from, to) seconds before an answer of a `follows` partner in which the frame it
        takes next arrived here, from where recent answered frames lay (1 s .. 0 until
        measured)."""
        if not self._leads:
            return 1.0, 0.0
        return (min(FOLLOW_SPAN_MAX, 1.25 * max(self._leads) + 0.1),
                max(0.0, 0.75 * min(self._leads) - 0.1))

    def _mark_recent(self, kind: str, source: str, now: float) -> None:
        """The partner answered: what it worked on before is done with (unmark); what it
        works on now arrived here within `follow_window` (at least the FOLLOW_NEWEST newest
        there, at most half the cache, so newer frames keep their room)."""
        for entry in self._marked:
            entry[3] = False
        self._marked, size = [], 0
        back, front = self.follow_window()
        for entry in reversed(self.pending.values()):
            age = now - entry[0]
            if age > back and len(self._marked) >= FOLLOW_NEWEST:
                break
            if age < front or source not in entry[1] or kind in entry[1]:
                continue
            if len(self._marked) >= self.max_pending // 2 or size + entry[2] > self.max_bytes / 2:
                break
            entry[3] = True
            size += entry[2]
            self._marked.append(entry)
        self._last_follow = now

    def _evict(self, now: float) -> None:
        """Drop the oldest waiting frame not marked by `follows`, else the oldest."""
        for key, entry in self.pending.items():
            if not entry[3]:
                self.pending.move_to_end(key, last=False)
                break
        self._drop_oldest("evicted", now)

    def _duplicate(self, key: tuple, kind: str, now: float) -> None:
        self.counts["duplicates"][kind] += 1
        entry = self.pending.pop(key, None)
        if entry is not None:  # the first of the pair goes too: which one is right is unknown
            self.bytes -= entry[2]
            for k in entry[1]:
                self.counts["duplicates"][k] += 1
        self._ambiguous.remember(key, now)

    def _drop_oldest(self, reason: str, now: float) -> None:
        key, (first, parts, size, _) = self.pending.popitem(last=False)
        self.bytes -= size
        for k in parts:
            self.counts[reason][k] += 1
        self._dropped.remember(key, first)

    def _expire(self, now: float) -> None:
        window = self.window
        while self.pending and now - next(iter(self.pending.values()))[0] > window:
            self._drop_oldest("expired", now)
        horizon = now - REMEMBER_WINDOWS * self.max_window
        for recent in (self._done, self._dropped, self._ambiguous):
            recent.forget_before(horizon)

    def unjoined(self, kind: str) -> int:
        """Messages of `kind` that were never handed on, for any reason."""
        return sum(self.counts[what][kind] for what in self.counts)

    def diagnostic_values(self, prefix: str = "join") -> Dict[str, str]:
        values = {f"{prefix}_joined": str(self.joined), f"{prefix}_window_s": f"{self.window:.2f}",
                  f"{prefix}_pending": str(len(self.pending)),
                  f"{prefix}_pending_mb": f"{self.bytes / 1e6:.1f}"}
        for what, per_kind in self.counts.items():
            for kind, n in sorted(per_kind.items()):
                values[f"{prefix}_{what}_{kind}"] = str(n)
        return values


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def faces_problem(msg, max_faces: int) -> Optional[str]:
    """Why a FaceArray must not be worked on (too many faces, non-finite numbers), or None.
    Head-pose angles may be NaN (unknown) but not infinite."""
    if max_faces and len(msg.faces) > max_faces:
        return f"{len(msg.faces)} faces in one message, more than max_faces={max_faces}"
    for i, f in enumerate(msg.faces):
        if not _finite(f.score, f.x, f.y, f.width, f.height) or \
                not all(_finite(p.x, p.y, p.z) for p in f.landmarks) or \
                any(math.isinf(a) for a in (f.yaw, f.pitch, f.roll)):
            return f"face {i} has a non-finite box, score, landmark or angle"
    return None


def gaze_problem(msg) -> Optional[str]:
    """Why a GazeTargetArray must not be counted (non-finite point, in/out, score), or None."""
    for i, t in enumerate(msg.targets):
        if not _finite(t.point.x, t.point.y, t.inout, t.score, t.direction.x, t.direction.y,
                       t.direction.z):
            return f"gaze target {i} has a non-finite point, in/out, score or direction"
    return None


def eyes_problem(msg) -> Optional[str]:
    """Why an EyeStateArray must not be counted: infinite probabilities (NaN = not estimated)."""
    for i, e in enumerate(msg.eyes):
        if any(math.isinf(p) for p in (e.closed_prob, e.left_closed_prob, e.right_closed_prob)):
            return f"eye state {i} has an infinite probability"
    return None


def message_problem(kind: str, msg, max_faces: int = 0) -> Optional[str]:
    """Dispatch by input kind: `faces`, `eye_states`, `gaze_targets` (others: None)."""
    if kind == "faces":
        return faces_problem(msg, max_faces)
    if kind == "gaze_targets":
        return gaze_problem(msg)
    if kind == "eye_states":
        return eyes_problem(msg)
    return None

