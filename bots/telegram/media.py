"""Which part of a Telegram message is the video (pure); byte sniffing lives in core.media."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Animation, Document, Message, Video

from core.media import SNIFF_BYTES, has_video_extension, looks_like_video, safe_filename

__all__ = [
    "SNIFF_BYTES",
    "IncomingVideo",
    "incoming_video",
    "is_video_document",
    "looks_like_video",
    "safe_filename",
]


@dataclass(frozen=True)
class IncomingVideo:
    """The file a message carries, as the Bot API describes it."""

    file_id: str
    file_unique_id: str
    file_name: str
    mime_type: str | None
    file_size: int | None


def incoming_video(message: Message) -> IncomingVideo | None:
    """The video, animation or video document in `message`, or None."""
    # an animation message also carries a `document`, so look at the animation first
    item: Video | Animation | Document
    if message.video is not None:
        item = message.video
    elif message.animation is not None:
        item = message.animation
    elif message.document is not None and is_video_document(message.document):
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


def is_video_document(document: Document) -> bool:
    """A video/* document, or one named like a video whose client gave no video type (a
    camcorder's .MTS often comes as application/octet-stream): its bytes are sniffed later."""
    mime = (document.mime_type or "").lower()
    return mime.startswith("video/") or (
        not mime.startswith(("image/", "audio/", "text/"))
        and has_video_extension(document.file_name)
    )
