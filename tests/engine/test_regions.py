"""The region option: parsing (pure) and placing it in a frame."""

from __future__ import annotations

import pytest

from core.errors import BadRegion
from gpu.regions import Box, display_quarters, parse_region, region_box, shown_size


@pytest.mark.parametrize("text", [None, "", "auto", " AUTO "])
def test_auto_and_empty_mean_detection(text: str | None) -> None:
    assert parse_region(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10,20,30,40", "10,20,30,40"),
        (" 1 , 2 , 3 , 4 ", "1,2,3,4"),
        ("Bottom-Right", "bottom-right"),
        ("top_left", "top-left"),
    ],
)
def test_boxes_and_corners_are_normalised(text: str, expected: str) -> None:
    assert parse_region(text) == expected


@pytest.mark.parametrize(
    "text", ["middle", "1,2,3", "1,2,3,4,5", "-1,2,3,4", "a,b,c,d", "10,10,0,5", "1.5,2,3,4"]
)
def test_unreadable_regions_raise_bad_region_with_help(text: str) -> None:
    with pytest.raises(BadRegion) as info:
        parse_region(text)
    assert "region" in str(info.value)


def test_regions_module_imports_no_numeric_libraries() -> None:
    import subprocess
    import sys

    code = "import sys, gpu.regions; print(sorted(m for m in ('numpy','torch','cv2') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_corner_names_the_search_area_in_that_corner() -> None:
    box = region_box("bottom-right", 1000, 500)
    assert box.x + box.w == 1000 and box.y + box.h == 500
    assert box.w == 400 and box.h == 150


def test_box_is_clipped_to_the_frame_and_outside_boxes_refused() -> None:
    assert region_box("90,40,50,50", 100, 60) == Box(90, 40, 10, 20)
    with pytest.raises(BadRegion):
        region_box("100,10,5,5", 100, 60)


def test_box_geometry() -> None:
    """The box arithmetic detection and the moved mattes rely on."""
    a, b = Box(10, 20, 30, 40), Box(35, 50, 20, 30)
    assert a.union(b) == Box(10, 20, 45, 60) == b.union(a)
    assert a.shared_area(b) == 5 * 10 == b.shared_area(a)
    assert a.shared_area(Box(100, 100, 5, 5)) == 0
    assert a.moved(-15, 5) == Box(-5, 25, 30, 40)
    assert a.moved(-15, 5).within(100, 50) == Box(0, 25, 25, 25)
    assert a.slices_in(Box(4, 8, 50, 60)) == (slice(12, 52), slice(6, 36))


@pytest.mark.parametrize(("rotation", "quarters"), [(0, 0), (-90, 1), (90, 3), (180, 2), (-180, 2)])
def test_display_rotation_is_counted_in_clockwise_quarter_turns(
    rotation: float, quarters: int
) -> None:
    assert display_quarters(rotation) == quarters


def test_a_box_follows_its_frame_through_each_quarter_turn() -> None:
    # a 20×10 box in the top-left corner of a 160×90 frame (ffmpeg's autorotation puts it
    # at these places: checked with `-display_rotation` -90, 180 and 90)
    box = Box(0, 0, 20, 10)
    assert box.turned(1, 160, 90) == Box(80, 0, 10, 20)  # top-right of a 90×160 picture
    assert box.turned(2, 160, 90) == Box(140, 80, 20, 10)  # bottom-right
    assert box.turned(3, 160, 90) == Box(0, 140, 10, 20)  # bottom-left of 90×160
    for quarters in range(4):
        shown_w, shown_h = shown_size(160, 90, quarters)
        shown = Box(7, 5, 30, 11).turned(quarters, 160, 90)
        assert shown.turned(-quarters, shown_w, shown_h) == Box(7, 5, 30, 11)
