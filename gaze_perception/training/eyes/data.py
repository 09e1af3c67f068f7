"""Labelled eye-crop datasets (class folders or a CSV), file lists and validation splits.

No torch here: samples are plain records, images come back as one uint8 array, because eye
crops are tiny and an in-memory array feeds a CPU far faster than per-file loading.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set

import cv2
import numpy as np
from tqdm import tqdm

from ...core import csv_io
from ..errors import DataError

#: spellings accepted for the two fixed classes (compared case-insensitively)
ALIASES = {"open": "open", "opened": "open", "closed": "closed", "close": "closed"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass(frozen=True)
class Sample:
    name: str             # id used in file lists and reports: path relative to the data root
    path: Path
    label: int            # index into the class list
    group: Optional[str]  # e.g. subject id; splits never separate one group


def label_index(raw: str, classes: Sequence[str], where: str) -> int:
    """Index of label `raw` in `classes` (open/opened, closed/close, or the third class name)."""
    key = raw.strip().lower()
    name = ALIASES.get(key, key)
    lowered = [c.lower() for c in classes]
    if name not in lowered:
        raise DataError(f"unknown label '{raw}' in {where}; expected one of "
                        f"{', '.join(classes)} (open/opened, closed/close)")
    return lowered.index(name)


def load_samples(data: Path, classes: Sequence[str], image_root: Optional[Path] = None,
                 group_column: Optional[str] = None,
                 group_regex: Optional[str] = None) -> List[Sample]:
    """Samples of a class-folder tree (`data/<class>/*.png|jpg`) or a CSV with `file,label`.

    CSV paths are relative to `image_root` (default: the CSV's folder). The group of a sample
    is the CSV column `group_column`, or group 1 (else the whole match) of `group_regex`
    searched in its name.
    """
    data = Path(data)
    if data.is_file():
        samples = _from_csv(data, classes, Path(image_root or data.parent), group_column)
    elif data.is_dir():
        if group_column:
            raise DataError("--group-column needs CSV data; use --group-regex for folders")
        samples = _from_folders(data, classes)
    else:
        raise DataError(f"data '{data}' is neither a CSV file nor a folder")
    if group_regex:
        samples = [_with_regex_group(s, re.compile(group_regex)) for s in samples]
    return samples


def _from_folders(root: Path, classes: Sequence[str]) -> List[Sample]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"'{root}' has no class folders (expected e.g. {root}/open, "
                        f"{root}/closed)")
    samples = []
    for folder in folders:
        label = label_index(folder.name, classes, f"folder name '{folder}'")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"class folder '{folder}' holds no .png/.jpg/.jpeg/.bmp images")
        samples += [Sample(p.relative_to(root).as_posix(), p, label, None) for p in files]
    return samples


def _from_csv(path: Path, classes: Sequence[str], root: Path,
              group_column: Optional[str]) -> List[Sample]:
    with open(path, newline="") as fh:
        reader = csv_io.dict_reader(fh, str(path))
        header = [h.strip() for h in (reader.fieldnames or [])]
        needed = ["file", "label"] + ([group_column] if group_column else [])
        missing = [c for c in needed if c not in header]
        if missing:
            raise DataError(f"CSV '{path}' lacks column(s) {missing}; header is {header}")
        reader.fieldnames = header
        samples, absent = [], []
        for line, row in enumerate(reader, start=2):
            values = [(row.get(c) or "").strip() for c in needed]
            if not all(values):
                raise DataError(f"CSV '{path}' line {line}: empty value in {needed}: {row}")
            name, label = values[0], values[1]
            file = root / name
            if not file.is_file():
                absent.append(name)
            samples.append(Sample(name, file, label_index(label, classes, f"'{path}' line {line}"),
                                  values[2] if group_column else None))
    if absent:
        raise DataError(f"{len(absent)} file(s) of '{path}' not found under '{root}' "
                        f"(first: {absent[:3]}); set --image-root")
    if not samples:
        raise DataError(f"CSV '{path}' has no rows")
    return samples


def _with_regex_group(s: Sample, pattern: re.Pattern) -> Sample:
    m = pattern.search(s.name)
    if m is None:
        raise DataError(f"group pattern '{pattern.pattern}' does not match '{s.name}'")
    return Sample(s.name, s.path, s.label, m.group(1) if pattern.groups else m.group(0))


def read_file_list(path: Path) -> Set[str]:
    """Names in a list file: one per line, blank lines and '#' comments ignored."""
    lines = (ln.strip() for ln in Path(path).read_text().splitlines())
    return {ln for ln in lines if ln and not ln.startswith("#")}


def select(samples: List[Sample], only: Optional[Set[str]] = None,
           exclude: Optional[Set[str]] = None) -> List[Sample]:
    """Keep the samples named in `only`, drop those in `exclude`; a listed name missing from the
    data is an error (a list for another dataset must not silently select nothing)."""
    names = {s.name for s in samples}
    for kind, listed in (("--only-files", only), ("--exclude-files", exclude)):
        unknown = sorted((listed or set()) - names)
        if unknown:
            raise DataError(f"{kind}: {len(unknown)} listed name(s) are not in the data "
                            f"(first: {unknown[:3]})")
    return [s for s in samples if (only is None or s.name in only)
            and (exclude is None or s.name not in exclude)]


def load_images(samples: Iterable[Sample], size: int, channels: int) -> np.ndarray:
    """All images resized to size x size: uint8 (N, size, size) for 1 channel, else (N, .., 3)
    RGB."""
    samples = list(samples)
    out = np.empty((len(samples), size, size) + ((3,) if channels == 3 else ()), np.uint8)
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    for i, s in enumerate(tqdm(samples, desc="loading images", unit="img", leave=False,
                               mininterval=1.0, disable=None)):
        img = cv2.imread(str(s.path), flag)
        if img is None:
            raise DataError(f"cannot read image '{s.path}'")
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = img if channels == 1 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return out
