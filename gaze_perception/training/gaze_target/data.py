"""GazeFollow and VideoAttentionTarget annotations, read from their released files.

Each person becomes a `GazeSample` in one shape for both datasets: the head box in pixels of
its image (ordered and clipped, as the official preprocessing does) and the gaze points
normalised to [0, 1] (several annotators on the GazeFollow test split, none when the person
looks out of frame). Training, augmentation and the metrics then never ask where a sample came
from. No torch here. Images are decoded with PIL without EXIF rotation, as the official code
does, so that annotated boxes stay on the pixels they were drawn on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...core import csv_io
from ...core.head_boxes import AnnotationError, read_vat_rows
from ..errors import DataError

DATASETS = ("gazefollow", "vat")
NAMES = {"gazefollow": "GazeFollow", "vat": "VideoAttentionTarget"}
GAZEFOLLOW_FILES = {"train": "train_annotations_release.txt",
                    "test": "test_annotations_release.txt"}
#: path, idx, body box (4), eye (2), gaze (2), head box (4); then the split's own columns
GAZEFOLLOW_COMMON = 14
#: column count -> the tail of the row, per split. The `data_new` release that Gaze-LLE uses
#: adds a `source` column before `meta`, so each split has two layouts.
GAZEFOLLOW_LAYOUTS = {
    "train": {16: "inout, meta", 17: "inout, source, meta"},
    "test": {15: "meta", 16: "source, meta"},
}
#: head boxes of each VAT track are smoothed by a centred moving average of this many frames
VAT_BOX_SMOOTHING = 11

Point = Tuple[float, float]


@dataclass(frozen=True)
class GazeSample:
    """One person in one image."""
    image: str                    # path relative to the dataset root
    width: int
    height: int
    box: Tuple[float, float, float, float]  # head box (xmin, ymin, xmax, ymax), pixels
    gaze: Tuple[Point, ...]       # normalised gaze points; () = looking out of frame
    source: str                   # "annotation file:line", for messages

    @property
    def inout(self) -> int:
        return 1 if self.gaze else 0

    @property
    def normalised_box(self) -> Tuple[float, float, float, float]:
        x0, y0, x1, y1 = self.box
        return x0 / self.width, y0 / self.height, x1 / self.width, y1 / self.height


def read_split(dataset: str, root: Path, split: str, frame_stride: int = 1,
               box_smoothing: int = VAT_BOX_SMOOTHING,
               limit: Optional[int] = None) -> List[GazeSample]:
    """Samples of `split` (train|test); `frame_stride` and `box_smoothing` apply to VAT only;
    `limit` keeps the first N people (and reads only their images' sizes)."""
    if dataset == "gazefollow":
        return read_gazefollow(Path(root), split, limit)
    if dataset == "vat":
        return read_vat(Path(root), split, frame_stride, box_smoothing, limit)
    raise ValueError(f"unknown dataset '{dataset}'; use {' or '.join(DATASETS)}")


def read_gazefollow(root: Path, split: str, limit: Optional[int] = None) -> List[GazeSample]:
    """`{split}_annotations_release.txt` in either column layout. Test rows of one person (same
    image and eye position) are the annotators of one sample; training rows with inout -1
    (invalid) are dropped and inout 0 gives an out-of-frame sample."""
    path = root / GAZEFOLLOW_FILES[split]
    if not path.is_file():
        raise DataError(f"GazeFollow {split} annotations '{path}' not found")
    layouts = GAZEFOLLOW_LAYOUTS[split]
    people: Dict[tuple, dict] = {}
    for lineno, row in _csv_rows(path):
        where = f"{path}:{lineno}"
        if len(row) not in layouts:
            expected = " or ".join(f"{n} (path, ..., {tail})" for n, tail in layouts.items())
            raise DataError(f"{where}: {len(row)} columns, but a GazeFollow {split} file has "
                            f"{expected}")
        numeric = GAZEFOLLOW_COMMON + 1 if split == "train" else GAZEFOLLOW_COMMON  # + inout
        v = _numbers(row[1:numeric], where, first_column=2)
        image, eye_x, gaze, box = row[0].strip(), v[5], (v[7], v[8]), v[9:13]
        if split == "train":
            if v[13] not in (-1, 0, 1):
                raise DataError(f"{where}: inout must be 1, 0 or -1, got {row[14]!r}")
            if v[13] == -1:
                continue
            key: tuple = (where,)
            points = [gaze] if v[13] == 1 else []
        else:
            key = (image, eye_x)
            points = [gaze]
        if key in people:
            people[key]["gaze"] += points
        elif limit is None or len(people) < limit:
            people[key] = {"image": image, "box": box, "gaze": points, "source": where}
    sizes = _ImageSizes(root)
    return [_sample(p, sizes(p["image"], p["source"])) for p in people.values()]


def read_vat(root: Path, split: str, frame_stride: int = 1,
             box_smoothing: int = VAT_BOX_SMOOTHING,
             limit: Optional[int] = None) -> List[GazeSample]:
    """`annotations/<split>/<show>/<clip>/<person>.txt` with images under
    `images/<show>/<clip>/`. Every `frame_stride`-th frame of a clip (counting the frames any
    person is annotated in) gives one sample per person there; gaze -1,-1 is out of frame and
    one slightly negative coordinate is clamped to 0, as the official preprocessing does."""
    if frame_stride < 1:
        raise ValueError(f"frame stride must be at least 1, got {frame_stride}")
    ann_root = root / "annotations" / split
    if not ann_root.is_dir():
        raise DataError(f"VideoAttentionTarget {split} annotations '{ann_root}' not found "
                        "(expected annotations/<split>/<show>/<clip>/<person>.txt)")
    samples: List[GazeSample] = []
    sizes = _ImageSizes(root)
    for clip in sorted(p for p in ann_root.glob("*/*") if p.is_dir()):
        tracks = [_vat_track(f, box_smoothing) for f in sorted(clip.glob("*.txt"))]
        frames = sorted({frame for track in tracks for frame in track})
        if not frames:
            continue
        image_dir = Path("images") / clip.relative_to(ann_root)
        # One size per clip, as the official preprocessing reads it: a clip's frames share it.
        first = next(t[frames[0]] for t in tracks if frames[0] in t)
        width, height = sizes((image_dir / frames[0]).as_posix(), first["source"])
        for frame in frames[::frame_stride]:
            for track in tracks:
                if frame in track:
                    samples.append(_vat_sample(track[frame], (image_dir / frame).as_posix(),
                                               width, height))
                    if limit is not None and len(samples) >= limit:
                        return samples
    return samples


def group_frames(samples: Sequence[GazeSample]) -> List[List[GazeSample]]:
    """Samples grouped by image, in order of first appearance: one model pass per image."""
    frames: Dict[str, List[GazeSample]] = {}
    for s in samples:
        frames.setdefault(s.image, []).append(s)
    return list(frames.values())


def load_image(root: Path, sample: GazeSample) -> np.ndarray:
    """RGB uint8 pixels of the sample's image."""
    path = Path(root) / sample.image
    try:
        with Image.open(path) as im:
            image = np.array(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read image '{path}' (from {sample.source}): {exc}") from None
    if image.shape[1::-1] != (sample.width, sample.height):
        raise DataError(f"image '{path}' is {image.shape[1]}x{image.shape[0]} but was "
                        f"{sample.width}x{sample.height} when the annotations were read")
    return image


def _csv_rows(path: Path) -> Iterator[Tuple[int, List[str]]]:
    with open(path, newline="") as fh:
        for lineno, row in enumerate(csv_io.reader(fh, str(path)), 1):
            if row and any(v.strip() for v in row):
                yield lineno, row


def _numbers(values: Sequence[str], where: str, first_column: int) -> List[float]:
    try:
        return [float(v) for v in values]
    except ValueError:
        raise DataError(f"{where}: expected numbers in columns {first_column}-"
                        f"{first_column + len(values) - 1}, got {','.join(values)!r}") from None


class _ImageSizes:
    """(width, height) from image headers, read once per file; errors name the annotation."""

    def __init__(self, root: Path):
        self.root, self.known = root, {}

    def __call__(self, image: str, source: str) -> Tuple[int, int]:
        if image not in self.known:
            path = self.root / image
            try:
                with Image.open(path) as im:
                    self.known[image] = im.size
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"{source}: cannot read image '{path}': {exc}") from None
        return self.known[image]


def _sample(person: dict, size: Tuple[int, int]) -> GazeSample:
    width, height = size
    return GazeSample(image=person["image"], width=width, height=height,
                      box=_clip_box(person["box"], width, height),
                      gaze=tuple((float(x), float(y)) for x, y in person["gaze"]),
                      source=person["source"])


def _clip_box(box: Sequence[float], width: int, height: int) -> Tuple[float, float, float, float]:
    """Order inverted corners and move the box inside the image (official preprocessing)."""
    x0, y0, x1, y1 = box
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    return max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))


def _vat_track(path: Path, smoothing: int) -> Dict[str, dict]:
    """One person file: frame name -> {box (smoothed), gaze pixels, source}."""
    try:
        rows = read_vat_rows(path, gaze_required=True, nonempty_boxes=False)
    except AnnotationError as exc:
        raise DataError(str(exc)) from None
    if not rows:
        return {}
    boxes = _moving_average(np.asarray([r.box for r in rows], dtype=np.float64), smoothing)
    return {r.frame: {"box": box, "gaze": list(r.gaze), "source": r.where}
            for r, box in zip(rows, boxes.tolist())}


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over rows, edges padded with the first / last row."""
    if window <= 1:
        return x
    half = window // 2
    padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)])
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(x.shape[1])],
                    axis=1)


def _vat_sample(entry: dict, image: str, width: int, height: int) -> GazeSample:
    gx, gy = entry["gaze"]
    if gx >= 0 > gy:
        gy = 0.0
    elif gy >= 0 > gx:
        gx = 0.0
    gaze = [(gx / width, gy / height)] if gx >= 0 and gy >= 0 else []
    return _sample({"image": image, "box": entry["box"], "gaze": gaze,
                    "source": entry["source"]}, (width, height))
