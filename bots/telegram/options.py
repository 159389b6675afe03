"""Options a user writes in a video's caption (`region=…`); pure."""

from __future__ import annotations

import re

from core.errors import InputError
from gpu.regions import parse_region

#: `name=value`; a box may be written with spaces ("region=10, 20, 200, 80")
_OPTION = re.compile(r"(?<!\S)([A-Za-z_]+)=\s*((?:\d+\s*,\s*){3}\d+|\S*)")


def parse_caption(caption: str | None) -> dict[str, str]:
    """Job options from a caption; raise BadRegion / InputError with a message for the user."""
    options: dict[str, str] = {}
    for name, value in _OPTION.findall(caption or ""):
        if name.lower() != "region":
            raise InputError(
                f"I don't know the option '{name}='. The one I understand is region= "
                "(auto, top-left, top-right, bottom-left, bottom-right, or x,y,w,h)."
            )
        region = parse_region(value)
        if region is not None:
            options["region"] = region
    return options
