"""Multipart uploads to ``POST /v1/jobs``: streamed into storage, never held whole.

The file part's first bytes must be those of a video container (`looks_like_video`);
``MAX_UPLOAD_MB`` is checked against Content-Length up front and again while the bytes
stream into storage. For a signed request the raw body is hashed as the multipart parser
reads it, and the signature is checked once the body has been read: a bad signature
removes what was stored. Whatever fails, nothing is left in storage.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from core.deps import Deps
from core.errors import NotAVideo, VideoTooLarge
from core.media import SNIFF_BYTES, looks_like_video, safe_filename
from webhooks.auth import Client
from webhooks.errors import bad_request, too_large

logger = logging.getLogger(__name__)

FIELD_MAX_BYTES = 16 * 1024
CHUNK_BYTES = 256 * 1024
#: room for the multipart envelope and text fields around the file
ENVELOPE_BYTES = 1024 * 1024
#: the text fields an upload may carry besides `file`
TEXT_FIELDS = ("callback_url", "region", "metadata")


@dataclass(frozen=True)
class Upload:
    """A video stored under `key`, and the text fields that came with it."""

    key: str
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


def _mb(limit_bytes: int) -> str:
    return f"{limit_bytes // (1024 * 1024)} MB"


class _HashingStream:
    """The request body as the multipart parser reads it, fed to a signature check on the way.

    Data the parser pushes back (`unread_data`) is kept here so it is hashed only once.
    """

    def __init__(self, inner: Any, client: Client) -> None:
        self._inner = inner
        self._client = client
        self._back = b""

    def _seen(self, data: bytes) -> bytes:
        if self._client.pending is not None:
            self._client.pending.update(data)
        return data

    async def read(self, n: int = -1) -> bytes:
        if self._back:
            if n < 0 or n >= len(self._back):
                data, self._back = self._back, b""
            else:
                data, self._back = self._back[:n], self._back[n:]
            return data
        return self._seen(await self._inner.read(n))

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        head = b""
        if self._back:
            index = self._back.find(b"\n")
            if index >= 0:
                line, self._back = self._back[: index + 1], self._back[index + 1 :]
                return line
            head, self._back = self._back, b""
        kwargs = {} if max_line_length is None else {"max_line_length": max_line_length}
        return head + self._seen(await self._inner.readline(**kwargs))

    def at_eof(self) -> bool:
        return not self._back and self._inner.at_eof()

    def unread_data(self, data: bytes) -> None:
        self._back = data + self._back

    async def drain(self, limit: int) -> None:
        """Read (and hash) whatever follows the last part, up to `limit` bytes."""
        total = 0
        while chunk := await self.read(CHUNK_BYTES):
            total += len(chunk)
            if total > limit:
                raise too_large(limit, "the multipart epilogue")


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await _read_chunk(part, 8192):
        data += chunk
        if len(data) > FIELD_MAX_BYTES:
            raise too_large(FIELD_MAX_BYTES, f"the field {part.name!r}")
    try:
        return data.decode(part.get_charset("utf-8"))
    except (LookupError, UnicodeDecodeError):
        raise bad_request("invalid_field", f"the field {part.name!r} is not valid text") from None


async def _store_upload(deps: Deps, part: BodyPartReader, key: str) -> int:
    """Stream the file part into storage; NotAVideo / VideoTooLarge leave nothing stored."""
    limit = deps.settings.max_upload_bytes
    head = b""
    while len(head) < SNIFF_BYTES and (chunk := await _read_chunk(part, SNIFF_BYTES)):
        head += chunk
    if not head:
        raise NotAVideo("the uploaded file is empty")
    if not looks_like_video(head):
        raise NotAVideo("the uploaded file is not a video (MP4, MOV, WebM, MKV, AVI...)")
    if len(head) > limit:
        raise VideoTooLarge(f"the video is larger than the {_mb(limit)} limit")

    async def chunks() -> AsyncIterator[bytes]:
        size = len(head)
        yield head
        while chunk := await _read_chunk(part, CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise VideoTooLarge(f"the video is larger than the {_mb(limit)} limit")
            yield chunk

    content_type = part.headers.get("Content-Type", "application/octet-stream")
    try:
        return await deps.storage.put_stream(
            key, chunks(), content_type=content_type, max_bytes=limit
        )
    except BaseException:
        await discard(deps, key)
        raise


async def discard(deps: Deps, key: str) -> None:
    """Remove a stored upload (best effort: the expiry sweep catches what this misses)."""
    try:
        await deps.storage.delete(key)
    except Exception as exc:  # noqa: BLE001 - the expiry sweep removes it later
        logger.warning("could not remove %s after a failed upload: %s", key, exc.__class__.__name__)


async def _next_part(reader: MultipartReader) -> Any:
    try:
        return await reader.next()
    except (ValueError, HttpProcessingError):  # aiohttp's words for a broken multipart body
        raise bad_request("invalid_body", "the multipart body is malformed") from None


async def _read_chunk(part: BodyPartReader, size: int) -> bytes:
    try:
        return await part.read_chunk(size)
    except (ValueError, HttpProcessingError):
        raise bad_request("invalid_body", "the multipart body is malformed") from None


async def receive_upload(request: web.Request, deps: Deps, client: Client, job_id: str) -> Upload:
    """Stream the multipart body: the file into storage at inputs/{job_id}/…, fields kept."""
    limit = deps.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + ENVELOPE_BYTES:
        raise VideoTooLarge(f"the video is larger than the {_mb(limit)} limit")
    stream = _HashingStream(request.content, client)
    try:
        reader = MultipartReader(request.headers, stream)  # type: ignore[arg-type]
    except (ValueError, AssertionError, KeyError):  # no or bad boundary parameter
        raise bad_request("invalid_body", "multipart/form-data needs a valid boundary") from None
    fields: dict[str, str] = {}
    key: str | None = None
    filename, size = "", 0
    try:
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise bad_request("invalid_body", "nested multipart bodies are not accepted")
            if part.name == "file":
                if key is not None:
                    raise bad_request("invalid_body", "send one file per request")
                filename = safe_filename(part.filename, fallback="upload.mp4")
                key = f"inputs/{job_id}/{filename}"
                size = await _store_upload(deps, part, key)
            elif part.name in TEXT_FIELDS:
                fields[part.name] = await _read_field(part)
            else:
                await _read_field(part)  # unknown fields are read and ignored
        await stream.drain(FIELD_MAX_BYTES)
        client.check_signature()
    except BaseException:
        if key is not None:
            await discard(deps, key)
        raise
    if key is None:
        raise bad_request("missing_field", "the multipart body needs a 'file' field with the video")
    return Upload(key=key, filename=filename, size=size, fields=fields)
