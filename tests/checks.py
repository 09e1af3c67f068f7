"""Assertions shared by several test files."""
import numpy as np
import pytest


def assert_batch_equals_single_calls(detector, frames, counts):
    """A batched detect() gives, frame by frame, what one call per frame gives."""
    batched = detector.detect(frames)
    assert [len(f) for f in batched] == counts
    for frame, got in zip(frames, batched):
        want = detector.detect([frame])[0]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.xyxy, w.xyxy, atol=1e-3)
            np.testing.assert_allclose(g.landmarks, w.landmarks, atol=1e-3)
            assert g.score == pytest.approx(w.score, abs=1e-5)
