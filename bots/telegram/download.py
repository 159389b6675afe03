"""Fetch a Telegram file (getFile + its URL, or a local Bot API server's path) into storage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from telegram import Bot
from telegram.error import BadRequest, NetworkError

from bots.telegram.media import SNIFF_BYTES, looks_like_video
from core.errors import NotAVideo, VideoTooLarge
from core.ports import Storage

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=60)


async def fetch_into_storage(
    bot: Bot,
    storage: Storage,
    file_id: str,
    key: str,
    *,
    max_bytes: int,
    too_large_message: str,
) -> int:
    """Stream the Telegram file `file_id` into storage under `key`; return its size.

    Raises VideoTooLarge (with `too_large_message`) or NotAVideo for the user, and
    telegram.error.NetworkError when Telegram cannot serve the file right now.
    """
    try:
        tg_file = await bot.get_file(file_id)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise VideoTooLarge(too_large_message) from exc
        raise
    source = tg_file.file_path
    if not source:
        raise NetworkError("Telegram gave no file path for this file")
    if tg_file.file_size is not None and tg_file.file_size > max_bytes:
        raise VideoTooLarge(too_large_message)
    local = Path(source)
    chunks = _read_local(local) if local.is_absolute() and local.is_file() else _read_url(source)
    try:
        return await storage.put_stream(
            key, _only_video(chunks), content_type="video/mp4", max_bytes=max_bytes
        )
    except VideoTooLarge as exc:
        raise VideoTooLarge(too_large_message) from exc


async def _only_video(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pass chunks through, refusing the stream when its first bytes are not a video."""
    head = b""
    checked = False
    async for chunk in chunks:
        if checked:
            yield chunk
            continue
        head += chunk
        if len(head) >= SNIFF_BYTES:
            _check(head)
            checked = True
            yield head
    if not checked:
        _check(head)
        if head:
            yield head


def _check(head: bytes) -> None:
    if not looks_like_video(head):
        raise NotAVideo("That file is not a video I can read. Send an MP4, MOV, WebM or MKV video.")


async def _read_url(url: str) -> AsyncIterator[bytes]:
    # the URL holds the bot token: errors are re-raised without it
    try:
        async with aiohttp.ClientSession(timeout=DOWNLOAD_TIMEOUT) as session:
            async with session.get(url) as response:
                if response.status != 200:
                    raise NetworkError(f"Telegram's file server answered {response.status}")
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise NetworkError(f"downloading from Telegram failed ({type(exc).__name__})") from None


async def _read_local(path: Path) -> AsyncIterator[bytes]:
    # a local Bot API server in --local mode hands out paths on its own disk
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)
