"""A Slack message with videos becomes jobs: reply, fetch each file into storage, accept, say where it stands.

Runs after Slack got its HTTP answer (see bots.slack.app), so a slow download never makes
Slack retry. Every path ends with a reply in the thread: queued, rejected, or try again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import messages
from bots.slack.download import SlackUnavailable, download_to_storage, may_send_token
from bots.slack.files import is_video, needs_info, safe_filename, video_files
from bots.slack.options import parse_options
from core.deps import Deps
from core.errors import BadRegion, InputError, QueueError, StorageError, StoreError
from core.intake import accept
from core.jobs import NewJob, Source
from core.markers import first_time, within_hourly_video_limit

logger = logging.getLogger(__name__)

#: downloads running at once in one web process; more wait (their status message is already up)
DOWNLOAD_SLOTS = 4
#: pauses before the 2nd and 3rd try of a download that failed for a temporary reason
DOWNLOAD_RETRY_DELAYS_S = (1.0, 3.0)
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)


class VideoIntake:
    """Turns Slack message events into jobs."""

    def __init__(self, deps: Deps, client: AsyncWebClient) -> None:
        self.deps = deps
        self.client = client
        self._slots = asyncio.Semaphore(DOWNLOAD_SLOTS)
        self._session: aiohttp.ClientSession | None = None
        self.retry_delays_s = DOWNLOAD_RETRY_DELAYS_S

    async def close(self) -> None:
        """Close the download session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _key(self, *parts: str) -> str:
        return ":".join((self.deps.settings.redis_prefix, "slack", *parts))

    async def handle_message(
        self, event: Mapping[str, Any], *, event_id: str | None, mentioned: bool
    ) -> None:
        """Make one job per video in the message (or explain how, when the bot was mentioned)."""
        if event_id and not await first_time(self.deps.redis, self._key("event", event_id)):
            logger.info("slack event %s seen before (a retry); ignored", event_id)
            return
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        videos = video_files(event.get("files") or [])
        if not videos:
            if mentioned:
                await self._post(channel, thread_ts, messages.HOW_TO)
            return
        # a message that mentions the bot arrives twice (message + app_mention): take it once
        if not await first_time(self.deps.redis, self._key("message", channel, ts)):
            return
        try:
            options = parse_options(event.get("text"))
        except BadRegion as exc:
            await self._post(channel, thread_ts, messages.bad_options(str(exc)))
            return
        await asyncio.gather(
            *(self._take_video(event, dict(file), options, thread_ts) for file in videos)
        )

    async def _take_video(
        self,
        event: Mapping[str, Any],
        file: dict[str, Any],
        options: dict[str, Any],
        thread_ts: str,
    ) -> None:
        channel = event["channel"]
        completed = await self._complete_info(file)
        if completed is None or not is_video(completed):
            return
        file = completed
        filename = str(file.get("name") or file.get("title") or "video.mp4")
        declared = file.get("size")
        max_bytes = self.deps.settings.max_upload_bytes
        if isinstance(declared, int) and declared > max_bytes:
            reason = f"it is {messages.format_size(declared)}; the limit is {messages.format_size(max_bytes)}"
            await self._post(channel, thread_ts, messages.rejected(filename, reason))
            return
        requester = str(event.get("user") or "")
        if not await self._within_hourly_limit(requester):
            await self._post(channel, thread_ts, messages.rate_limited(filename, self._per_hour))
            return
        status_ts = await self._post(channel, thread_ts, messages.receiving(filename, declared))
        new = NewJob(
            source=Source.SLACK,
            requester=requester,
            reply_to={"channel": channel, "thread_ts": thread_ts, "message_ts": status_ts},
            options=options,
            input_filename=filename,
            idempotency_key=f"slack:{file['id']}:{event['ts']}",
            max_attempts=self.deps.settings.max_attempts,
        )
        key = f"inputs/{new.id}/{safe_filename(filename)}"
        say = _Say(self, channel, thread_ts, status_ts)
        try:
            async with self._slots:
                size = await self._download(file, key, filename)
            accepted = await accept(
                self.deps, dataclasses.replace(new, input_key=key, input_size_bytes=size)
            )
        except InputError as exc:
            logger.info("slack file %s refused: %s", file.get("id"), exc.__class__.__name__)
            await say(messages.rejected(filename, str(exc)))
            return
        except (SlackUnavailable, StoreError, QueueError, StorageError) as exc:
            logger.warning("slack file %s not taken: %s", file.get("id"), exc)
            await self._forget_input(key)
            await say(messages.try_again(filename))
            return
        except asyncio.CancelledError:
            await self._forget_input(key)
            await asyncio.shield(say(messages.interrupted(filename)))
            raise
        except Exception:
            # the outermost catch of this background task: the user must not wait forever
            logger.exception("slack file %s: unexpected failure", file.get("id"))
            await self._forget_input(key)
            await say(messages.try_again(filename))
            return
        if not accepted.created:
            await self._forget_input(key)
            await say(messages.already_known(accepted.job))
            return
        await say(messages.queued(accepted.job.id, filename, accepted.position))

    @property
    def _per_hour(self) -> int:
        return self.deps.settings.user_rate_limit_per_hour

    async def _within_hourly_limit(self, requester: str) -> bool:
        """Count one video for `requester` this hour (admins are not counted)."""
        settings = self.deps.settings
        return await within_hourly_video_limit(
            self.deps.redis, settings, Source.SLACK, requester, settings.slack_admin_user_ids
        )

    async def _complete_info(self, file: dict[str, Any]) -> dict[str, Any] | None:
        """The full file object; Slack sends only a stub in some workspaces."""
        if not needs_info(file):
            return file
        try:
            response = await self.client.files_info(file=file["id"])
        except SlackApiError as exc:
            logger.warning(
                "files.info for %s failed: %s", file.get("id"), exc.response.get("error")
            )
            return None
        info = response.get("file")
        return dict(info) if isinstance(info, Mapping) else None

    async def _download(self, file: Mapping[str, Any], key: str, filename: str) -> int:
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        if not may_send_token(url, self.deps.settings.slack_api_base_url):
            logger.warning("slack file %s has a download URL off Slack; refused", file.get("id"))
            raise InputError(f"the link to `{filename}` does not point at Slack")
        headers = {"Authorization": f"Bearer {self.client.token}"}
        declared = file.get("size") if isinstance(file.get("size"), int) else None
        for delay in (*self.retry_delays_s, None):
            try:
                return await download_to_storage(
                    self._http(),
                    self.deps.storage,
                    url=url,
                    headers=headers,
                    key=key,
                    filename=filename,
                    max_bytes=self.deps.settings.max_upload_bytes,
                    declared_size=declared,
                )
            except SlackUnavailable as exc:
                if delay is None:
                    raise
                logger.info(
                    "download of %s failed (%s); again in %.0fs", file.get("id"), exc, delay
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=DOWNLOAD_TIMEOUT)
        return self._session

    async def _forget_input(self, key: str) -> None:
        try:
            await self.deps.storage.delete(key)
        except Exception:  # noqa: BLE001 - leftover inputs are swept by the expiry cron
            logger.warning("could not delete input %s", key)

    async def _post(self, channel: str, thread_ts: str, text: str) -> str | None:
        """Post in the thread; return the message ts, or None when Slack would not take it."""
        try:
            response = await self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("reply in %s failed: %s", channel, exc.__class__.__name__)
            return None
        return str(response.get("ts")) if response.get("ts") else None

    async def _update(self, channel: str, ts: str, text: str) -> bool:
        try:
            await self.client.chat_update(channel=channel, ts=ts, text=text)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("status update in %s failed: %s", channel, exc.__class__.__name__)
            return False
        return True


@dataclasses.dataclass
class _Say:
    """Edit our status message when there is one, else post a new reply in the thread."""

    intake: VideoIntake
    channel: str
    thread_ts: str
    status_ts: str | None

    async def __call__(self, text: str) -> None:
        if self.status_ts and await self.intake._update(self.channel, self.status_ts, text):
            return
        await self.intake._post(self.channel, self.thread_ts, text)
