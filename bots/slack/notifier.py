"""Tells the Slack requester how their job goes: edits the status message, posts the result.

`deliver` raises DeliveryError only for failures that may pass (rate limit, 5xx, network,
storage); the pipeline then retries it with backoff. Once the result is posted, nothing
after it may raise, so a retry never posts the video twice.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import messages, upload
from bots.slack.client import (
    api_error,
    close_pooled_session,
    is_temporary,
    make_web_client,
    use_pooled_session,
)
from bots.slack.files import safe_filename
from core.errors import DeliveryError, StorageError
from core.jobs import Job, JobState
from core.markers import throttled
from core.ports import Notifier, Storage
from core.settings import Settings

logger = logging.getLogger(__name__)

#: at most one progress edit per job in this many milliseconds, across processes
PROGRESS_EVERY_MS = 3000
#: Slack errors an operator can fix (a rotated token): worth retrying with backoff
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
MIN_LINK_SECONDS = 3600

T = TypeVar("T")


class SlackNotifier:
    """The Notifier for jobs that came from Slack."""

    def __init__(
        self, settings: Settings, storage: Storage, redis: Any, client: AsyncWebClient
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.redis = redis
        self.client = client
        self._last_edit: dict[str, float] = {}

    async def close(self) -> None:
        """Close the pooled HTTP session."""
        await close_pooled_session(self.client)

    async def progress(self, job: Job) -> None:
        """Edit the status message with the job's progress, at most every few seconds."""
        channel, ts = job.reply_to.get("channel"), job.reply_to.get("message_ts")
        if not channel or not ts or self._too_soon(job.id):
            return
        use_pooled_session(self.client)
        key = f"{self.settings.redis_prefix}:slack:progress:{job.id}"
        if await throttled(self.redis, key, PROGRESS_EVERY_MS):
            return
        try:
            await self.client.chat_update(channel=channel, ts=ts, text=messages.progress(job))
        except Exception as exc:  # noqa: BLE001 - progress is best effort and must never raise
            logger.info("progress edit for job %s skipped: %s", job.id, _describe(exc))

    def _too_soon(self, job_id: str) -> bool:
        # the local clock also holds when Redis is away
        now = time.monotonic()
        if now - self._last_edit.get(job_id, float("-inf")) < PROGRESS_EVERY_MS / 1000:
            return True
        self._last_edit[job_id] = now
        if len(self._last_edit) > 1000:
            self._last_edit = {k: v for k, v in self._last_edit.items() if now - v < 60}
        return False

    async def deliver(self, job: Job) -> None:
        """Post the result (file, or link past the upload limit), the failure, or the cancellation."""
        self._last_edit.pop(job.id, None)
        if not job.reply_to.get("channel"):
            logger.error("job %s has no slack channel to answer in; not delivered", job.id)
            return
        use_pooled_session(self.client)
        if job.status == JobState.COMPLETED:
            await self._deliver_result(job)
            status = messages.done_status(job)
        elif job.status == JobState.FAILED:
            await self._reply(job, messages.failed(job))
            status = f":x: Job `{job.id}` failed, see below."
        elif job.status == JobState.CANCELLED:
            await self._reply(job, messages.cancelled(job))
            status = messages.cancelled(job)
        else:
            logger.warning("job %s is %s, nothing to deliver yet", job.id, job.status.value)
            return
        await self._update_status(job, status)
        logger.info("job %s delivered to slack (%s)", job.id, job.status.value)

    async def _deliver_result(self, job: Job) -> None:
        if not job.output_key:
            await self._reply(
                job, messages.failed(job.replace(error_message="the result went missing"))
            )
            return
        limit = self.settings.slack_upload_limit_mb * 1024 * 1024
        if job.output_size_bytes is not None and job.output_size_bytes > limit:
            await self._post_link(job)
            return
        with tempfile.TemporaryDirectory(prefix="blanklogo-slack-") as tmp:
            path = Path(tmp) / _result_name(job)
            try:
                await self.storage.get_file(job.output_key, path)
            except StorageError as exc:
                raise DeliveryError(f"result of job {job.id} unreadable: {exc}") from exc
            if path.stat().st_size > limit:
                await self._post_link(job)
                return
            await self._call(job, self._upload(job, path))

    def _upload(self, job: Job, path: Path) -> Awaitable[Any]:
        channel, thread_ts = job.reply_to["channel"], job.reply_to.get("thread_ts")
        if path.stat().st_size > upload.STREAM_UPLOAD_OVER_BYTES:
            return upload.upload_streamed(
                self.client,
                path,
                channel=channel,
                thread_ts=thread_ts,
                title=path.name,
                initial_comment=messages.done(job),
            )
        return self.client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            file=str(path),
            filename=path.name,
            title=path.name,
            initial_comment=messages.done(job),
        )

    async def _post_link(self, job: Job) -> None:
        assert job.output_key is not None
        now = datetime.now(UTC)
        seconds = max(MIN_LINK_SECONDS, int((job.expires_at - now).total_seconds()))
        try:
            url = await self.storage.signed_url(job.output_key, expires_in=seconds)
        except StorageError as exc:
            raise DeliveryError(f"no link for job {job.id}: {exc}") from exc
        await self._reply(job, messages.done_link(job, url, now + timedelta(seconds=seconds)))

    async def _reply(self, job: Job, text: str) -> None:
        await self._call(
            job,
            self.client.chat_postMessage(
                channel=job.reply_to["channel"], thread_ts=job.reply_to.get("thread_ts"), text=text
            ),
        )

    async def _call(self, job: Job, call: Awaitable[T]) -> T | None:
        """Await a Slack call; temporary failures become DeliveryError, permanent ones are logged."""
        try:
            return await call
        except Exception as exc:
            if is_temporary(exc) or (
                isinstance(exc, SlackApiError) and api_error(exc) in AUTH_ERRORS
            ):
                raise DeliveryError(f"slack delivery of job {job.id}: {_describe(exc)}") from exc
            logger.error("job %s cannot be delivered to slack: %s", job.id, _describe(exc))
            return None

    async def _update_status(self, job: Job, text: str) -> None:
        channel, ts = job.reply_to.get("channel"), job.reply_to.get("message_ts")
        if not channel or not ts:
            return
        try:
            await self.client.chat_update(channel=channel, ts=ts, text=text)
        except Exception as exc:  # noqa: BLE001 - the reply is out; a stale status is cosmetic
            logger.info("final status edit for job %s skipped: %s", job.id, _describe(exc))


def _result_name(job: Job) -> str:
    stem = safe_filename(job.input_filename, fallback="video.mp4").rsplit(".", 1)[0]
    return f"{stem}-clean.mp4"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return f"slack error {api_error(exc) or getattr(exc.response, 'status_code', '?')}"
    return exc.__class__.__name__


def build_notifier(settings: Settings, storage: Storage, redis: Any) -> Notifier:
    """The Slack notifier the worker registers for Source.SLACK."""
    return SlackNotifier(settings, storage, redis, make_web_client(settings))
