"""Requests exactly as Slack sends them: signed (v0 HMAC-SHA256 of "v0:ts:body"), Events API
envelopes, slash-command forms, retry headers."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from tests.slack.fake_slack import BOT_USER_ID, TEAM_ID

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
API_APP_ID = "A0BLANKLOGO"
_seq = itertools.count(1)


def signature(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    body: str,
    content_type: str,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    retry_num: int | None = None,
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def next_ts() -> str:
    return f"{int(time.time())}.{next(_seq):06d}"


def event_envelope(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """An Events API `event_callback` around `event`."""
    return {
        "token": "verification-token-unused",
        "team_id": TEAM_ID,
        "context_team_id": TEAM_ID,
        "api_app_id": API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_seq):010d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-eyJ{next(_seq)}",
    }


def message_event(
    *,
    channel: str = "C0VIDEOS",
    user: str = "U0SENDER",
    text: str = "",
    files: list[dict[str, Any]] | None = None,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "channel",
    kind: str = "message",
    **extra: Any,
) -> dict[str, Any]:
    """A `message` (or `app_mention`) event as Slack shapes it; with files it is a file_share."""
    ts = ts or next_ts()
    event: dict[str, Any] = {
        "type": kind,
        "text": text,
        "user": user,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "team": TEAM_ID,
        "client_msg_id": f"c{next(_seq):08d}",
    }
    if kind == "message":
        event["channel_type"] = channel_type
    if files:
        event["files"] = files
        event["upload"] = False
        event["display_as_bot"] = False
        if kind == "message":
            event["subtype"] = "file_share"
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    event.update(extra)
    return event


def command_form(command: str, text: str = "", *, user_id: str, response_url: str) -> str:
    """A slash command's urlencoded body."""
    return urlencode(
        {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": "C0OPS",
            "channel_name": "ops",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{next(_seq)}.{next(_seq)}.abc",
        }
    )


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))
