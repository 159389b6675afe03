"""What the engine's report says, in words for the person who sent the video (every chat)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: how to point at a mark the detection did not find (both chats read `region=` in the
#: words sent with the video)
NAME_THE_PLACE = (
    "If there is one, send the video again with its place: region=bottom-right (or top-left, "
    "top-right, bottom-left), or its box region=x,y,w,h in pixels, drawn close around it."
)


def describe_removal(report: Mapping[str, Any]) -> str:
    """What the engine removed, from its report's regions."""
    regions: Sequence[Mapping[str, Any]] = report.get("regions") or []
    frames = report.get("frames")
    in_frames = f" across {frames} frames" if frames else ""
    if not regions:
        return (
            f"I found no watermark to remove{in_frames}; the video is re-encoded unchanged. "
            + NAME_THE_PLACE
        )
    places = ", ".join(_describe_region(r) for r in regions)
    what = "a watermark" if len(regions) == 1 else f"{len(regions)} watermarks"
    return f"Removed {what} ({places}){in_frames}."


def _describe_region(region: Mapping[str, Any]) -> str:
    box = region.get("box") or []
    if len(box) != 4:
        return "somewhere in the frame"
    x, y, w, h = (int(v) for v in box)
    text = f"{w}×{h} px at {x},{y}"
    start, end = region.get("start_s"), region.get("end_s")
    if start is not None and end is not None:
        text += f", {float(start):.1f}–{float(end):.1f} s"
    return text
