"""The helpers that several parts of the project share (one implementation each): box IoU,
the VideoAttentionTarget person-file parser, region validation, checkpoint metadata."""
import numpy as np
import pytest

from gaze_perception.core.regions import Regions
from gaze_perception.backends.head_pose_gaze import HeadPoseGaze
from gaze_perception.core.boxes import iou, iou_matrix
from gaze_perception.core.head_boxes import AnnotationError, read_head_boxes, read_vat_rows


def test_iou_by_hand_and_in_a_matrix():
    a, b = (0, 0, 10, 10), (5, 0, 15, 10)  # overlap 50 of a union of 150
    assert iou(a, b) == pytest.approx(1 / 3)
    assert iou(a, (20, 20, 30, 30)) == 0.0 and iou(a, (0, 0, 0, 0)) == 0.0
    m = iou_matrix([a, b], [b, a, (20, 20, 30, 30)])
    np.testing.assert_allclose(m, [[1 / 3, 1, 0], [1, 1 / 3, 0]])
    assert iou_matrix(np.zeros((0, 4)), [a]).shape == (0, 1)


def test_vat_rows_with_and_without_gaze_and_their_errors(tmp_path):
    f = tmp_path / "p1.txt"
    f.write_text("a.jpg,1,2,11,12,30,40\n\nb.jpg,1,2,11,12\n")
    rows = read_vat_rows(f)
    assert [(r.frame, r.box, r.gaze) for r in rows] == [
        ("a.jpg", (1, 2, 11, 12), (30, 40)), ("b.jpg", (1, 2, 11, 12), None)]
    assert rows[1].where == f"{f}:3"
    with pytest.raises(AnnotationError, match=r"p1.txt:3: 5 columns, but a VideoAttentionTarget "
                                              r"person file has 7"):
        read_vat_rows(f, gaze_required=True)
    f.write_text("a.jpg,1,2,11,12,30\n")
    with pytest.raises(AnnotationError, match=r"p1.txt:1: 6 columns"):
        read_vat_rows(f)
    f.write_text("a.jpg,11,2,1,12\n")
    with pytest.raises(AnnotationError, match="empty box"):
        read_vat_rows(f)
    assert read_vat_rows(f, nonempty_boxes=False)[0].box == (11, 2, 1, 12)
    f.write_text("a.jpg,1,2,11,12\na.jpg,3,4,13,14\n")
    assert [face.xyxy for face in read_head_boxes([f]).faces_for("a.jpg", 0)] == [
        (1, 2, 11, 12), (3, 4, 13, 14)]


@pytest.mark.parametrize("make", [lambda r: Regions(r), lambda r: HeadPoseGaze(regions=r)])
def test_region_names_and_polygons_are_checked_alike(make):
    square = [[0, 0], [10, 0], [10, 10], [0, 10]]
    make({"door": square})
    for name in ("elsewhere", "out_of_frame", "unknown", "person:3"):
        with pytest.raises(ValueError, match=f"region name '{name}' is reserved"):
            make({name: square})
    with pytest.raises(ValueError, match="at least 3"):
        make({"door": square[:2]})
