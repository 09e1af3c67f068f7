"""What every command shares: exit codes and argparse types that check arguments before any
work starts (a bad value ends in `error: argument --x: ...`, exit 2, never a traceback)."""
from __future__ import annotations

import argparse
from pathlib import Path

#: exit codes of every command (documented in the README, "Command line")
EXIT_OK = 0
EXIT_FAILED = 1   # the check a command makes failed (e.g. `weights verify`)
EXIT_ERROR = 2    # a user mistake or an input that stops the work; nothing more was done
EXIT_PARTIAL = 3  # finished, but some input was skipped (each named on stderr); outputs are kept


def _number(kind, text: str, minimum, inclusive: bool, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
    if value != value or (value < minimum if inclusive else value <= minimum):  # NaN too
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (epochs, batch sizes, windows)."""
    return _number(int, text, 1, True, "an integer >= 1")


def nonnegative_int(text: str) -> int:
    return _number(int, text, 0, True, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (learning rates, rates)."""
    value = _number(float, text, 0.0, False, "a number > 0")
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def input_file(text: str) -> Path:
    """argparse type: an existing file (not a folder)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' is a folder; expected a file")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"'{text}' does not exist")
    return path


def input_dir(text: str) -> Path:
    """argparse type: an existing folder."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"'{text}' does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' is a file; expected a folder")
    return path


def output_file(text: str) -> Path:
    """argparse type: a file to write (its folder is made); refused when it is a folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' is a folder; expected a file name to write")
    return path


def output_dir(text: str) -> Path:
    """argparse type: a folder to write into (made when missing); refused when it is a file."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' is a file; expected a folder to write into")
    return path


def add_graph_args(p, compose_default) -> None:
    """`--threads` and `--compose` of the commands that start a graph (`up`, `demo`);
    `compose_default` None: the config's `compose:`."""
    p.add_argument("--threads", type=int, default=0, help="torch/OpenCV threads per stage "
                   "node (composed: of the one process); 0 (default) = auto: OMP_NUM_THREADS "
                   "if set, else the face detector and whole-frame gaze models share the "
                   "cores, light stages take one (composed: every core)")
    default = ("the config's `compose:`, else separate" if compose_default is None else
               "compose" if compose_default else "separate")
    p.add_argument("--compose", action=argparse.BooleanOptionalAction, default=compose_default,
                   help="every node in one process, the face node handing images and faces to "
                   "the eye and gaze nodes directly (no copies over DDS); --no-compose: a "
                   f"process per node (default: {default})")
