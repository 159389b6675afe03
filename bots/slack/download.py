"""Fetch a Slack file (`url_private_download`, bot token) into storage, checking that it is a video.

Errors, in the service's tree (core.errors):
    VideoTooLarge    declared or streamed size past MAX_UPLOAD_MB (permanent, told to the user)
    NotAVideo        an HTML page (Slack's login page when the token lacks files:read) or bytes
                     that are no video container we know (permanent)
    InputError       Slack refuses the file or it is gone (permanent)
    SlackUnavailable Slack or the network failed for now (temporary: the caller may retry)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp

from bots.slack.messages import format_size
from core.errors import BlankLogoError, InputError, NotAVideo, VideoTooLarge
from core.media import CONTENT_TYPES, SNIFF_BYTES, looks_like_html
from core.media import video_container as sniff_container
from core.ports import Storage

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
#: content types a video may come with; anything else (text/html, image/…, json) is refused
ACCEPTED_TYPES = ("video/", "application/octet-stream", "binary/octet-stream", "application/mp4")


class SlackUnavailable(BlankLogoError):
    """Slack (or the network to it) failed in a way that may pass."""

    code = "slack_unavailable"
    temporary = True


def may_send_token(url: str, api_base_url: str) -> bool:
    """Whether the bot token may go to `url`: Slack's own hosts, or the configured API's origin."""
    target, api = urlsplit(url), urlsplit(api_base_url)
    host = (target.hostname or "").lower()
    if target.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")):
        return True
    return (target.scheme, target.hostname, target.port) == (api.scheme, api.hostname, api.port)


def too_large(filename: str, size: int | None, max_bytes: int) -> VideoTooLarge:
    """The error for a file past the upload limit, in the user's words."""
    what = f"is {format_size(size)}" if size is not None else "is larger than that"
    return VideoTooLarge(f"`{filename}` {what}; the limit is {format_size(max_bytes)}")


async def download_to_storage(
    session: aiohttp.ClientSession,
    storage: Storage,
    *,
    url: str,
    headers: dict[str, str],
    key: str,
    filename: str,
    max_bytes: int,
    declared_size: int | None = None,
) -> int:
    """Stream the file at `url` into storage under `key`; return its size in bytes."""
    if declared_size is not None and declared_size > max_bytes:
        raise too_large(filename, declared_size, max_bytes)
    try:
        async with session.get(url, headers=headers) as resp:
            _check_response(resp, filename, max_bytes)
            head = await _read_head(resp.content)
            content_type = _check_head(head, filename)
            chunks = _counted(head, resp.content, filename, max_bytes)
            try:
                return await storage.put_stream(key, chunks, content_type, max_bytes=max_bytes)
            except BaseException:
                await _forget(storage, key)
                raise
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SlackUnavailable(f"download from Slack failed: {exc.__class__.__name__}") from exc


def _check_response(resp: aiohttp.ClientResponse, filename: str, max_bytes: int) -> None:
    if resp.status in (401, 403):
        raise InputError(
            f"Slack refused to hand over `{filename}` (the app may lack the files:read scope)"
        )
    if resp.status in (404, 410):
        raise InputError(f"`{filename}` is no longer available on Slack")
    if resp.status == 429 or resp.status >= 500:
        raise SlackUnavailable(f"Slack answered {resp.status} to the download")
    if resp.status != 200:
        raise InputError(f"Slack answered {resp.status} when I asked for `{filename}`")
    content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == "text/html":
        raise NotAVideo(_html_error(filename))
    if content_type and not content_type.startswith(ACCEPTED_TYPES):
        raise NotAVideo(f"`{filename}` is not a video (Slack serves it as {content_type})")
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise too_large(filename, resp.content_length, max_bytes)


def _check_head(head: bytes, filename: str) -> str:
    if not head:
        raise NotAVideo(f"`{filename}` is empty")
    container = sniff_container(head)
    if container is None:
        if looks_like_html(head):
            raise NotAVideo(_html_error(filename))
        raise NotAVideo(f"`{filename}` is not a video file I can read")
    return CONTENT_TYPES[container]


def _html_error(filename: str) -> str:
    return (
        f"Slack sent a web page instead of `{filename}` (usually its login page: the app "
        "needs the files:read scope, or the file was deleted)"
    )


async def _read_head(content: aiohttp.StreamReader) -> bytes:
    head = b""
    while len(head) < SNIFF_BYTES:
        chunk = await content.read(SNIFF_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head


async def _counted(
    head: bytes, content: aiohttp.StreamReader, filename: str, max_bytes: int
) -> AsyncIterator[bytes]:
    total = len(head)
    yield head
    async for chunk in content.iter_chunked(CHUNK_BYTES):
        total += len(chunk)
        if total > max_bytes:
            raise too_large(filename, None, max_bytes)
        yield chunk


async def _forget(storage: Storage, key: str) -> None:
    try:
        await asyncio.shield(storage.delete(key))
    except Exception:  # noqa: BLE001 - cleanup of a failed download must not hide its cause
        logger.warning("could not delete partial input %s", key)
