"""Which of a message's files are videos we can take, and what to call them in storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.media import VIDEO_EXTENSIONS, safe_filename

__all__ = ["is_video", "needs_info", "safe_filename", "video_files"]

#: file modes that carry no downloadable content (deleted, hidden by plan limits, …)
UNAVAILABLE_MODES = frozenset({"tombstone", "hidden_by_limit", "external"})


def is_video(file: Mapping[str, Any]) -> bool:
    """Whether Slack describes this file as a video."""
    if file.get("mode") in UNAVAILABLE_MODES:
        return False
    mimetype = str(file.get("mimetype") or "").lower()
    if mimetype.startswith("video/"):
        return True
    # Slack's `filetype` values of videos are their usual extensions
    return str(file.get("filetype") or "").lower() in VIDEO_EXTENSIONS


def needs_info(file: Mapping[str, Any]) -> bool:
    """Whether the event carried only a stub of the file (Slack then says `check_file_info`)."""
    return file.get("file_access") == "check_file_info" or not file.get("url_private_download")


def video_files(files: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The files that are (or may be, pending files.info) videos, in message order."""
    return [
        f
        for f in files
        if is_video(f)
        or (f.get("mode") not in UNAVAILABLE_MODES and needs_info(f) and "mimetype" not in f)
    ]
