"""What a file is, from its first bytes and its name (pure; every intake channel uses it)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

#: bytes the sniffing below wants (MPEG-TS needs its second sync byte at 188, M2TS at 196)
SNIFF_BYTES = 512

#: the first box of an MP4 / MOV / 3GP / M4V file (ISO BMFF and old QuickTime)
_QUICKTIME_ATOMS = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_ASF = b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

#: the content type to store each container under
CONTENT_TYPES = {
    "mp4": "video/mp4",
    "matroska": "video/x-matroska",
    "avi": "video/x-msvideo",
    "flv": "video/x-flv",
    "asf": "video/x-ms-asf",
    "mpeg": "video/mpeg",
    "mpegts": "video/mp2t",
    "ogg": "video/ogg",
    "gif": "image/gif",
}


#: file name extensions of videos (and Slack's `filetype` values for them): a file sent
#: with no video content type is still taken under one of these names, then sniffed
VIDEO_EXTENSIONS = frozenset(
    {"mp4", "m4v", "mov", "qt", "webm", "mkv", "avi", "mpg", "mpeg", "3gp", "wmv", "flv"}
    | {"ts", "mts", "m2ts"}
)


def has_video_extension(name: str | None) -> bool:
    """Whether a file name ends in a video extension (VIDEO_EXTENSIONS, any case)."""
    stem, dot, extension = (name or "").rpartition(".")
    return bool(dot and stem) and extension.lower() in VIDEO_EXTENSIONS


def video_container(head: bytes) -> str | None:
    """The video container the first bytes announce (a CONTENT_TYPES key), or None."""
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # and WebM (EBML)
    if head.startswith(b"RIFF") and head[8:11] == b"AVI":
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(_ASF):
        return "asf"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"  # Telegram animations; ffmpeg decodes them like any clip
    if len(head) > 188 and head[0] == head[188] == 0x47:
        return "mpegts"
    if len(head) > 196 and head[4] == head[196] == 0x47:
        return "mpegts"  # M2TS (AVCHD camcorders' .MTS, Blu-ray): a 4-byte time before each packet
    return None


def looks_like_video(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a video container ffmpeg reads."""
    return video_container(head) is not None


def looks_like_html(head: bytes) -> bool:
    """Whether a body starts like a web page (a login or error page instead of the file)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def safe_filename(name: str | None, fallback: str = "video.mp4") -> str:
    """A storage-safe version of a user's file name (no paths, no odd characters)."""
    # some clients (aiohttp among them) percent-encode the name in Content-Disposition
    text = unicodedata.normalize("NFKD", unquote(name or "")).encode("ascii", "ignore").decode()
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _UNSAFE_NAME.sub("_", text).strip("._-")[:120]
    return text or fallback
