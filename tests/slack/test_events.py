"""The Events API endpoint, driven with signed requests exactly as Slack sends them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bots.slack import SLACK_BOT_KEY
from core.deps import Deps, build
from core.errors import StoreError
from core.jobs import JobState, Source
from tests.slack.conftest import ADMIN, EngineNotUsed, SlackApp, build_web_app
from tests.slack.fake_slack import BOT_ID, BOT_USER_ID, FakeSlack
from tests.slack.slack_http import event_envelope, message_event

pytestmark = pytest.mark.redis

MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


def fake_mp4(size: int = 4096) -> bytes:
    """Bytes that start like an MP4 (the bot only sniffs; the engine reads real clips)."""
    return (MP4_HEAD + bytes(range(256)) * (size // 256 + 1))[:size]


async def all_jobs(deps: Deps) -> list:
    return await deps.store.list_jobs(limit=100)


async def test_url_verification_challenge_is_answered(slack_app: SlackApp) -> None:
    status, body, _ = await slack_app.post_event(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    assert status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in body


async def test_request_with_a_bad_signature_is_refused(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4())
    status, _, _ = await slack_app.post_event(
        event_envelope(message_event(files=[file])), secret="not-the-signing-secret"
    )
    await slack_app.settle()
    assert status == 401
    assert await all_jobs(slack_deps) == []
    assert fake_slack.downloads == []


async def test_replayed_request_with_an_old_timestamp_is_refused(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4())
    six_minutes_ago = int(time.time()) - 6 * 60
    status, _, _ = await slack_app.post_event(
        event_envelope(message_event(files=[file])), timestamp=six_minutes_ago
    )
    await slack_app.settle()
    assert status == 401
    assert await all_jobs(slack_deps) == []


async def test_video_in_a_channel_becomes_a_queued_job_with_a_reply_in_its_thread(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    content = fake_mp4(300_000)
    file = fake_slack.host_file(content, "promo clip.mp4")
    event = message_event(text="please clean region=bottom-right", files=[file])
    status, _, _ = await slack_app.post_event(event_envelope(event))
    await slack_app.settle()

    assert status == 200
    [job] = await all_jobs(slack_deps)
    assert job.source == Source.SLACK
    assert job.requester == "U0SENDER"
    assert job.status == JobState.QUEUED
    assert job.options == {"region": "bottom-right"}
    assert job.input_filename == "promo clip.mp4"
    assert job.input_size_bytes == len(content)
    assert job.input_key == f"inputs/{job.id}/promo_clip.mp4"
    assert job.idempotency_key == f"slack:{file['id']}:{event['ts']}"
    stored = tmp_path / "stored.mp4"
    await slack_deps.storage.get_file(job.input_key, stored)
    assert stored.read_bytes() == content
    # downloaded with the bot token
    assert fake_slack.downloads == [(file["id"], f"Bearer {fake_slack.token}")]
    # one reply, in the message's thread, edited to say where the job stands
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert job.reply_to == {
        "channel": "C0VIDEOS",
        "thread_ts": event["ts"],
        "message_ts": reply["ts"],
    }
    assert "queued, position 1" in reply["text"]
    assert job.id in reply["text"]


async def test_slack_retries_of_an_event_never_make_a_second_job(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4())
    envelope = event_envelope(message_event(files=[file]))
    for retry_num in (None, 1, 2):
        status, _, _ = await slack_app.post_event(envelope, retry_num=retry_num)
        assert status == 200
    await slack_app.settle()
    assert len(await all_jobs(slack_deps)) == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
    assert len(fake_slack.downloads) == 1


async def test_a_post_that_mentions_the_bot_arrives_twice_but_makes_one_job(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4())
    message = message_event(text=f"<@{BOT_USER_ID}> clean this", files=[file])
    mention = dict(message, type="app_mention")
    mention.pop("subtype")
    mention.pop("channel_type")
    await slack_app.post_event(event_envelope(message))
    await slack_app.post_event(event_envelope(mention))
    await slack_app.settle()
    assert len(await all_jobs(slack_deps)) == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


async def test_each_video_of_a_message_becomes_its_own_job_and_other_files_are_ignored(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    first = fake_slack.host_file(fake_mp4(), "a.mp4")
    pdf = fake_slack.host_file(
        b"%PDF-1.7 ...", "notes.pdf", mimetype="application/pdf", filetype="pdf"
    )
    second = fake_slack.host_file(fake_mp4(), "b.mov", mimetype="video/quicktime", filetype="mov")
    event = message_event(files=[first, pdf, second])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    jobs = await all_jobs(slack_deps)
    assert sorted(j.input_filename for j in jobs) == ["a.mp4", "b.mov"]
    assert pdf["id"] not in [file_id for file_id, _ in fake_slack.downloads]
    replies = fake_slack.thread("C0VIDEOS", event["ts"])
    assert len(replies) == 2
    assert {j.reply_to["message_ts"] for j in jobs} == {r["ts"] for r in replies}


async def test_a_video_posted_in_a_thread_is_answered_in_that_thread(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4())
    event = message_event(
        files=[file], thread_ts="1700000000.000100", channel="D0DIRECT", channel_type="im"
    )
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    [job] = await all_jobs(slack_deps)
    assert job.reply_to["thread_ts"] == "1700000000.000100"
    assert len(fake_slack.thread("D0DIRECT", "1700000000.000100")) == 1


async def test_a_message_with_only_other_files_is_ignored(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    image = fake_slack.host_file(
        b"\x89PNG\r\n\x1a\n....", "shot.png", mimetype="image/png", filetype="png"
    )
    await slack_app.post_event(event_envelope(message_event(files=[image])))
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    assert fake_slack.calls_of("chat.postMessage") == []


async def test_a_mention_without_a_video_gets_a_short_how_to(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    mention = message_event(kind="app_mention", text=f"<@{BOT_USER_ID}> what can you do?")
    await slack_app.post_event(event_envelope(mention))
    await slack_app.settle()
    [reply] = fake_slack.thread("C0VIDEOS", mention["ts"])
    assert "region=bottom-right" in reply["text"]
    assert await all_jobs(slack_deps) == []


async def test_a_file_past_the_upload_limit_is_refused_before_downloading(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4(), "huge.mp4", size=3 * 1024 * 1024)  # limit: 2 MB
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    assert fake_slack.downloads == []
    assert await all_jobs(slack_deps) == []
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "huge.mp4" in reply["text"] and "3.0 MB" in reply["text"] and "2.0 MB" in reply["text"]


async def test_a_file_larger_than_it_said_is_stopped_while_streaming(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    file = fake_slack.host_file(fake_mp4(3 * 1024 * 1024), "liar.mp4", size=1000)
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "can't take `liar.mp4`" in reply["text"] and "limit is 2.0 MB" in reply["text"]
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]


async def test_an_html_login_page_instead_of_the_video_is_an_error_and_no_job(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    page = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"
    file = fake_slack.host_file(page, "clip.mp4", content_type="text/html; charset=utf-8")
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "web page instead of `clip.mp4`" in reply["text"]
    assert "files:read" in reply["text"]


async def test_bytes_that_are_no_video_are_refused_even_when_slack_calls_them_video(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(b"just some text pretending to be a video" * 20, "fake.mp4")
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "`fake.mp4` is not a video" in reply["text"]


async def test_a_bad_region_option_is_answered_with_the_error_and_no_job(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4())
    event = message_event(text="region=middle-ish", files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    assert fake_slack.downloads == []
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "middle-ish" in reply["text"] and "bottom-right" in reply["text"]


async def test_the_bots_own_messages_are_ignored(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    ours = fake_slack.host_file(fake_mp4(), "clip-clean.mp4")
    # the message our files_upload_v2 produces, as Slack echoes it back
    await slack_app.post_event(event_envelope(message_event(user=BOT_USER_ID, files=[ours])))
    await slack_app.post_event(
        event_envelope(message_event(user=BOT_USER_ID, files=[ours], bot_id=BOT_ID))
    )
    other_bot = fake_slack.host_file(fake_mp4(), "bot.mp4")
    await slack_app.post_event(
        event_envelope(message_event(user="U0OTHERBOT", files=[other_bot], bot_id="B0OTHER"))
    )
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    assert fake_slack.downloads == []
    assert fake_slack.calls_of("chat.postMessage") == []


async def test_slack_gets_its_answer_at_once_while_a_slow_download_goes_on(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    # 1 MB served in 64 KB chunks, 0.1 s apart: about 1.6 s of download
    file = fake_slack.host_file(fake_mp4(1024 * 1024), "slow.mp4", chunk_delay_s=0.1)
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(message_event(text="warm-up")))  # auth.test
    status, _, elapsed = await slack_app.post_event(event_envelope(event))
    assert status == 200
    assert elapsed < 1.0  # Slack gives up at 3 s; the download alone takes ~1.6 s
    assert await all_jobs(slack_deps) == []  # still downloading
    await slack_app.settle()
    [job] = await all_jobs(slack_deps)
    assert job.input_size_bytes == 1024 * 1024


async def test_a_file_stub_is_completed_with_files_info(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4(), "stub.mp4")
    stub = {"id": file["id"], "mode": "file_access", "file_access": "check_file_info"}
    await slack_app.post_event(event_envelope(message_event(files=[stub])))
    await slack_app.settle()
    [call] = fake_slack.calls_of("files.info")
    assert call.args["file"] == file["id"]
    [job] = await all_jobs(slack_deps)
    assert job.input_filename == "stub.mp4"


async def test_edits_and_other_message_subtypes_are_acknowledged_and_ignored(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4())
    edited = message_event(subtype="message_changed", files=[file])
    status, _, _ = await slack_app.post_event(event_envelope(edited))
    await slack_app.settle()
    assert status == 200
    assert await all_jobs(slack_deps) == []
    assert fake_slack.downloads == []


async def test_a_flood_of_videos_from_one_person_is_stopped_with_a_friendly_message(
    aiohttp_client: Any, slack_settings: Any, fake_slack: FakeSlack
) -> None:
    deps = await build(
        slack_settings(user_rate_limit_per_hour=2), engine=EngineNotUsed(), notifiers={}
    )
    try:
        app = build_web_app(deps)
        slack = SlackApp(client=await aiohttp_client(app), bot=app[SLACK_BOT_KEY])
        files = [fake_slack.host_file(fake_mp4(), f"v{i}.mp4") for i in range(3)]
        event = message_event(files=files)
        await slack.post_event(event_envelope(event))
        admin = message_event(user=ADMIN, files=[fake_slack.host_file(fake_mp4(), "ops.mp4")])
        await slack.post_event(event_envelope(admin))
        await slack.settle()
        jobs = await deps.store.list_jobs()
        assert len([j for j in jobs if j.requester == "U0SENDER"]) == 2
        assert [j.requester for j in jobs].count(ADMIN) == 1  # operators are not counted
        texts = [m["text"] for m in fake_slack.thread("C0VIDEOS", event["ts"])]
        assert sum("2 videos per person per hour" in t for t in texts) == 1
    finally:
        await deps.close()


async def test_without_files_read_slack_answers_with_its_login_page_and_the_user_is_told(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    fake_slack.files_read_scope = False
    file = fake_slack.host_file(fake_mp4(), "clip.mp4")
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "web page instead of `clip.mp4`" in reply["text"] and "files:read" in reply["text"]


async def test_a_download_that_fails_for_a_moment_is_tried_again(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    slack_app.bot.intake.retry_delays_s = (0.01, 0.01)
    fake_slack.download_failures = [503, 502]
    file = fake_slack.host_file(fake_mp4(), "flaky.mp4")
    await slack_app.post_event(event_envelope(message_event(files=[file])))
    await slack_app.settle()
    [job] = await all_jobs(slack_deps)
    assert job.input_filename == "flaky.mp4"
    assert len(fake_slack.downloads) == 3


async def test_a_download_that_keeps_failing_asks_the_user_to_send_it_again(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    slack_app.bot.intake.retry_delays_s = (0.01, 0.01)
    fake_slack.download_failures = [503, 503, 503]
    file = fake_slack.host_file(fake_mp4(), "down.mp4")
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "couldn't take `down.mp4` right now" in reply["text"]
    assert "Nothing was queued" in reply["text"]


async def test_the_bot_token_is_never_sent_to_a_link_off_slack(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    file = fake_slack.host_file(fake_mp4(), "elsewhere.mp4")
    file["url_private_download"] = "https://attacker.example/steal.mp4"
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    assert await all_jobs(slack_deps) == []
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "does not point at Slack" in reply["text"]


class StoreThatIsDown:
    """The real store, except that it cannot keep new jobs (the database is away)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def create(self, new: Any) -> Any:
        raise StoreError("database unreachable")


async def test_when_the_database_is_down_the_user_is_asked_to_try_again_and_nothing_is_kept(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    slack_deps.store = StoreThatIsDown(slack_deps.store)  # type: ignore[assignment]
    file = fake_slack.host_file(fake_mp4(), "later.mp4")
    event = message_event(files=[file])
    await slack_app.post_event(event_envelope(event))
    await slack_app.settle()
    [reply] = fake_slack.thread("C0VIDEOS", event["ts"])
    assert "try again" in reply["text"].lower() or "send it again" in reply["text"]
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]


async def test_a_direct_message_without_a_video_gets_the_how_to(
    slack_app: SlackApp, slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    dm = message_event(channel="D0DIRECT", channel_type="im", text="hello?")
    chatter = message_event(channel="C0VIDEOS", text="lunch?")
    await slack_app.post_event(event_envelope(dm))
    await slack_app.post_event(event_envelope(chatter))
    await slack_app.settle()
    [reply] = fake_slack.thread("D0DIRECT", dm["ts"])
    assert "region=bottom-right" in reply["text"]
    assert fake_slack.thread("C0VIDEOS", chatter["ts"]) == []
