"""Validation splits shared by the trainers: whole groups (e.g. subjects, clips, sessions) go
to validation when groups are known, else each class is split in proportion. No torch."""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import List, NamedTuple, Optional, Sequence, Set, Tuple, TypeVar

from .errors import DataError

T = TypeVar("T")


def split(samples: Sequence[T], val_fraction: float, seed: int) -> Tuple[List[T], List[T]]:
    """(train, val), seeded. With groups, whole groups go to validation (group-disjoint, so no
    person is in both); without, each class is split in proportion (stratified)."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"validation fraction must lie in [0, 1), got {val_fraction}")
    if val_fraction == 0.0:
        return list(samples), []
    rng = random.Random(seed)
    if samples and samples[0].group is not None:
        sizes = Counter(s.group for s in samples)
        groups = sorted(sizes)
        if len(groups) < 2:
            raise DataError(f"a group-disjoint split needs at least two groups, got {groups}")
        rng.shuffle(groups)
        val_groups, n_val = set(), 0
        for g in groups[:-1]:  # leave at least one group for training
            if n_val >= val_fraction * len(samples):
                break
            val_groups.add(g)
            n_val += sizes[g]
        is_val = [s.group in val_groups for s in samples]
    else:
        by_class = defaultdict(list)
        for i, s in enumerate(samples):
            by_class[s.label].append(i)
        val_idx: Set[int] = set()
        for label in sorted(by_class):
            idx = by_class[label]
            rng.shuffle(idx)
            val_idx.update(idx[:round(val_fraction * len(idx))])
        is_val = [i in val_idx for i in range(len(samples))]
    return ([s for s, v in zip(samples, is_val) if not v],
            [s for s, v in zip(samples, is_val) if v])


def split_indices(labels: Sequence[int], groups: Sequence[Optional[str]], val_fraction: float,
                  seed: int) -> Tuple[List[int], List[int]]:
    """(train, val) indices of samples given by their labels and groups (`split`'s rule)."""
    items = [_Indexed(i, int(label), g) for i, (label, g) in enumerate(zip(labels, groups))]
    train, val = split(items, val_fraction, seed)
    return [s.index for s in train], [s.index for s in val]


class _Indexed(NamedTuple):
    index: int
    label: int
    group: Optional[str]
