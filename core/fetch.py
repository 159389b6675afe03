"""Download of a job's `video_url` into storage, through the SSRF-safe client.

The body streams into storage (never whole in memory), `MAX_UPLOAD_MB` is enforced while
streaming, and an answer that is plainly not a video (an HTML page, JSON, text, an image)
is refused from its content type or its first bytes. The engine's probe has the last word.

Errors: UnsafeURL, NotAVideo, VideoTooLarge and InputError (a 4xx answer) are permanent;
DownloadFailed (network trouble, 5xx, 408, 429) is temporary and the job retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from core.errors import DownloadFailed, InputError, NotAVideo, VideoTooLarge
from core.media import SNIFF_BYTES, looks_like_video
from core.ports import Storage
from core.settings import Settings
from webhooks import safe_http

DOWNLOAD_TIMEOUT_S = 900
_TEMPORARY_STATUSES = frozenset({408, 425, 429})
_NOT_VIDEO_TYPES = ("text/", "application/json", "application/xml", "image/", "application/pdf")


def looks_like_video_type(content_type: str | None) -> bool:
    """False for content types that are never a video (HTML, JSON, text, images, PDF)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return not kind.startswith(_NOT_VIDEO_TYPES)


async def _sniffed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pass chunks through, refusing the stream if its first bytes are not a video."""
    head = b""
    checked = False
    async for chunk in chunks:
        if not checked:
            head += chunk
            if len(head) < SNIFF_BYTES:
                continue
            if not looks_like_video(head[:SNIFF_BYTES]):
                raise NotAVideo(
                    "the link does not point to a video (it looks like a web page or text)"
                )
            checked = True
            yield head
            continue
        yield chunk
    if not checked:
        if not looks_like_video(head):
            raise NotAVideo("the link does not point to a video")
        yield head


async def fetch_to_storage(settings: Settings, storage: Storage, url: str, key: str) -> int:
    """Stream `url` into storage under `key`; return the size in bytes."""
    limit = settings.max_upload_bytes
    mb = limit // (1024 * 1024)
    try:
        async with safe_http.open_session(settings, timeout_s=DOWNLOAD_TIMEOUT_S) as session:
            response = await safe_http.request(
                session, "GET", url, allow_loopback=settings.allow_loopback_urls
            )
            async with response:
                _check_status(response.status)
                if not looks_like_video_type(response.content_type):
                    raise NotAVideo(
                        f"the link does not point to a video (the server sent {response.content_type})"
                    )
                if response.content_length is not None and response.content_length > limit:
                    raise VideoTooLarge(f"the video is larger than the {mb} MB limit")

                async def chunks() -> AsyncIterator[bytes]:
                    async for chunk in response.content.iter_chunked(safe_http.CHUNK_BYTES):
                        yield chunk

                return await storage.put_stream(
                    key,
                    _sniffed(chunks()),
                    content_type=response.content_type or "application/octet-stream",
                    max_bytes=limit,
                )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise DownloadFailed(f"could not download the video ({exc.__class__.__name__})") from exc


def _check_status(status: int) -> None:
    if 200 <= status < 300:
        return
    if status >= 500 or status in _TEMPORARY_STATUSES:
        raise DownloadFailed(f"the video link answered HTTP {status}")
    raise InputError(f"the video link answered HTTP {status}; check that it is public")
