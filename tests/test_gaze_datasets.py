"""GazeFollow / VideoAttentionTarget readers (both GazeFollow column layouts, VAT per-person
files with out-of-frame rows), the training augmentations and the Gaussian targets.

`write_gazefollow` and `write_vat` build tiny copies in the released formats; the training
tests use them too."""
from pathlib import Path
from typing import List, Sequence

import numpy as np
import pytest
from PIL import Image

from gaze_perception.training.gaze_target import augment as ga
from gaze_perception.training.errors import DataError
from gaze_perception.training.gaze_target.data import group_frames, load_image, read_gazefollow, read_vat

W, H = 96, 64  # image size of the tiny datasets


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _gf_row(path, idx, eye, gaze, box, tail: Sequence) -> str:
    body = (0, 0, W, H)
    return ",".join(str(v) for v in [path, idx, *body, *eye, *gaze, *box, *tail])


def write_gazefollow(root: Path, source_column: bool = True) -> Path:
    """Train: five in-frame people, one looking out (inout 0), one invalid row (-1); test: two
    images, three people with three annotators each. `source_column` picks the layout."""
    src = ["gazefollow"] if source_column else []
    train = []
    for i in range(5):
        _image(root / "train" / f"{i:08d}.jpg", i)
        box = (8 + 10 * i, 6, 26 + 10 * i, 24)
        train.append(_gf_row(f"train/{i:08d}.jpg", i, (0.2, 0.2), (0.8 - 0.1 * i, 0.7),
                             box, [1, *src, "meta"]))
    train.append(_gf_row("train/00000000.jpg", 9, (0.5, 0.5), (-1, -1), (40, 30, 58, 50),
                         [0, *src, "meta"]))
    train.append(_gf_row("train/00000001.jpg", 9, (0.5, 0.5), (0.1, 0.1), (40, 30, 58, 50),
                         [-1, *src, "meta"]))
    test = []
    people = [("test/a.jpg", (0.25, 0.3), (30, 10, 10, 30)),  # inverted x corners
              ("test/a.jpg", (0.75, 0.3), (60, 8, 80, 28)),
              ("test/b.jpg", (0.5, 0.4), (35, 12, 120, 34))]  # reaches past the right border
    _image(root / "test" / "a.jpg", 10)
    _image(root / "test" / "b.jpg", 11)
    for k, (path, eye, box) in enumerate(people):
        for a, gaze in enumerate([(0.3, 0.8), (0.35, 0.75), (0.28, 0.85)]):
            test.append(_gf_row(path, k, eye, (gaze[0] + 0.1 * k, gaze[1]), box,
                                [*src, "meta"]))
    (root / "train_annotations_release.txt").write_text("\n".join(train) + "\n")
    (root / "test_annotations_release.txt").write_text("\n".join(test) + "\n")
    return root


def write_vat(root: Path, frames: int = 6) -> Path:
    """One clip per split, two people; person 2 looks out of frame (-1,-1) on odd frames and
    has a slightly negative gaze y on frame 2."""
    for split, show in (("train", "showA"), ("test", "showB")):
        names = [f"{i:08d}.jpg" for i in range(frames)]
        for i, name in enumerate(names):
            _image(root / "images" / show / "clip1" / name, 100 * len(split) + i)
        rows1, rows2 = [], []
        for i, name in enumerate(names):
            rows1.append(f"{name},{4 + i},{6},{24 + i},{26},{80 - 3 * i},{50}")
            gaze2 = "-1,-1" if i % 2 else (f"{20 + i},-2" if i == 2 else f"{20 + i},{40}")
            rows2.append(f"{name},60,30,80,50,{gaze2}")
        ann = root / "annotations" / split / show / "clip1"
        ann.mkdir(parents=True, exist_ok=True)
        (ann / "s00.txt").write_text("\n".join(rows1) + "\n")
        (ann / "s01.txt").write_text("\n".join(rows2) + "\n")
    return root


def _key(samples) -> List[tuple]:
    return [(s.image, s.width, s.height, s.box, s.gaze) for s in samples]


def test_both_gazefollow_layouts_parse_alike(tmp_path):
    new = write_gazefollow(tmp_path / "new", source_column=True)
    old = write_gazefollow(tmp_path / "old", source_column=False)
    for split in ("train", "test"):
        assert _key(read_gazefollow(new, split)) == _key(read_gazefollow(old, split))


def test_gazefollow_samples(tmp_path):
    root = write_gazefollow(tmp_path)
    train = read_gazefollow(root, "train")
    assert len(train) == 6  # the inout -1 row is dropped
    assert [s.inout for s in train] == [1, 1, 1, 1, 1, 0]
    assert train[0].gaze == ((0.8, 0.7),) and train[0].box == (8, 6, 26, 24)
    assert train[0].normalised_box == (8 / W, 6 / H, 26 / W, 24 / H)
    test = read_gazefollow(root, "test")
    assert [len(s.gaze) for s in test] == [3, 3, 3]  # annotators grouped per person
    assert test[0].box == (10, 10, 30, 30)  # inverted corners ordered
    assert test[2].box == (35, 12, W, 34)  # clipped to the image
    assert [len(f) for f in group_frames(test)] == [2, 1]
    assert load_image(root, test[2]).shape == (H, W, 3)
    assert len(read_gazefollow(root, "test", limit=2)) == 2


def test_vat_samples_stride_smoothing_and_out_of_frame(tmp_path):
    root = write_vat(tmp_path)
    every = read_vat(root, "train", frame_stride=1, box_smoothing=1)
    assert len(every) == 12
    p1 = [s for s in every if s.box[2] > 20 and s.box[0] < 20]
    assert p1[0].image == "images/showA/clip1/00000000.jpg"
    assert p1[0].gaze == ((80 / W, 50 / H),) and p1[0].box == (4, 6, 24, 26)
    p2 = [s for s in every if s.box[0] == 60]
    assert [s.inout for s in p2] == [1, 0, 1, 0, 1, 0]
    assert p2[2].gaze == ((22 / W, 0.0),)  # gaze y of -2 clamped to 0
    assert p2[1].gaze == ()

    strided = read_vat(root, "train", frame_stride=3, box_smoothing=1)
    assert [s.image[-12:] for s in strided] == ["00000000.jpg"] * 2 + ["00000003.jpg"] * 2

    smoothed = read_vat(root, "train", frame_stride=1, box_smoothing=3)
    xmin = [s.box[0] for s in smoothed if s.box[0] < 20]
    # centred mean of 3 with edge padding: x = 4..9 -> (4+4+5)/3, 5, 6, 7, 8, (8+9+9)/3
    assert xmin == pytest.approx([13 / 3, 5, 6, 7, 8, 26 / 3])
    assert len(read_vat(root, "test", frame_stride=1, limit=5)) == 5


@pytest.mark.parametrize("split, line, text, message", [
    ("train", 2, "train/00000001.jpg,1,0,0,96,64,0.2,0.2,0.7,0.7,8,6,26,24",
     r"train_annotations_release.txt:2: 14 columns, but a GazeFollow train file has 16"),
    ("train", 3, "train/00000002.jpg,2,0,0,96,64,0.2,0.2,x,0.7,8,6,26,24,1,meta",
     r"train_annotations_release.txt:3: expected numbers in columns 2-15"),
    ("train", 1, "train/00000000.jpg,0,0,0,96,64,0.2,0.2,0.8,0.7,8,6,26,24,2,meta",
     r"train_annotations_release.txt:1: inout must be 1, 0 or -1"),
    ("test", 4, "test/a.jpg,0,0,0,96,64,0.2,0.2,0.3,0.8,10,10,30,30,a,b,c",
     r"test_annotations_release.txt:4: 17 columns, but a GazeFollow test file has 15"),
])
def test_malformed_gazefollow_rows_name_file_and_line(tmp_path, split, line, text, message):
    root = write_gazefollow(tmp_path, source_column=False)
    path = root / f"{split}_annotations_release.txt"
    rows = path.read_text().splitlines()
    rows[line - 1] = text
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=message):
        read_gazefollow(root, split)


def test_malformed_vat_rows_and_missing_files_are_clear(tmp_path):
    root = write_vat(tmp_path)
    person = root / "annotations" / "test" / "showB" / "clip1" / "s01.txt"
    rows = person.read_text().splitlines()
    rows[3] = "00000003.jpg,60,30,80,50"
    person.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"s01.txt:4: 5 columns, but a VideoAttentionTarget "
                                        r"person file has 7"):
        read_vat(root, "test")
    rows[3] = "00000003.jpg,60,30,80,fifty,-1,-1"
    person.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"s01.txt:4: expected numbers in columns 2-7"):
        read_vat(root, "test")
    with pytest.raises(DataError, match="annotations/train' not found"):
        read_vat(tmp_path / "nowhere", "train")
    gf = write_gazefollow(tmp_path / "gf")
    (gf / "test" / "b.jpg").unlink()
    with pytest.raises(DataError, match=r"test_annotations_release.txt:7: cannot read image"):
        read_gazefollow(gf, "test")


def _reference_heatmap(x: float, y: float, size=64, sigma=3) -> np.ndarray:
    """The target written out cell by cell: Gaussian of the distance to the truncated cell,
    inside the (6 sigma + 1)^2 square, scaled to peak 1."""
    cx, cy = int(x * size), int(y * size)
    out = np.zeros((size, size))
    for r in range(size):
        for c in range(size):
            if abs(c - cx) <= 3 * sigma and abs(r - cy) <= 3 * sigma:
                out[r, c] = np.exp(-((c - cx) ** 2 + (r - cy) ** 2) / (2 * sigma ** 2))
    return out / out.max()


@pytest.mark.parametrize("point", [(0.5, 0.5), (0.01, 0.99), (0.999, 0.2), (1.0, 1.0)])
def test_gaussian_target(point):
    got = ga.gaussian_heatmap([point])
    assert got.dtype == np.float32 and got.shape == (64, 64)
    assert np.abs(got - _reference_heatmap(*point)).max() < 1e-6
    assert got.max() == 1.0


def test_gaussian_target_is_empty_out_of_frame():
    assert not ga.gaussian_heatmap([]).any()
    assert not ga.gaussian_heatmap([(-1 / 96, -1 / 64)]).any()


def test_augmentations_keep_head_and_target_on_their_pixels():
    """Mark the gaze pixel; after a crop or flip the new normalised gaze still points at the
    mark, and the head box and the target stay whole inside the image."""
    rng = np.random.default_rng(0)
    h, w = 60, 100
    for trial in range(200):
        image = np.zeros((h, w, 3), np.uint8)
        gx, gy = int(rng.integers(0, w)), int(rng.integers(0, h))
        image[gy, gx] = (255, 0, 0)
        x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        box = (x0 / w, y0 / h, (x0 + 10) / w, (y0 + 10) / h)
        gaze = (((gx + 0.5) / w, (gy + 0.5) / h),)
        if trial % 2:
            out, nbox, ngaze = ga.random_crop(image, box, gaze, rng)
        else:
            out, nbox, ngaze = (image[:, ::-1], ga.flip_box(box),
                                  tuple((1 - x, y) for x, y in gaze))
        oh, ow = out.shape[:2]
        assert all(0 <= v <= 1 for v in nbox) and all(0 <= v <= 1 for v in ngaze[0])
        col, row = int(ngaze[0][0] * ow), int(ngaze[0][1] * oh)
        assert tuple(out[row, col]) == (255, 0, 0)
        assert nbox[2] - nbox[0] == pytest.approx(10 / ow)  # the head box is never cut


def test_box_jitter_stays_within_a_fifth_of_the_box_and_the_image():
    rng = np.random.default_rng(1)
    box = (0.1, 0.2, 0.3, 0.6)
    for _ in range(100):
        x0, y0, x1, y1 = ga.jitter_box(box, rng)
        assert abs(x0 - 0.1) <= 0.04 + 1e-12 and abs(x1 - 0.3) <= 0.04 + 1e-12
        assert abs(y0 - 0.2) <= 0.08 + 1e-12 and abs(y1 - 0.6) <= 0.08 + 1e-12
    x0, y0, x1, y1 = ga.jitter_box((0.0, 0.0, 1.0, 1.0), rng)
    assert 0 <= x0 and 0 <= y0 and x1 <= 1 and y1 <= 1


def test_augment_is_a_function_of_the_generator():
    image = np.random.default_rng(2).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    box, gaze = (0.2, 0.2, 0.4, 0.5), ((0.7, 0.6),)
    a = ga.augment(image, box, gaze, np.random.default_rng(7))
    b = ga.augment(image, box, gaze, np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
