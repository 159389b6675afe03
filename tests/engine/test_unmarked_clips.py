"""The real clips in ../shared/data carry no watermark: at full length, none is found.

Small persistent scenery that the picture's changes pass through scaled (a road reflector
cars drive over, floor tile lines people walk across) once passed for a mark on the
full-length car and person clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu.detect import detect_marks
from gpu.probe import probe_video
from gpu.sampling import sample_frames

CLIPS = [
    "asl-gesture-book.mkv",
    "bottle-detection.mp4",
    "car-detection.mp4",
    "cockatoo.mp4",
    "one-by-one-person-detection_first45s.mp4",
    "tree.avi",
]


@pytest.mark.parametrize("name", CLIPS)
def test_no_mark_is_found_on_an_unmarked_clip_at_full_length(shared_data: Path, name: str) -> None:
    path = shared_data / "videos" / name
    samples = sample_frames(path, probe_video(path))
    found = detect_marks(samples.planes()[0])
    assert found == [], [(d.box.as_list(), d.features) for d in found]
