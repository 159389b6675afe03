"""Talk back in the chat a job came from: progress edits, then the cleaned video or the reason."""

from __future__ import annotations

import logging
import math
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from telegram import Bot, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bots.telegram import texts
from bots.telegram.application import build_bot
from bots.telegram.limits import upload_limit
from core.errors import DeliveryError, StorageError
from core.jobs import Job, JobState
from core.ports import Notifier, Storage
from core.settings import Settings

logger = logging.getLogger(__name__)

#: at most one progress edit per job this often (Telegram allows ~1 edit/s per chat)
PROGRESS_EVERY_S = 3
#: how long a result link works
LINK_HOURS = 24


def retry_after_seconds(exc: RetryAfter) -> float:
    """Seconds Telegram asked us to wait (PTB 22 warns while it moves this to timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramNotifier:
    """The Telegram Notifier: edits the status reply, then replies with the result."""

    def __init__(self, settings: Settings, storage: Storage, redis: Any) -> None:
        self.settings = settings
        self.storage = storage
        self.redis = redis
        self._bot: Bot | None = None

    async def bot(self) -> Bot:
        """The notifier's Bot, initialised (getMe) on first use."""
        if self._bot is None:
            bot = build_bot(self.settings)
            await bot.initialize()
            self._bot = bot
        return self._bot

    async def close(self) -> None:
        """Close the Bot's HTTP connections."""
        if self._bot is not None:
            await self._bot.shutdown()
            self._bot = None

    async def progress(self, job: Job) -> None:
        """Edit the status reply with the job's progress, at most every few seconds."""
        chat_id, status_id = job.reply_to.get("chat_id"), job.reply_to.get("status_message_id")
        if chat_id is None or status_id is None:
            return
        hold_key = f"{self.settings.redis_prefix}:telegram:progress:{job.id}"
        try:
            if not await self.redis.set(hold_key, b"1", nx=True, ex=PROGRESS_EVERY_S):
                return
            bot = await self.bot()
            await bot.edit_message_text(texts.progress(job), chat_id=chat_id, message_id=status_id)
        except RetryAfter as exc:
            wait_s = retry_after_seconds(exc)
            logger.info(
                "job %s: telegram asks to wait %.0fs; skipping progress edits", job.id, wait_s
            )
            await self._hold(hold_key, wait_s)
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                logger.info("job %s: progress edit refused: %s", job.id, exc)
        except (TelegramError, RedisError, OSError) as exc:
            logger.info("job %s: progress edit skipped: %s", job.id, exc)

    async def _hold(self, hold_key: str, seconds: float) -> None:
        try:
            await self.redis.set(hold_key, b"1", ex=max(1, math.ceil(seconds)))
        except (RedisError, OSError) as exc:
            logger.info("progress hold not stored: %s", exc)

    async def deliver(self, job: Job) -> None:
        """Reply to the user's message with the result or the reason; DeliveryError to retry."""
        chat_id = job.reply_to.get("chat_id")
        if chat_id is None:
            logger.error("job %s has no telegram chat to answer; not delivered", job.id)
            return
        try:
            bot = await self.bot()
            if job.status == JobState.COMPLETED:
                as_link = await self._send_result(bot, job)
                final = texts.done(job, as_link=as_link)
            elif job.status == JobState.FAILED:
                await self._reply(bot, job, texts.failed(job))
                final = texts.failed(job)
            elif job.status == JobState.CANCELLED:
                await self._reply(bot, job, texts.cancelled(job))
                final = texts.cancelled(job)
            else:
                logger.warning("job %s is %s, nothing to deliver", job.id, job.status.value)
                return
        except (BadRequest, Forbidden, ChatMigrated) as exc:
            # permanent: the chat is gone, the bot was blocked or removed
            logger.warning("job %s: telegram refused the delivery for good: %s", job.id, exc)
            return
        except (TelegramError, StorageError) as exc:
            # NetworkError, TimedOut, RetryAfter, and a bad token an operator can fix
            raise DeliveryError(f"telegram delivery of job {job.id} failed: {exc}") from exc
        logger.info("job %s delivered to telegram chat %s (%s)", job.id, chat_id, job.status.value)
        await self._update_status(bot, job, final)

    async def _send_result(self, bot: Bot, job: Job) -> bool:
        """Reply with the video, or a link when it is too big; True when a link was sent."""
        limit = upload_limit(self.settings)
        if job.output_key is None:
            raise StorageError(f"completed job {job.id} has no output")
        if (job.output_size_bytes or 0) > limit:
            await self._send_link(bot, job, limit)
            return True
        report = job.report or {}
        with tempfile.TemporaryDirectory(prefix="blanklogo-tg-") as tmp:
            path = Path(tmp) / f"blanklogo-{job.id}.mp4"
            await self.storage.get_file(job.output_key, path)
            try:
                with path.open("rb") as video:
                    await bot.send_video(
                        job.reply_to["chat_id"],
                        video=video,
                        filename=path.name,
                        caption=texts.result_caption(job),
                        supports_streaming=True,
                        width=_int_or_none(report.get("width")),
                        height=_int_or_none(report.get("height")),
                        duration=_int_or_none(report.get("duration_s")),
                        reply_parameters=self._reply_parameters(job),
                    )
            except NetworkError as exc:
                if "too large" not in str(exc).lower():
                    raise
                # the server's limit is lower than we thought (e.g. a proxy): send a link
                await self._send_link(bot, job, limit)
                return True
        return False

    async def _send_link(self, bot: Bot, job: Job, limit: int) -> None:
        assert job.output_key is not None
        url = await self.storage.signed_url(job.output_key, expires_in=LINK_HOURS * 3600)
        await self._reply(bot, job, texts.result_link(job, url, LINK_HOURS, limit))

    async def _reply(self, bot: Bot, job: Job, text: str) -> None:
        await bot.send_message(
            job.reply_to["chat_id"],
            texts.clip(text),
            reply_parameters=self._reply_parameters(job),
        )

    @staticmethod
    def _reply_parameters(job: Job) -> ReplyParameters | None:
        message_id = job.reply_to.get("message_id")
        if message_id is None:
            return None
        return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)

    async def _update_status(self, bot: Bot, job: Job, text: str) -> None:
        status_id = job.reply_to.get("status_message_id")
        if status_id is None:
            return
        try:
            await bot.edit_message_text(
                texts.clip(text), chat_id=job.reply_to["chat_id"], message_id=status_id
            )
        except TelegramError as exc:
            logger.info("job %s: final status edit skipped: %s", job.id, exc)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, int | float) and value > 0:
        return round(value)
    return None


def build_notifier(settings: Settings, storage: Storage, redis: Any) -> Notifier:
    """The Telegram Notifier for core.deps.build."""
    return TelegramNotifier(settings, storage, redis)
