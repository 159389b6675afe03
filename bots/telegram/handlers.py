"""PTB handlers: route each kind of update to the function that answers it."""

from __future__ import annotations

import logging
from functools import partial

from telegram import Message, Update
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from bots.telegram import texts
from bots.telegram.commands import OPS_COMMANDS, answer_ops_command
from bots.telegram.intake import reply_to, take_video
from bots.telegram.media import incoming_video, is_video_document
from core.deps import Deps

logger = logging.getLogger(__name__)

#: new messages only: an edited caption must not make a second job
NEW_MESSAGES = filters.UpdateType.MESSAGE


class _VideoDocument(filters.MessageFilter):
    """A document that is a video by its type or, without one, by its name."""

    def filter(self, message: Message) -> bool:
        return message.document is not None and is_video_document(message.document)


VIDEO_MESSAGES = NEW_MESSAGES & (filters.VIDEO | filters.ANIMATION | _VideoDocument())
#: other files are answered in private chats only, so that groups are not spammed
OTHER_FILES = NEW_MESSAGES & filters.ChatType.PRIVATE & (filters.Document.ALL | filters.PHOTO)
#: plain words (or an unknown command) in a private chat get a pointer to /help
CHATTER = NEW_MESSAGES & filters.ChatType.PRIVATE & filters.TEXT


def register(application: Application, deps: Deps) -> None:
    """Add every handler of the bot to `application`."""
    application.add_handler(CommandHandler(["start", "help"], partial(on_help, deps)))
    for command in OPS_COMMANDS:
        application.add_handler(CommandHandler(command, partial(on_ops_command, deps, command)))
    application.add_handler(MessageHandler(VIDEO_MESSAGES, partial(on_video, deps)))
    application.add_handler(MessageHandler(OTHER_FILES, on_other_file))
    application.add_handler(MessageHandler(CHATTER, on_chatter))
    application.add_error_handler(on_error)


async def on_help(deps: Deps, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help."""
    message = update.effective_message
    if message is None:
        return
    await context.bot.send_message(
        message.chat_id, texts.help_text(deps.settings), reply_parameters=reply_to(message)
    )


async def on_ops_command(
    deps: Deps, command: str, update: Update, context: ContextTypes.DEFAULT_TYPE
) -> None:
    """/health, /queue, /retry_stuck, /job, /retry, /cancel."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    args = " ".join(context.args or [])
    text = await answer_ops_command(deps, str(user.id), command, args)
    await context.bot.send_message(
        message.chat_id, texts.clip(text), reply_parameters=reply_to(message)
    )


async def on_video(deps: Deps, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A video, animation or video document."""
    message = update.effective_message
    if message is None:
        return
    video = incoming_video(message)
    if video is None:
        return
    await take_video(deps, context.bot, message, video)


async def on_other_file(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file that is not a video, in a private chat."""
    message = update.effective_message
    if message is None:
        return
    await context.bot.send_message(
        message.chat_id, texts.NOT_A_VIDEO_DOCUMENT, reply_parameters=reply_to(message)
    )


async def on_chatter(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text that is not one of our commands, in a private chat."""
    message = update.effective_message
    if message is None:
        return
    await context.bot.send_message(
        message.chat_id, texts.SEND_A_VIDEO, reply_parameters=reply_to(message)
    )


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The outermost catch of every handler."""
    update_id = update.update_id if isinstance(update, Update) else None
    logger.error("telegram update %s failed", update_id, exc_info=context.error)
