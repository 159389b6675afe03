"""A large result goes up to Slack streamed from disk, by the same three calls files_upload_v2 makes.

slack_sdk's files_upload_v2 reads the whole file into memory first; past
STREAM_UPLOAD_OVER_BYTES the notifier uses `upload_streamed` instead, so a worker never holds
a big video in memory: files.getUploadURLExternal, the raw bytes POSTed to the upload URL
from the open file, then files.completeUploadExternal to share it in the thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

#: results larger than this are streamed; smaller ones go through files_upload_v2
STREAM_UPLOAD_OVER_BYTES = 64 * 1024 * 1024
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)


async def upload_streamed(
    client: AsyncWebClient,
    path: Path,
    *,
    channel: str,
    thread_ts: str | None,
    title: str,
    initial_comment: str,
) -> Any:
    """Share the file at `path` in the thread without reading it into memory."""
    size = path.stat().st_size
    ticket = await client.files_getUploadURLExternal(filename=path.name, length=size)
    upload_url, file_id = str(ticket["upload_url"]), str(ticket["file_id"])
    async with aiohttp.ClientSession(timeout=UPLOAD_TIMEOUT) as session:
        with path.open("rb") as body:
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            async with session.post(upload_url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    # the wording files_upload_v2 uses, so callers classify both alike
                    raise SlackRequestError(
                        f"Failed to upload a file (status: {resp.status}, filename: {path.name})"
                    )
    return await client.files_completeUploadExternal(
        files=[{"id": file_id, "title": title}],
        channel_id=channel,
        thread_ts=thread_ts,
        initial_comment=initial_comment,
    )
