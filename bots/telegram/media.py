"""Which part of a Telegram message is the video, and whether bytes look like one (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import Animation, Document, Message, Video

#: bytes needed to recognise every container below (MPEG-TS needs its second sync byte)
SNIFF_BYTES = 512

_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class IncomingVideo:
    """The file a message carries, as the Bot API describes it."""

    file_id: str
    file_unique_id: str
    file_name: str
    mime_type: str | None
    file_size: int | None


def incoming_video(message: Message) -> IncomingVideo | None:
    """The video, animation or video/* document in `message`, or None."""
    # an animation message also carries a `document`, so look at the animation first
    item: Video | Animation | Document
    if message.video is not None:
        item = message.video
    elif message.animation is not None:
        item = message.animation
    elif message.document is not None and (message.document.mime_type or "").startswith("video/"):
        item = message.document
    else:
        return None
    name = item.file_name or f"telegram-{message.message_id}.mp4"
    return IncomingVideo(
        file_id=item.file_id,
        file_unique_id=item.file_unique_id,
        file_name=safe_filename(name),
        mime_type=item.mime_type,
        file_size=item.file_size,
    )


def safe_filename(name: str) -> str:
    """A storage-safe version of a user's file name (no paths, no odd characters)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip("._") or "video.mp4"
    return cleaned[-120:]


def looks_like_video(head: bytes) -> bool:
    """Whether the first bytes of a file belong to a video container ffmpeg reads."""
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:  # MP4, MOV, 3GP, M4V
        return True
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska, WebM
        return True
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return True
    if head.startswith((b"FLV", b"\x00\x00\x01\xba", b"GIF87a", b"GIF89a")):  # FLV, MPEG-PS, GIF
        return True
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):  # ASF / WMV
        return True
    return len(head) > 188 and head[0] == 0x47 and head[188] == 0x47  # MPEG-TS
