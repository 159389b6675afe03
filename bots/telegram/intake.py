"""A video message becomes a job: check it, reply at once, fetch it into storage, accept it."""

from __future__ import annotations

import logging
import time

from telegram import Bot, Message, ReplyParameters
from telegram.error import TelegramError

from bots.telegram import texts
from bots.telegram.download import fetch_into_storage
from bots.telegram.limits import download_limit
from bots.telegram.media import IncomingVideo
from bots.telegram.options import parse_caption
from core.deps import Deps
from core.errors import InputError, QueueError, StorageError, StoreError
from core.intake import accept
from core.jobs import NewJob, Source, new_job_id
from core.markers import within_hourly_video_limit

logger = logging.getLogger(__name__)


def reply_to(message: Message) -> ReplyParameters:
    """Reply parameters that quote `message` (and still send if it was deleted)."""
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)


async def take_video(deps: Deps, bot: Bot, message: Message, video: IncomingVideo) -> None:
    """Turn one incoming video into a job, telling the sender how it went."""
    settings = deps.settings
    chat_id = message.chat_id
    requester = str(message.from_user.id if message.from_user else chat_id)
    try:
        options = parse_caption(message.caption)
        if video.file_size is not None and video.file_size > download_limit(settings):
            raise InputError(texts.too_large(video.file_size, settings))
        if not await _within_hourly_limit(deps, requester):
            raise InputError(texts.rate_limited(settings.user_rate_limit_per_hour))
    except InputError as exc:
        await bot.send_message(chat_id, texts.clip(str(exc)), reply_parameters=reply_to(message))
        return

    status = await bot.send_message(chat_id, texts.RECEIVED, reply_parameters=reply_to(message))
    job_id = new_job_id()
    key = f"inputs/{job_id}/{video.file_name}"
    started = time.monotonic()
    try:
        size = await fetch_into_storage(
            bot,
            deps.storage,
            video.file_id,
            key,
            max_bytes=download_limit(settings),
            too_large_message=texts.too_large(video.file_size, settings),
        )
        accepted = await accept(
            deps,
            NewJob(
                id=job_id,
                source=Source.TELEGRAM,
                requester=requester,
                reply_to={
                    "chat_id": chat_id,
                    "message_id": message.message_id,
                    "status_message_id": status.message_id,
                },
                options=options,
                input_key=key,
                input_filename=video.file_name,
                input_size_bytes=size,
                idempotency_key=f"telegram:{chat_id}:{message.message_id}",
                max_attempts=settings.max_attempts,
            ),
        )
    except InputError as exc:
        await _forget_input(deps, key)
        await _edit(bot, chat_id, status.message_id, str(exc))
        return
    except (StoreError, QueueError, StorageError) as exc:
        logger.warning("telegram video in chat %s not accepted: %s", chat_id, exc)
        await _forget_input(deps, key)
        await _edit(bot, chat_id, status.message_id, texts.BUSY)
        return
    except TelegramError as exc:
        logger.warning("telegram video in chat %s not fetched: %s", chat_id, exc)
        await _forget_input(deps, key)
        await _edit(bot, chat_id, status.message_id, texts.FETCH_FAILED)
        return

    if not accepted.created:
        await _forget_input(deps, key)
        await _edit(bot, chat_id, status.message_id, texts.already_queued(accepted.job))
        return
    logger.info(
        "telegram job %s from chat %s: %d bytes stored in %.2fs, position %d",
        job_id,
        chat_id,
        size,
        time.monotonic() - started,
        accepted.position,
    )
    await _edit(bot, chat_id, status.message_id, texts.queued(job_id, accepted.position))


async def _within_hourly_limit(deps: Deps, requester: str) -> bool:
    """Count one video for `requester` this hour; False past USER_RATE_LIMIT_PER_HOUR."""
    settings = deps.settings
    return await within_hourly_video_limit(
        deps.redis, settings, Source.TELEGRAM, requester, settings.telegram_admin_user_ids
    )


async def _edit(bot: Bot, chat_id: int, message_id: int, text: str) -> None:
    try:
        await bot.edit_message_text(texts.clip(text), chat_id=chat_id, message_id=message_id)
    except TelegramError as exc:
        # the status reply is a courtesy; the job (if any) goes on without it
        logger.info("status message %s in chat %s not edited: %s", message_id, chat_id, exc)


async def _forget_input(deps: Deps, key: str) -> None:
    try:
        await deps.storage.delete(key)
    except StorageError as exc:
        logger.warning("could not delete unused input %s: %s", key, exc)
