"""The region option: where the user says the mark is ("auto", a box, or a corner).

Pure: no numpy, torch or OpenCV, so every intake channel can validate a user's option
before it accepts a job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import BadRegion

AUTO = "auto"
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
#: fraction of the frame's width / height searched for a mark named by a corner
CORNER_FRACTION = (0.4, 0.3)

_BOX = re.compile(r"^\s*(\d{1,5})\s*,\s*(\d{1,5})\s*,\s*(\d{1,5})\s*,\s*(\d{1,5})\s*$")
_HELP = (
    "region must be 'auto', a box 'x,y,w,h' in pixels (for example 1700,950,200,100), "
    "or a corner: " + ", ".join(CORNERS)
)


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    def shared_area(self, other: Box) -> int:
        """The area this box and `other` have in common."""
        w = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        h = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        return max(0, w) * max(0, h)

    def union(self, other: Box) -> Box:
        """The smallest box holding this one and `other`."""
        x0, y0 = min(self.x, other.x), min(self.y, other.y)
        x1 = max(self.x + self.w, other.x + other.w)
        y1 = max(self.y + self.h, other.y + other.h)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def slices_in(self, outer: Box) -> tuple[slice, slice]:
        """The rows and columns this box covers in an array that spans `outer`."""
        y, x = self.y - outer.y, self.x - outer.x
        return slice(y, y + self.h), slice(x, x + self.w)

    def moved(self, dx: int, dy: int) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def turned(self, quarters: int, width: int, height: int) -> Box:
        """This box once its `width` × `height` frame is turned `quarters` quarter turns
        clockwise (the frame is then height × width when `quarters` is odd)."""
        quarters %= 4
        if quarters == 1:
            return Box(height - self.y - self.h, self.x, self.h, self.w)
        if quarters == 2:
            return Box(width - self.x - self.w, height - self.y - self.h, self.w, self.h)
        if quarters == 3:
            return Box(self.y, width - self.x - self.w, self.h, self.w)
        return self

    def within(self, width: int, height: int) -> Box:
        """This box cut to a width × height frame."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def display_quarters(rotation: float) -> int:
    """The clockwise quarter turns a player gives the decoded picture of a video whose
    display matrix ffmpeg prints as `rotation of R degrees` (R = -90: a phone's portrait
    video, stored on its side). Regions and reports are in the picture as it is shown."""
    return round(-rotation / 90) % 4


def shown_size(width: int, height: int, quarters: int) -> tuple[int, int]:
    """The size a decoded `width` × `height` picture is shown at after `quarters` turns."""
    return (height, width) if quarters % 2 else (width, height)


def parse_region(text: str | None) -> str | None:
    """Validate a region option; return its normal form, or None for auto-detection."""
    if text is None:
        return None
    value = str(text).strip().lower().replace("_", "-").replace(" ", "")
    if value in ("", AUTO):
        return None
    if value in CORNERS:
        return value
    match = _BOX.match(value)
    if not match:
        raise BadRegion(f"could not read the region {str(text)[:40]!r}: {_HELP}")
    x, y, w, h = (int(part) for part in match.groups())
    if w < 2 or h < 2:
        raise BadRegion(f"the region {value} is empty: width and height must be at least 2 pixels")
    return f"{x},{y},{w},{h}"


def region_box(spec: str, width: int, height: int) -> Box:
    """The box a parsed region names in a `width`×`height` frame (corners: the search area)."""
    if spec in CORNERS:
        cw = max(2, int(round(width * CORNER_FRACTION[0])))
        ch = max(2, int(round(height * CORNER_FRACTION[1])))
        x = 0 if spec.endswith("left") else width - cw
        y = 0 if spec.startswith("top") else height - ch
        return Box(x, y, cw, ch)
    x, y, w, h = (int(part) for part in spec.split(","))
    if x >= width or y >= height:
        raise BadRegion(
            f"the region {spec} starts outside the {width}x{height} video; "
            "give x,y,w,h inside the picture"
        )
    w = min(w, width - x)
    h = min(h, height - y)
    if w < 2 or h < 2:
        raise BadRegion(f"the region {spec} barely overlaps the {width}x{height} video")
    return Box(x, y, w, h)
