"""Secrets never reach logs, error messages or answers: distinctive tokens are configured, the
main flows run (API intake, signed and refused requests, Telegram intake, worker, delivery,
failing channels, an unreachable database), and everything captured is scanned for them."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.cli import configure_logging
from core.engines import LocalEngine
from core.errors import StoreError
from core.settings import Settings
from core.store import open_store
from tests.reliability.helpers import Receiver, run_worker_until
from tests.telegram.conftest import HEADERS
from tests.telegram.fake_botapi import FakeBotApi
from tests.telegram.test_webhook import settle
from tests.telegram.updates import ADMIN_ID, command_update, video_update
from webhooks.signatures import signed_headers

pytestmark = [pytest.mark.redis]

TELEGRAM_TOKEN = "987654:SEKRIT-telegram-token-aa11"
WEBHOOK_KEY = b"SEKRIT-webhook-signing-key-0c0c0c"
SECRETS = {
    "telegram_bot_token": TELEGRAM_TOKEN,
    "telegram_webhook_secret": "SEKRIT-tg-webhook-secret-b2b2",
    "slack_bot_token": "xoxb-SEKRIT-slack-bot-7f3a",
    "slack_signing_secret": "SEKRIT-slack-signing-91c2",
    # slack_app_token is left out: socket mode would keep dialling the unreachable Slack
    "webhook_secret": "whsec_" + base64.b64encode(WEBHOOK_KEY).decode(),
    "api_keys": "SEKRIT-apikey-3b9d",
    "supabase_service_key": "SEKRIT-supabase-key-44aa",
    "url_signing_key": "SEKRIT-url-signing-77ee",
}
DB_PASSWORD = "SEKRITdbpw99"
#: what must never be seen (the webhook secret also in its decoded form)
NEEDLES = [
    TELEGRAM_TOKEN,
    TELEGRAM_TOKEN.split(":", 1)[1],
    *(v for k, v in SECRETS.items() if k != "telegram_bot_token"),
    base64.b64encode(WEBHOOK_KEY).decode(),
    WEBHOOK_KEY.decode(),
    DB_PASSWORD,
]


@pytest.fixture(autouse=True)
def _restore_logger_levels() -> Any:
    """configure_logging changes library loggers' levels; put them back afterwards."""
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [lg.level for lg in loggers]
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    """The fake Bot API expecting our distinctive token (overrides the Telegram fixture)."""
    api = await FakeBotApi(token=TELEGRAM_TOKEN).start()
    yield api
    await api.stop()


def _leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


async def test_no_secret_appears_in_logs_errors_or_answers(
    tg_client: Any,
    fake_api: FakeBotApi,
    small_clip: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)  # what `blanklogo web` / `worker` log in production
    configure_logging()  # the logging set-up of every `blanklogo` command
    seen: list[str] = []
    receiver = Receiver(status=503)
    await receiver.start()
    client, deps = await tg_client(
        **SECRETS,
        slack_api_base_url="http://127.0.0.1:9/api/",  # Slack is configured but unreachable
        telegram_admin_user_ids=str(ADMIN_ID),
    )
    try:
        seen.append(repr(deps.settings) + str(deps.settings.model_dump()))
        # generic intake: good key, a wrong key close to the right one, signed, badly signed
        good = {"Authorization": f"Bearer {SECRETS['api_keys']}"}
        # the video link is our own receiver (loopback allowed): it answers 405, no network needed
        payload = {"video_url": receiver.url, "callback_url": receiver.url}
        for headers in (good, {"Authorization": f"Bearer {SECRETS['api_keys']}x"}):
            response = await client.post("/v1/jobs", json=payload, headers=headers)
            seen.append(await response.text())
        raw = json.dumps(payload).encode()
        signed = signed_headers(SECRETS["webhook_secret"], "msg_1", int(time.time()), raw)
        for body in (raw, raw + b" "):
            response = await client.post(
                "/v1/jobs", data=body, headers={"Content-Type": "application/json", **signed}
            )
            seen.append(await response.text())
        for path in ("/health", "/metrics", "/openapi.json", "/nope"):
            seen.append(await (await client.get(path)).text())

        # Telegram: a video, an operator command, a wrong secret, and a Bot API that fails
        fake_api.add_file("v", small_clip.read_bytes())
        await client.post("/telegram/webhook", json=video_update(1, file_id="v"), headers=HEADERS)
        wrong = {"X-Telegram-Bot-Api-Secret-Token": "nope"}
        seen.append(await (await client.post("/telegram/webhook", json={}, headers=wrong)).text())
        fake_api.fail("editMessageText", status=401, description="Unauthorized", times=3)
        await client.post(
            "/telegram/webhook",
            json=command_update(2, "/queue", user_id=ADMIN_ID, message_id=5),
            headers=HEADERS,
        )
        await settle(client)

        # the worker: runs the jobs (the download fails), delivers, and the receiver is down
        deps.engine = LocalEngine(
            deps.settings, deps.storage, target="tests.pipeline.stand_in_engine:copy"
        )

        async def all_ended_and_tried() -> bool:
            jobs = await deps.store.list_jobs()
            return bool(jobs) and all(j.is_terminal for j in jobs) and bool(receiver.answered)

        await run_worker_until(deps, all_ended_and_tried, 30)

        # the database unreachable, with its password in DATABASE_URL
        dead = Settings(database_url=f"postgresql://blanklogo:{DB_PASSWORD}@127.0.0.1:9/db")
        with pytest.raises(StoreError) as caught:
            await open_store(dead)
        seen.append(str(caught.value) + repr(caught.value))
    finally:
        await receiver.stop()

    out, err = capfd.readouterr()
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )
    assert len(caplog.records) > 10, "the flows ran and logged"
    for where, text in (
        ("logs", logged),
        ("stdout", out),
        ("stderr", err),
        ("answers", "\n".join(seen)),
    ):
        assert not _leaks(text), f"secret in {where}: {_leaks(text)}"
