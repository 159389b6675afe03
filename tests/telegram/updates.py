"""Bot API update JSON, as Telegram posts it to a webhook."""

from __future__ import annotations

import time
from typing import Any

USER_ID = 42
ADMIN_ID = 7


def _message(
    message_id: int, chat_id: int, user_id: int, chat_type: str, **content: Any
) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = "Ada"
    else:
        chat["title"] = "Video team"
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat,
        "from": {"id": user_id, "is_bot": False, "first_name": "Ada", "language_code": "en"},
        **content,
    }


def video_update(
    update_id: int,
    *,
    file_id: str = "vid-1",
    file_size: int = 50_000,
    message_id: int = 11,
    chat_id: int = USER_ID,
    user_id: int = USER_ID,
    chat_type: str = "private",
    caption: str | None = None,
    kind: str = "video",
    mime_type: str = "video/mp4",
    file_name: str = "clip.mp4",
) -> dict[str, Any]:
    """An update with a video, a video document or an animation."""
    item: dict[str, Any] = {
        "file_id": file_id,
        "file_unique_id": f"u-{file_id}",
        "file_size": file_size,
        "mime_type": mime_type,
    }
    content: dict[str, Any] = {}
    if kind in ("video", "animation"):
        item.update({"width": 160, "height": 120, "duration": 1})
    if kind != "video":
        item["file_name"] = file_name
    if kind == "animation":
        content["animation"] = item
        content["document"] = {
            k: item[k] for k in ("file_id", "file_unique_id", "file_size", "mime_type", "file_name")
        }
    else:
        content[kind] = item
    if caption is not None:
        content["caption"] = caption
    return {
        "update_id": update_id,
        "message": _message(message_id, chat_id, user_id, chat_type, **content),
    }


def command_update(
    update_id: int,
    text: str,
    *,
    user_id: int = USER_ID,
    chat_id: int | None = None,
    message_id: int = 21,
) -> dict[str, Any]:
    """An update with a bot command such as "/queue" or "/job abc"."""
    command = text.split()[0]
    return {
        "update_id": update_id,
        "message": _message(
            message_id,
            chat_id if chat_id is not None else user_id,
            user_id,
            "private",
            text=text,
            entities=[{"type": "bot_command", "offset": 0, "length": len(command)}],
        ),
    }
