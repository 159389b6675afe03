"""POST /telegram/webhook on the real app, with the real PTB Bot talking to a fake Bot API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp.test_utils import TestClient

from bots.telegram.webhook import TELEGRAM_WEBHOOK
from core.deps import Deps
from core.jobs import JobState, Source
from tests.media import make_m2ts
from tests.telegram.conftest import HEADERS, SECRET
from tests.telegram.fake_botapi import FakeBotApi
from tests.telegram.updates import ADMIN_ID, USER_ID, command_update, video_update


async def settle(client: TestClient) -> None:
    """Wait until PTB has processed every queued update."""
    await asyncio.wait_for(client.app[TELEGRAM_WEBHOOK].application.update_queue.join(), 30)


async def telegram_jobs(deps: Deps) -> list:
    return await deps.store.list_jobs(source=Source.TELEGRAM)


def replies_to(api: FakeBotApi, message_id: int) -> list[str]:
    return [
        call.params["text"]
        for call in api.calls_to("sendMessage")
        if call.json_param("reply_parameters")["message_id"] == message_id
    ]


async def test_webhook_without_the_right_secret_token_is_refused(tg_client, fake_api):
    client, deps = await tg_client()
    update = video_update(1)
    missing = await client.post("/telegram/webhook", json=update)
    wrong = await client.post(
        "/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
    )
    assert (missing.status, wrong.status) == (403, 403)
    await settle(client)
    assert fake_api.calls_to("getFile") == [] and fake_api.calls_to("sendMessage") == []
    assert await telegram_jobs(deps) == []


async def test_webhook_is_refused_when_no_secret_is_configured(tg_client, fake_api):
    client, _ = await tg_client(telegram_webhook_secret=None)
    response = await client.post("/telegram/webhook", json=video_update(1), headers=HEADERS)
    assert response.status == 403
    assert "not configured" in await response.text()


async def test_webhook_asks_for_redelivery_while_telegram_was_unreachable_at_start(
    tg_client, fake_api
):
    fake_api.fail("getMe", status=502, description="Bad Gateway")
    client, deps = await tg_client()
    response = await client.post("/telegram/webhook", json=video_update(1), headers=HEADERS)
    assert response.status == 503  # Telegram keeps the update and sends it again later
    assert await telegram_jobs(deps) == []


async def test_start_up_publishes_the_command_menu(tg_client, fake_api):
    await tg_client()
    (call,) = fake_api.calls_to("setMyCommands")
    names = [command["command"] for command in call.json_param("commands")]
    assert {"start", "help", "health", "queue", "retry_stuck", "job", "retry", "cancel"} <= set(
        names
    )


async def test_video_message_becomes_a_job_and_the_reply_says_its_position(
    tg_client, fake_api, small_clip: Path
):
    client, deps = await tg_client()
    fake_api.add_file("vid-1", small_clip.read_bytes())
    response = await client.post(
        "/telegram/webhook",
        json=video_update(100, file_id="vid-1", message_id=11, caption="region=top-right"),
        headers=HEADERS,
    )
    assert response.status == 200
    await settle(client)

    (job,) = await telegram_jobs(deps)
    assert job.status == JobState.QUEUED
    assert job.requester == str(USER_ID)
    assert job.options == {"region": "top-right"}
    assert job.idempotency_key == f"telegram:{USER_ID}:11"
    assert job.input_size_bytes == small_clip.stat().st_size
    assert await deps.storage.exists(job.input_key)
    (status,) = fake_api.calls_to("sendMessage")
    assert status.json_param("reply_parameters")["message_id"] == 11
    assert job.reply_to == {
        "chat_id": USER_ID,
        "message_id": 11,
        "status_message_id": job.reply_to["status_message_id"],
    }
    edits = fake_api.calls_to("editMessageText")
    assert int(edits[-1].params["message_id"]) == job.reply_to["status_message_id"]
    assert "Queued, position 1" in edits[-1].params["text"] and job.id in edits[-1].params["text"]


async def test_video_document_and_animation_also_become_jobs(tg_client, fake_api, small_clip):
    client, deps = await tg_client()
    fake_api.add_file("doc", small_clip.read_bytes())
    fake_api.add_file("gif", small_clip.read_bytes())
    for update in (
        video_update(1, file_id="doc", kind="document", mime_type="video/quicktime", message_id=1),
        video_update(
            2, file_id="gif", kind="animation", message_id=2, chat_id=-1001, chat_type="supergroup"
        ),
    ):
        assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    jobs = await telegram_jobs(deps)
    assert sorted(job.reply_to["chat_id"] for job in jobs) == [-1001, USER_ID]
    assert {job.input_filename for job in jobs} == {"clip.mp4"}


async def test_a_video_file_sent_without_a_video_type_becomes_a_job(
    tg_client, fake_api, small_clip, tmp_path
):
    """A camcorder's .MTS often arrives as application/octet-stream: its name and then its
    bytes (M2TS) say it is a video."""
    mts = make_m2ts(small_clip, tmp_path / "00001.MTS")
    client, deps = await tg_client()
    fake_api.add_file("mts", mts.read_bytes())
    update = video_update(
        1,
        file_id="mts",
        kind="document",
        mime_type="application/octet-stream",
        file_name=mts.name,
        message_id=5,
    )
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (job,) = await telegram_jobs(deps)
    assert job.input_filename == "00001.MTS"


async def test_redelivered_update_makes_one_job(tg_client, fake_api, small_clip):
    client, deps = await tg_client()
    fake_api.add_file("vid-1", small_clip.read_bytes())
    update = video_update(500, file_id="vid-1", message_id=31)
    statuses = [
        (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status
        for _ in range(3)
    ]
    await settle(client)
    # the same message under a new update_id (the dedup key is gone) is still one job
    again = video_update(501, file_id="vid-1", message_id=31)
    assert (await client.post("/telegram/webhook", json=again, headers=HEADERS)).status == 200
    await settle(client)

    assert statuses == [200, 200, 200]
    (job,) = await telegram_jobs(deps)
    assert len(fake_api.calls_to("getFile")) == 2  # update 500 once, update 501 once
    assert "already have this video" in fake_api.calls_to("editMessageText")[-1].params["text"]
    assert [key for key in await _input_keys(deps)] == [job.input_key]


async def _input_keys(deps: Deps) -> list[str]:
    root = Path(deps.settings.storage_dir)
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "inputs" in p.parts
    )


async def test_file_over_20_mb_is_refused_up_front_with_a_hint(tg_client, fake_api):
    client, deps = await tg_client()
    update = video_update(7, file_id="big", file_size=25 * 1024 * 1024, message_id=5)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (text,) = replies_to(fake_api, 5)
    assert "25.0 MB" in text and "20 MB" in text
    assert "webhook API" in text and "local Bot API server" in text
    assert fake_api.calls_to("getFile") == []
    assert await telegram_jobs(deps) == []


async def test_local_bot_api_server_takes_files_over_20_mb(tg_client, fake_api, small_clip):
    client, deps = await tg_client(telegram_local_mode=True)
    # a local server in --local mode answers getFile with a path on its disk
    fake_api.add_file(
        "big", small_clip.read_bytes(), file_path=str(small_clip), file_size=25 * 1024 * 1024
    )
    update = video_update(8, file_id="big", file_size=25 * 1024 * 1024)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (job,) = await telegram_jobs(deps)
    assert job.input_size_bytes == small_clip.stat().st_size
    assert fake_api.file_downloads == 0  # read from the local path, not over HTTP


async def test_file_over_max_upload_is_refused(tg_client, fake_api, small_clip):
    client, deps = await tg_client(max_upload_mb=1)
    fake_api.add_file("v", small_clip.read_bytes())
    update = video_update(9, file_id="v", file_size=3 * 1024 * 1024, message_id=6)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (text,) = replies_to(fake_api, 6)
    assert "largest video I take is 1 MB" in text
    assert await telegram_jobs(deps) == []


async def test_non_video_document_is_answered_and_makes_no_job(tg_client, fake_api):
    client, deps = await tg_client()
    update = video_update(
        3, kind="document", mime_type="application/pdf", file_name="a.pdf", message_id=9
    )
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (text,) = replies_to(fake_api, 9)
    assert "not a video" in text
    assert fake_api.calls_to("getFile") == []
    assert await telegram_jobs(deps) == []


async def test_video_document_whose_bytes_are_not_a_video_makes_no_job(tg_client, fake_api):
    client, deps = await tg_client()
    fake_api.add_file("fake", b"%PDF-1.7\n" + b"x" * 4000)
    update = video_update(4, file_id="fake", kind="document", message_id=12)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    assert "not a video" in fake_api.calls_to("editMessageText")[-1].params["text"]
    assert await telegram_jobs(deps) == []
    assert await _input_keys(deps) == []


async def test_unreadable_region_in_caption_is_answered_with_the_reason(tg_client, fake_api):
    client, deps = await tg_client()
    update = video_update(5, caption="region=middle", message_id=13)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (text,) = replies_to(fake_api, 13)
    assert "region" in text and "top-left" in text
    assert fake_api.calls_to("getFile") == [] and await telegram_jobs(deps) == []


async def test_help_explains_what_the_bot_does_and_its_limits(tg_client, fake_api):
    client, _ = await tg_client()
    for update_id, text in ((1, "/start"), (2, "/help")):
        update = command_update(update_id, text, message_id=update_id)
        assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    for message_id in (1, 2):
        (text,) = replies_to(fake_api, message_id)
        assert "watermark" in text and "20 MB" in text and "region=" in text


async def test_other_words_in_a_private_chat_get_a_pointer_to_help(tg_client, fake_api):
    client, deps = await tg_client()
    for update_id, text in ((1, "hello?"), (2, "/unknown")):
        update = command_update(update_id, text, message_id=update_id)
        if not text.startswith("/"):
            del update["message"]["entities"]
        assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    for message_id in (1, 2):
        (text,) = replies_to(fake_api, message_id)
        assert "/help" in text
    assert await deps.store.audit_log() == []


async def test_slow_download_does_not_stall_other_chats(tg_client, fake_api, small_clip):
    client, deps = await tg_client()
    fake_api.add_file("slow", small_clip.read_bytes())
    fake_api.download_delay["slow"] = 3.0
    started = time.monotonic()
    slow = video_update(60, file_id="slow", chat_id=1001, user_id=1001, message_id=1)
    assert (await client.post("/telegram/webhook", json=slow, headers=HEADERS)).status == 200
    answered = time.monotonic() - started
    help_update = command_update(61, "/help", user_id=1002, message_id=2)
    assert (await client.post("/telegram/webhook", json=help_update, headers=HEADERS)).status == 200
    await fake_api.wait_for(lambda: replies_to(fake_api, 2), what="the /help reply")
    downloads_when_helped = fake_api.file_downloads
    await settle(client)
    assert answered < 3.0  # the webhook did not wait for the download
    assert downloads_when_helped == 0  # the other chat was answered while it still ran
    assert fake_api.file_downloads == 1 and len(await telegram_jobs(deps)) == 1


async def test_start_up_registers_the_webhook_with_its_secret_token(tg_client, fake_api):
    await tg_client(public_base_url="https://bots.example.com/")
    (call,) = fake_api.calls_to("setWebhook")
    assert call.params["url"] == "https://bots.example.com/telegram/webhook"
    assert call.params["secret_token"] == SECRET
    assert call.json_param("allowed_updates") == ["message"]


async def test_webhook_is_not_registered_without_a_public_https_url(tg_client, fake_api):
    await tg_client(public_base_url="http://127.0.0.1:8080")
    assert fake_api.calls_to("setWebhook") == []


async def test_videos_past_the_hourly_limit_are_refused_except_for_admins(
    tg_client, fake_api, small_clip
):
    client, deps = await tg_client(user_rate_limit_per_hour=1)
    fake_api.add_file("v", small_clip.read_bytes())
    updates = [
        video_update(1, file_id="v", message_id=1),
        video_update(2, file_id="v", message_id=2),
        video_update(3, file_id="v", message_id=3, chat_id=ADMIN_ID, user_id=ADMIN_ID),
        video_update(4, file_id="v", message_id=4, chat_id=ADMIN_ID, user_id=ADMIN_ID),
    ]
    for update in updates:
        assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
        await settle(client)
    (refusal,) = replies_to(fake_api, 2)
    assert "this hour" in refusal
    jobs = await telegram_jobs(deps)
    assert sorted(job.reply_to["message_id"] for job in jobs) == [1, 3, 4]
