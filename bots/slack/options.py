"""Job options from a message's text: `region=x,y,w,h` or `region=bottom-right`."""

from __future__ import annotations

import re
from typing import Any

from core.errors import BadRegion
from gpu.regions import parse_region

_REGION = re.compile(r"(?<![\w-])region\s*[=:]\s*(\S+)", re.IGNORECASE)
_MENTION = re.compile(r"<[@#!][^>]*>")


def parse_options(text: str | None) -> dict[str, Any]:
    """The engine options a message asks for; raise BadRegion when `region=` does not parse."""
    cleaned = _MENTION.sub(" ", text or "")
    found = _REGION.findall(cleaned)
    if len(found) > 1:
        raise BadRegion("please give one `region=` option per message")
    if not found:
        return {}
    # Slack may turn "bottom-right" into "bottom-right" with formatting marks; strip them.
    value = found[0].strip("*_`~.,;")
    region = parse_region(value)
    return {"region": region} if region else {}
