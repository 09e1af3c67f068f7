"""The report's matplotlib figures (Agg backend: files only, no display needed)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..core.regions import ELSEWHERE, OUT_OF_FRAME, UNKNOWN  # noqa: E402

#: catch-all labels in greys, so the named targets stand out
FIXED_COLOURS = {OUT_OF_FRAME: "#777777", ELSEWHERE: "#b5b5b5", UNKNOWN: "#e3e3e3"}


def colours(targets) -> Dict[str, str]:
    cmap = plt.get_cmap("tab20")
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))  # ten distinct hues, then paler ones
    named = [t for t in targets if t not in FIXED_COLOURS]
    out = {t: matplotlib.colors.to_hex(cmap(order[i % 20])) for i, t in enumerate(named)}
    out.update({t: c for t, c in FIXED_COLOURS.items() if t in targets})
    return out


def _figure(session, per_row: float = 0.45):
    fig, ax = plt.subplots(figsize=(10, 1.5 + per_row * max(len(session.tracks), 1)))
    ax.set_yticks(range(len(session.tracks)),
                  [f"person {t.track_id}" for t in session.tracks])
    ax.invert_yaxis()
    return fig, ax


def _save(fig, ax, path: Path, session, legend: bool = True) -> None:
    if not session.tracks:
        ax.text(0.5, 0.5, "no tracked people in the input", ha="center", va="center",
                transform=ax.transAxes)
    if legend and session.targets:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_timeline(session, path: Path) -> None:
    """What each person looked at, over time."""
    fig, ax = _figure(session)
    col = colours(session.targets)
    for target in session.targets:
        for row, track in enumerate(session.tracks):
            bars = [(s, d) for s, d, t in session.timelines.get(track.track_id, []) if t == target]
            if bars:
                ax.broken_barh(bars, (row - 0.4, 0.8), color=col[target])
        ax.bar(0, 0, color=col[target], label=target)  # one legend entry per target
    ax.set_xlabel("seconds")
    ax.set_xlim(0, max(session.length, 1e-3))
    _save(fig, ax, path, session)


def plot_share(session, path: Path) -> None:
    """Share of each person's observed time per target."""
    fig, ax = _figure(session)
    col = colours(session.targets)
    left = [0.0] * len(session.tracks)
    for target in session.targets:
        share = [100.0 * t.session.dwell.get(target, 0.0) / t.session.observed
                 if t.session.observed > 0 else 0.0 for t in session.tracks]
        ax.barh(range(len(session.tracks)), share, left=left, color=col[target], label=target)
        left = [a + b for a, b in zip(left, share)]
    ax.set_xlabel("% of the time the person was seen")
    ax.set_xlim(0, 100)
    _save(fig, ax, path, session)


def plot_eyes_closed(session, path: Path) -> None:
    """Eyes-closed ratio per person (of the time their eye state was known)."""
    fig, ax = _figure(session)
    ratio = [t.session.closed_ratio for t in session.tracks]
    percent = [0.0 if math.isnan(r) else 100.0 * r for r in ratio]
    ax.barh(range(len(ratio)), percent, color="#4c72b0")
    for row, (r, p) in enumerate(zip(ratio, percent)):
        ax.text(min(p, 85.0) + 1, row, "no eye state" if math.isnan(r) else f"{p:.0f} %",
                va="center")
    ax.set_xlabel("% of the time with a known eye state that both eyes were closed")
    ax.set_xlim(0, 100)
    _save(fig, ax, path, session, legend=False)
