"""The Telegram notifier against the fake Bot API: progress edits, results, reasons, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bots.telegram.notifier import PROGRESS_EVERY_S, build_notifier
from core.errors import DeliveryError
from core.jobs import Job, JobState, Source
from tests.telegram.fake_botapi import FakeBotApi

CHAT, USER_MESSAGE, STATUS_MESSAGE = 42, 11, 1000


def make_job(status: JobState = JobState.PROCESSING, **fields) -> Job:
    now = datetime.now(UTC)
    values = {
        "id": "job" + now.strftime("%H%M%S%f"),
        "source": Source.TELEGRAM,
        "requester": "42",
        "reply_to": {
            "chat_id": CHAT,
            "message_id": USER_MESSAGE,
            "status_message_id": STATUS_MESSAGE,
        },
        "status": status,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(days=7),
        "progress": 40,
        "current_step": "removing",
    }
    values.update(fields)
    return Job(**values)


@pytest.fixture
async def notifier_and_deps(tg_settings, make_deps):
    deps = await make_deps(tg_settings(), notifiers={})
    notifier = build_notifier(deps.settings, deps.storage, deps.redis)
    yield notifier, deps
    await notifier.close()


async def test_progress_edits_the_status_reply_at_most_every_few_seconds(
    notifier_and_deps, fake_api: FakeBotApi
):
    notifier, _ = notifier_and_deps
    job = make_job()
    await notifier.progress(job)
    await notifier.progress(job.replace(progress=60))
    (edit,) = fake_api.calls_to("editMessageText")
    assert (int(edit.params["chat_id"]), int(edit.params["message_id"])) == (CHAT, STATUS_MESSAGE)
    assert "40%" in edit.params["text"] and job.id in edit.params["text"]
    assert PROGRESS_EVERY_S <= 5


async def test_retry_after_on_a_progress_edit_holds_edits_back_for_that_long(
    notifier_and_deps, fake_api: FakeBotApi
):
    notifier, deps = notifier_and_deps
    job = make_job()
    fake_api.fail("editMessageText", retry_after=30)
    await notifier.progress(job)  # answered 429: must not raise
    hold = f"{deps.settings.redis_prefix}:telegram:progress:{job.id}"
    assert 25 <= await deps.redis.ttl(hold) <= 30
    await deps.redis.delete(f"{hold}-none")  # (the hold itself stays)
    await notifier.progress(job.replace(progress=80))
    assert len(fake_api.calls_to("editMessageText")) == 1  # nothing sent while Telegram waits


async def test_message_is_not_modified_is_ignored(notifier_and_deps, fake_api: FakeBotApi):
    notifier, _ = notifier_and_deps
    fake_api.fail(
        "editMessageText",
        description="Bad Request: message is not modified: specified new message content and "
        "reply markup are exactly the same as a current content and reply markup of the message",
    )
    await notifier.progress(make_job())
    assert len(fake_api.calls_to("editMessageText")) == 1


async def _deliver_completed(notifier, deps, clip: Path, report: dict) -> Job:
    """Deliver a completed job whose output is `clip`, with this engine report."""
    job = make_job(JobState.COMPLETED, progress=100)
    size = await deps.storage.put_file(f"outputs/{job.id}.mp4", clip)
    job = job.replace(output_key=f"outputs/{job.id}.mp4", output_size_bytes=size, report=report)
    await notifier.deliver(job)
    return job


async def test_completed_job_is_replied_with_the_video(
    notifier_and_deps, fake_api: FakeBotApi, small_clip: Path
):
    notifier, deps = notifier_and_deps
    report = {"width": 160, "height": 120, "duration_s": 1.0}
    await _deliver_completed(notifier, deps, small_clip, report)
    (sent,) = fake_api.calls_to("sendVideo")
    assert sent.files["video"].data == small_clip.read_bytes()
    assert int(sent.params["chat_id"]) == CHAT
    assert sent.json_param("reply_parameters")["message_id"] == USER_MESSAGE
    assert sent.params["supports_streaming"] == "true"
    assert (sent.params["width"], sent.params["height"]) == ("160", "120")
    assert "Done" in fake_api.calls_to("editMessageText")[-1].params["text"]


@pytest.mark.parametrize(
    ("regions", "words"),
    [
        ([{"box": [300, 20, 60, 30], "start_s": 0.0, "end_s": 1.0}], "60×30 px at 300,20"),
        ([], "found no watermark"),
    ],
    ids=["removed", "nothing-found"],
)
async def test_the_caption_says_what_was_removed_or_how_to_point_at_it(
    notifier_and_deps, fake_api: FakeBotApi, small_clip: Path, regions, words: str
):
    """Not "Watermark removed" over a video in which nothing was found."""
    notifier, deps = notifier_and_deps
    report = {"regions": regions, "frames": 10, "width": 160, "height": 120}
    job = await _deliver_completed(notifier, deps, small_clip, report)
    (sent,) = fake_api.calls_to("sendVideo")
    caption = sent.params["caption"]
    assert words in caption and job.id in caption
    assert ("region=bottom-right" in caption) == (not regions)


async def test_result_over_50_mb_is_sent_as_a_signed_link(
    notifier_and_deps, fake_api: FakeBotApi, small_clip: Path
):
    notifier, deps = notifier_and_deps
    job = make_job(JobState.COMPLETED, progress=100)
    await deps.storage.put_file(f"outputs/{job.id}.mp4", small_clip)
    job = job.replace(output_key=f"outputs/{job.id}.mp4", output_size_bytes=60 * 1024 * 1024)
    await notifier.deliver(job)
    assert fake_api.calls_to("sendVideo") == []
    (reply,) = fake_api.calls_to("sendMessage")
    text = reply.params["text"]
    assert "60.0 MB" in text and "24 hours" in text and "http" in text and job.id in text
    assert reply.json_param("reply_parameters")["message_id"] == USER_MESSAGE
    assert "download link" in fake_api.calls_to("editMessageText")[-1].params["text"]


async def test_failed_job_is_explained_in_plain_words_with_its_id(
    notifier_and_deps, fake_api: FakeBotApi
):
    notifier, _ = notifier_and_deps
    job = make_job(JobState.FAILED, error_message="this video is longer than 600 seconds")
    await notifier.deliver(job)
    (reply,) = fake_api.calls_to("sendMessage")
    assert "longer than 600 seconds" in reply.params["text"] and job.id in reply.params["text"]
    assert reply.json_param("reply_parameters")["message_id"] == USER_MESSAGE


@pytest.mark.parametrize(
    "failure",
    [{"retry_after": 10}, {"status": 502, "description": "Bad Gateway"}],
    ids=["retry_after", "bad_gateway"],
)
async def test_temporary_telegram_errors_ask_the_pipeline_to_retry_delivery(
    notifier_and_deps, fake_api: FakeBotApi, failure
):
    notifier, _ = notifier_and_deps
    fake_api.fail("sendMessage", **failure)
    with pytest.raises(DeliveryError):
        await notifier.deliver(make_job(JobState.FAILED, error_message="bad"))


async def test_blocked_bot_is_not_retried(notifier_and_deps, fake_api: FakeBotApi):
    notifier, _ = notifier_and_deps
    fake_api.fail("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    await notifier.deliver(make_job(JobState.FAILED, error_message="bad"))
    assert len(fake_api.calls_to("sendMessage")) == 1
