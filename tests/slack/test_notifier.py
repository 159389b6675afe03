"""The Slack notifier against the fake Slack: progress edits, results, failures, retries."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bots.slack import upload
from bots.slack.notifier import SlackNotifier, build_notifier
from core.deps import Deps
from core.errors import DeliveryError
from core.jobs import Job, JobState, NewJob, Source
from tests.slack.fake_slack import FakeSlack

pytestmark = pytest.mark.redis

CHANNEL = "C0VIDEOS"
THREAD = "1700000000.000100"


async def status_message(fake: FakeSlack) -> str:
    """Post the status message the intake would have posted; return its ts."""
    fake_call = fake._m_chat_postMessage(
        {"channel": CHANNEL, "thread_ts": THREAD, "text": "queued"}
    )
    return str(fake_call["ts"])


def make_job(status_ts: str | None, **changes: Any) -> Job:
    now = datetime.now(UTC)
    job = NewJob(
        source=Source.SLACK,
        requester="U0SENDER",
        reply_to={"channel": CHANNEL, "thread_ts": THREAD, "message_ts": status_ts},
        input_filename="promo clip.mp4",
    ).to_job(now - timedelta(seconds=20), timedelta(days=7))
    return job.replace(**changes)


_built: list[SlackNotifier] = []


def notifier_for(deps: Deps) -> SlackNotifier:
    notifier = build_notifier(deps.settings, deps.storage, deps.redis)
    assert isinstance(notifier, SlackNotifier)
    _built.append(notifier)
    return notifier


@pytest.fixture(autouse=True)
async def close_notifiers() -> AsyncIterator[None]:
    yield
    while _built:
        await _built.pop().close()


async def stored_output(deps: Deps, job: Job, tmp_path: Path, content: bytes) -> Job:
    source = tmp_path / "out.mp4"
    source.write_bytes(content)
    key = f"outputs/{job.id}.mp4"
    size = await deps.storage.put_file(key, source)
    return job.replace(output_key=key, output_size_bytes=size)


def completed(job: Job) -> Job:
    now = datetime.now(UTC)
    return job.replace(
        status=JobState.COMPLETED,
        progress=100,
        processing_time_ms=4200,
        completed_at=now,
        report={
            "regions": [{"box": [120, 90, 30, 20], "opacity": 0.6, "start_s": 0.0, "end_s": 1.0}],
            "frames": 10,
        },
    )


async def test_progress_edits_the_status_message(slack_deps: Deps, fake_slack: FakeSlack) -> None:
    ts = await status_message(fake_slack)
    job = make_job(ts, status=JobState.PROCESSING, progress=40, current_step="removing")
    await notifier_for(slack_deps).progress(job)
    message = fake_slack.messages[(CHANNEL, ts)]
    assert "40%" in message["text"] and "removing" in message["text"] and job.id in message["text"]


async def test_progress_edits_at_most_once_every_few_seconds_across_processes(
    slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    ts = await status_message(fake_slack)
    job = make_job(ts, status=JobState.PROCESSING)
    first, second = notifier_for(slack_deps), notifier_for(slack_deps)  # two worker processes
    for percent in (10, 20, 30):
        await first.progress(job.replace(progress=percent))
        await second.progress(job.replace(progress=percent + 1))
    assert len(fake_slack.calls_of("chat.update")) == 1
    assert "10%" in fake_slack.messages[(CHANNEL, ts)]["text"]


async def test_progress_never_raises_when_slack_fails(
    slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    ts = await status_message(fake_slack)
    fake_slack.fail("chat.update", status=500, error="internal_error")
    await notifier_for(slack_deps).progress(make_job(ts, status=JobState.PROCESSING))


async def test_a_completed_job_uploads_the_video_into_the_thread_with_a_summary(
    slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    ts = await status_message(fake_slack)
    job = completed(await stored_output(slack_deps, make_job(ts), tmp_path, b"cleaned video"))
    await notifier_for(slack_deps).deliver(job)
    [upload] = fake_slack.uploads_in(CHANNEL, THREAD)
    assert upload.content == b"cleaned video"
    assert upload.filename == "promo_clip-clean.mp4"
    assert upload.initial_comment is not None
    assert "Removed a watermark (30×20 px at 120,90" in upload.initial_comment
    assert "4.2 s" in upload.initial_comment
    assert "done" in fake_slack.messages[(CHANNEL, ts)]["text"]


async def test_a_result_past_the_upload_limit_is_posted_as_an_expiring_link(
    slack_settings: Any, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    from core.deps import build
    from tests.slack.conftest import EngineNotUsed

    deps = await build(
        slack_settings(slack_upload_limit_mb=0), engine=EngineNotUsed(), notifiers={}
    )
    try:
        ts = await status_message(fake_slack)
        job = completed(await stored_output(deps, make_job(ts), tmp_path, b"big video"))
        await notifier_for(deps).deliver(job)
    finally:
        await deps.close()
    assert fake_slack.uploads == []
    [link] = [m for m in fake_slack.thread(CHANNEL, THREAD) if m["ts"] != ts]
    assert "too large to upload" in link["text"]
    url = link["text"].split("<", 1)[1].split("|", 1)[0]
    assert url.startswith(f"http://127.0.0.1:8080/files/outputs/{job.id}.mp4?expires=")
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    # valid for as long as the result is kept (the job expires 7 days after it was made)
    assert abs(expires - job.expires_at.timestamp()) < 60


async def test_a_failed_job_is_explained_in_plain_words_with_its_id(
    slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    ts = await status_message(fake_slack)
    job = make_job(ts, status=JobState.FAILED, error_message="this file is not a video.")
    await notifier_for(slack_deps).deliver(job)
    [reply] = [m for m in fake_slack.thread(CHANNEL, THREAD) if m["ts"] != ts]
    assert "this file is not a video" in reply["text"]
    assert job.id in reply["text"]
    assert fake_slack.uploads == []


async def test_a_cancelled_job_gets_a_short_note(slack_deps: Deps, fake_slack: FakeSlack) -> None:
    ts = await status_message(fake_slack)
    job = make_job(ts, status=JobState.CANCELLED)
    await notifier_for(slack_deps).deliver(job)
    [note] = [m for m in fake_slack.thread(CHANNEL, THREAD) if m["ts"] != ts]
    assert "cancelled" in note["text"] and job.id in note["text"]


@pytest.mark.parametrize(
    ("method", "status", "error"),
    [
        ("files.getUploadURLExternal", 429, "ratelimited"),
        ("files.completeUploadExternal", 500, "internal_error"),
        ("files.getUploadURLExternal", 200, "invalid_auth"),
    ],
)
async def test_temporary_slack_failures_raise_delivery_error_so_the_pipeline_retries(
    slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path, method: str, status: int, error: str
) -> None:
    ts = await status_message(fake_slack)
    job = completed(await stored_output(slack_deps, make_job(ts), tmp_path, b"video"))
    fake_slack.fail(method, status=status, error=error)
    notifier = notifier_for(slack_deps)
    with pytest.raises(DeliveryError):
        await notifier.deliver(job)
    assert fake_slack.uploads == []
    await notifier.deliver(job)  # the retry goes through
    assert len(fake_slack.uploads) == 1


async def test_a_channel_that_is_gone_is_logged_not_retried(
    slack_deps: Deps, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    ts = await status_message(fake_slack)
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    with caplog.at_level(logging.ERROR, logger="bots.slack.notifier"):
        await notifier_for(slack_deps).deliver(make_job(ts, status=JobState.FAILED))
    assert "channel_not_found" in caplog.text


async def test_a_failed_status_edit_after_the_upload_does_not_ask_for_a_second_upload(
    slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    ts = await status_message(fake_slack)
    job = completed(await stored_output(slack_deps, make_job(ts), tmp_path, b"video"))
    fake_slack.fail("chat.update", status=503, error="service_unavailable")
    await notifier_for(slack_deps).deliver(job)  # no DeliveryError
    assert len(fake_slack.uploads) == 1


async def test_a_missing_result_file_is_a_temporary_delivery_error(
    slack_deps: Deps, fake_slack: FakeSlack
) -> None:
    ts = await status_message(fake_slack)
    job = completed(make_job(ts, output_key="outputs/nothing-here.mp4", output_size_bytes=10))
    with pytest.raises(DeliveryError):
        await notifier_for(slack_deps).deliver(job)


async def test_no_secret_appears_in_what_the_notifier_logs(
    slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ts = await status_message(fake_slack)
    job = completed(await stored_output(slack_deps, make_job(ts), tmp_path, b"video"))
    fake_slack.fail("files.getUploadURLExternal", status=429)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(DeliveryError) as raised:
            await notifier_for(slack_deps).deliver(job)
        await notifier_for(slack_deps).deliver(job)
    assert fake_slack.token not in caplog.text
    assert fake_slack.token not in str(raised.value)


async def test_a_large_result_is_streamed_to_slack_by_the_same_three_calls(
    slack_deps: Deps, fake_slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "STREAM_UPLOAD_OVER_BYTES", 1000)
    content = bytes(range(256)) * 40  # 10 KB: "large" for this test
    ts = await status_message(fake_slack)
    job = completed(await stored_output(slack_deps, make_job(ts), tmp_path, content))
    await notifier_for(slack_deps).deliver(job)
    [shared] = fake_slack.uploads_in(CHANNEL, THREAD)
    assert shared.content == content
    assert shared.filename == "promo_clip-clean.mp4"
    assert shared.initial_comment and "Removed a watermark" in shared.initial_comment


@pytest.mark.parametrize("streamed", [True, False])
async def test_an_upload_refused_by_the_upload_url_is_retried_later(
    slack_deps: Deps,
    fake_slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    streamed: bool,
) -> None:
    if streamed:
        monkeypatch.setattr(upload, "STREAM_UPLOAD_OVER_BYTES", 0)
    ts = await status_message(fake_slack)
    job = completed(await stored_output(slack_deps, make_job(ts), tmp_path, b"video"))
    fake_slack.upload_failures = [500]
    with pytest.raises(DeliveryError):
        await notifier_for(slack_deps).deliver(job)
    assert fake_slack.uploads == []
