"""`blanklogo telegram-poll`: the same bot on getUpdates, for installs without a public URL."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from bots.telegram import poll
from tests.telegram.fake_botapi import FakeBotApi
from tests.telegram.test_webhook import replies_to
from tests.telegram.updates import command_update, video_update


async def test_long_polling_answers_updates_without_a_webhook(
    tg_settings, fake_api: FakeBotApi, small_clip
):
    settings = tg_settings()
    fake_api.add_file("vid-poll", small_clip.read_bytes())
    fake_api.updates += [
        command_update(70, "/help", message_id=5),
        video_update(71, file_id="vid-poll", message_id=6),
    ]
    stop = asyncio.Event()
    running = asyncio.create_task(poll.poll(settings, timeout=1, stop=stop))
    try:
        await fake_api.wait_for(
            lambda: (
                replies_to(fake_api, 5)
                and any("Queued" in c.params["text"] for c in fake_api.calls_to("editMessageText"))
            ),
            what="answers to the polled updates",
        )
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    assert fake_api.calls_to("deleteWebhook")  # Telegram serves either a webhook or polling
    assert fake_api.calls_to("setMyCommands")
    assert "watermark" in replies_to(fake_api, 5)[0]


@pytest.mark.parametrize("token", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_telegram_poll_refuses_to_start_without_a_token(monkeypatch, capsys, token):
    if token is None:
        monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    else:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    parser = argparse.ArgumentParser()
    poll.add_arguments(parser)
    assert poll.run(parser.parse_args([])) == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in capsys.readouterr().out
