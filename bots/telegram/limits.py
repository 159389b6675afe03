"""The Bot API's file limits, and the lifted ones of a local Bot API server."""

from __future__ import annotations

from core.settings import Settings

MB = 1024 * 1024
#: getFile refuses bigger files on api.telegram.org
CLOUD_DOWNLOAD_LIMIT = 20 * MB
#: sendVideo refuses bigger uploads on api.telegram.org
CLOUD_UPLOAD_LIMIT = 50 * MB
#: a local Bot API server (`--local`) takes files up to 2000 MB both ways
LOCAL_FILE_LIMIT = 2000 * MB


def download_limit(settings: Settings) -> int:
    """Largest file the bot may fetch from Telegram, in bytes."""
    if settings.telegram_local_mode:
        return min(LOCAL_FILE_LIMIT, settings.max_upload_bytes)
    return min(CLOUD_DOWNLOAD_LIMIT, settings.max_upload_bytes)


def upload_limit(settings: Settings) -> int:
    """Largest video the bot may send back, in bytes; bigger results go out as a link."""
    return LOCAL_FILE_LIMIT if settings.telegram_local_mode else CLOUD_UPLOAD_LIMIT


def file_base_url(settings: Settings) -> str:
    """The file download base: TELEGRAM_FILE_BASE_URL, else derived from the API base URL."""
    if settings.telegram_file_base_url:
        return settings.telegram_file_base_url
    base = settings.telegram_api_base_url
    if base.endswith("/bot"):
        return base[: -len("/bot")] + "/file/bot"
    return base.rstrip("/") + "/file/bot"
