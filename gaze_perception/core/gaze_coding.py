"""Infant gaze coding without torch: codes, picking the infant among the faces of a frame,
temporal smoothing, and iCatcher+'s illegal-transition rules.

A frame gets one code: where the chosen face looks (away, left, right) or no_face. Left and
right follow the convention of the labels a model was trained on.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .csv_io import reader as csv_reader
from .types import AWAY, CODES, LEFT, NO_FACE, RIGHT, Face

#: what a classifier predicts from a face crop, in this order
GAZE_CLASSES = CODES[:3]


@dataclass
class FrameCode:
    """The coding of one frame. `probs`: away, left, right, no_face of this frame alone;
    `code` and `confidence` are smoothed (equal to the raw ones until a Smoother ran)."""

    face_index: int
    probs: np.ndarray
    raw_code: int
    code: int
    confidence: float
    track_id: int = 0
    box: Optional[Tuple[float, float, float, float]] = None  # the coded face, pixels

    @classmethod
    def no_face(cls) -> "FrameCode":
        return cls(-1, np.eye(4)[NO_FACE], NO_FACE, NO_FACE, 1.0)

    @classmethod
    def from_probs(cls, face: Face, face_index: int, gaze_probs: Sequence[float]) -> "FrameCode":
        """Coding of a frame whose face `face_index` got class probabilities (away, left, right)."""
        probs = np.append(np.asarray(gaze_probs, float), 0.0)
        code = int(np.argmax(probs))
        return cls(face_index, probs, code, code, float(probs[code]), int(face.track_id),
                   (face.x, face.y, face.width, face.height))


# -- which face is the infant ------------------------------------------------------------------
def _icatcher_score(f: Face) -> float:
    """iCatcher+'s default: low in the frame and square (a parent's face is higher or cut off)."""
    return min(f.width, f.height) / max(f.width, f.height) * (f.y + f.height)


#: policy name -> score; the face with the highest score is coded
SELECTIONS: Dict[str, Callable[[Face], float]] = {
    "icatcher": _icatcher_score,
    "lowest": lambda f: f.y + f.height,
    "smallest": lambda f: -f.width * f.height,
    "largest": lambda f: f.width * f.height,
    "score": lambda f: f.score,
}


def check_selection(policy: str) -> str:
    if policy not in SELECTIONS:
        raise ValueError(f"unknown face selection '{policy}'; use one of {', '.join(SELECTIONS)}")
    return policy


def select_infant(faces: Sequence[Face], policy: str = "icatcher") -> Optional[int]:
    """Index of the face to code, or None when no face has an area."""
    score = SELECTIONS[check_selection(policy)]
    scored = [(score(f), i) for i, f in enumerate(faces) if f.width > 0 and f.height > 0]
    return max(scored)[1] if scored else None


# -- iCatcher+ illegal transitions ------------------------------------------------------------
#: iCatcher+ class numbers in its rule files. -1 (no infant face) becomes no_face: our selection
#: always codes a face when there is one. -3 ("none", not yet coded) never occurs here.
ICATCHER_CLASSES = {0: AWAY, 1: LEFT, 2: RIGHT, -2: NO_FACE, -1: NO_FACE}
RULES_HEADER = ["illegal_transition", "corrected_transition"]


class TransitionError(ValueError):
    """A rule file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class TransitionRule:
    illegal: Tuple[int, ...]
    corrected: Tuple[int, ...]


def _rule_codes(text: str, where: str) -> Tuple[int, ...]:
    text = text.strip()
    if not re.fullmatch(r"(-?\d)+", text):
        raise TransitionError(f"{where}: '{text}' is not a sequence of class numbers such as "
                              "\"1-21\" (left, no face, left)")
    numbers = [int(t) for t in re.findall(r"-?\d", text)]
    if -3 in numbers:
        raise TransitionError(f"{where}: class -3 (none) marks frames iCatcher+ has not coded "
                              "yet; every frame is coded here, so the rule could never apply")
    bad = sorted({n for n in numbers if n not in ICATCHER_CLASSES})
    if bad:
        raise TransitionError(f"{where}: unknown class(es) {bad} in '{text}'; valid: "
                              "0 away, 1 left, 2 right, -1 no infant face, -2 no face")
    return tuple(ICATCHER_CLASSES[n] for n in numbers)


def read_illegal_transitions(path) -> List[TransitionRule]:
    """Rules of an iCatcher+ illegal-transitions CSV (header illegal_transition,
    corrected_transition; rows such as "101","111")."""
    path = Path(path)
    if not path.is_file():
        raise TransitionError(f"illegal-transitions file '{path}' does not exist")
    with open(path, newline="") as fh:
        rows = [r for r in csv_reader(fh, str(path)) if any(c.strip() for c in r)]
    if not rows or [c.strip() for c in rows[0]] != RULES_HEADER:
        raise TransitionError(f"{path}: the first line must be {','.join(RULES_HEADER)}")
    rules = []
    for line, row in enumerate(rows[1:], start=2):
        where = f"{path}:{line}"
        if len(row) != 2:
            raise TransitionError(f"{where}: expected two columns, got {len(row)}")
        rule = TransitionRule(_rule_codes(row[0], where), _rule_codes(row[1], where))
        if len(rule.illegal) != len(rule.corrected):
            raise TransitionError(f"{where}: the corrected transition has {len(rule.corrected)} "
                                  f"frames, the illegal one {len(rule.illegal)}")
        rules.append(rule)
    if not rules:
        raise TransitionError(f"{path}: no rules")
    return rules


# -- temporal smoothing -----------------------------------------------------------------------
SMOOTHING = ("none", "majority", "mean")


class Smoother:
    """Smooths a stream of FrameCodes online; `push` returns the frames that are final.

    * `method`: none; majority (the most frequent raw code in the window, ties to the higher
      mean probability); mean (the highest mean probability over the window). A no_face frame
      votes no_face, so an isolated missed detection is bridged and a long gap is kept.
    * `window` frames end at the frame itself, or are centred on it when `centered` (offline
      coding: no lag, but each frame is final window // 2 frames later).
    * `rules`: iCatcher+ illegal transitions, applied as it does: whenever a frame's code is
      known, each rule whose illegal sequence ends at that frame rewrites the frames it covers.
      Frames stay open to rewriting for (longest rule - 1) more frames.

    The confidence of a final code is its mean probability over the window.
    """

    def __init__(self, method: str = "mean", window: int = 5, centered: bool = False,
                 rules: Sequence[TransitionRule] = ()) -> None:
        if method not in SMOOTHING:
            raise ValueError(f"unknown smoothing '{method}'; use one of {', '.join(SMOOTHING)}")
        if int(window) < 1:
            raise ValueError(f"smoothing window must be >= 1 frame, got {window}")
        self.method, self.window = method, int(window)
        self.lead = self.window // 2 if centered else 0
        self.rules = list(rules)
        self.open_frames = max((len(r.illegal) for r in self.rules), default=1) - 1
        self._recent: Deque[FrameCode] = deque(maxlen=self.window)  # last `window` pushed
        self._waiting: Deque[Tuple[Any, FrameCode]] = deque()       # pushed, not yet smoothed
        self._open: List[list] = []                                 # [tag, code, mean probs]

    def push(self, code: FrameCode, tag: Any = None) -> List[Tuple[Any, FrameCode]]:
        """Add the next frame (with any `tag`, e.g. its header); return final (tag, code)s."""
        self._recent.append(code)
        self._waiting.append((tag, code))
        done = []
        while len(self._waiting) > self.lead:
            done += self._smooth(*self._waiting.popleft(), ahead=len(self._waiting))
        return done

    def flush(self) -> List[Tuple[Any, FrameCode]]:
        """Finish the stream: the remaining frames with windows cut at its end."""
        done = []
        while self._waiting:
            done += self._smooth(*self._waiting.popleft(), ahead=len(self._waiting))
        done += [(tag, code) for tag, code, _ in self._open]
        self._open.clear()
        return done

    def _smooth(self, tag: Any, code: FrameCode, ahead: int) -> List[Tuple[Any, FrameCode]]:
        # the frame's window ends `lead` frames after it; `ahead` frames after it are known
        recent = list(self._recent)
        after = len(recent) - ahead  # one past this frame
        window = recent[max(0, after + self.lead - self.window):after + min(self.lead, ahead)]
        mean = np.mean([c.probs for c in window], axis=0)
        if self.method == "none":
            new = code.raw_code
        elif self.method == "mean":
            new = int(np.argmax(mean))
        else:
            votes = np.bincount([c.raw_code for c in window], minlength=len(CODES))
            new = int(np.argmax(np.where(votes == votes.max(), mean, -1.0)))
        self._open.append([tag, code, mean])
        self._set(-1, new)
        self._apply_rules()
        done = []
        while len(self._open) > self.open_frames:
            tag, final, _ = self._open.pop(0)
            done.append((tag, final))
        return done

    def _set(self, k: int, new: int) -> None:
        entry = self._open[k]
        entry[1] = replace(entry[1], code=new, confidence=float(entry[2][new]))

    def _apply_rules(self) -> None:
        for rule in self.rules:
            n = len(rule.illegal)
            if n <= len(self._open) and \
                    tuple(e[1].code for e in self._open[-n:]) == rule.illegal:
                for k, new in zip(range(-n, 0), rule.corrected):
                    self._set(k, new)


def is_gaze(code: Optional[int]) -> bool:
    """True for away, left and right: the codes that agreement and kappa compare."""
    return code in (AWAY, LEFT, RIGHT)
