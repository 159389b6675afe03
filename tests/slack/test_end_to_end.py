"""A video posted in a Slack thread comes back cleaned in that thread, exactly once.

Real aiohttp app, real Redis, SQLite store, local storage, real arq worker and the real
engine (in its child process); only Slack is the loopback fake.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bots.slack import SLACK_BOT_KEY
from core.deps import Deps, build
from core.jobs import JobState
from core.processing import Policy
from core.settings import Settings
from core.worker import build_worker
from tests.media import count_frames
from tests.pipeline.conftest import claim_and_die, reap_dead
from tests.slack.conftest import SlackApp, build_web_app
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_http import event_envelope, message_event

pytestmark = [pytest.mark.redis, pytest.mark.slow]

#: short lease and retry waits so a whole job's life fits in a test
FAST = Policy(lease_s=2, heartbeat_s=0.1, retry_base_s=0.02)
CHANNEL = "C0VIDEOS"
PARENT_TS = "1700000000.000100"


@pytest.fixture
async def e2e_deps(slack_settings: Callable[..., Settings]) -> AsyncIterator[Deps]:
    """Everything real, as `blanklogo web` and `blanklogo worker` build it."""
    deps = await build(slack_settings(max_upload_mb=20, job_lease_seconds=FAST.lease_s))
    yield deps
    await deps.close()


async def run_worker(deps: Deps) -> None:
    worker = build_worker(
        deps.settings, deps=deps, policy=FAST, burst=True, poll_delay=0, handle_signals=False
    )
    try:
        await worker.async_run()
    finally:
        with contextlib.suppress(Exception):
            await worker.close()


async def test_a_video_posted_in_a_thread_comes_back_cleaned_in_that_thread_exactly_once(
    aiohttp_client: Any, e2e_deps: Deps, fake_slack: FakeSlack, small_clip: Path, tmp_path: Path
) -> None:
    deps = e2e_deps
    app = build_web_app(deps)
    slack = SlackApp(client=await aiohttp_client(app), bot=app[SLACK_BOT_KEY])
    assert set(deps.notifiers) >= {"slack"}

    # a user posts a clip in a thread; Slack, impatient, delivers the event twice
    file = fake_slack.host_file(small_clip.read_bytes(), "small clip.mp4")
    event = message_event(channel=CHANNEL, thread_ts=PARENT_TS, text="clean it", files=[file])
    envelope = event_envelope(event)
    assert (await slack.post_event(envelope))[0] == 200
    assert (await slack.post_event(envelope, retry_num=1))[0] == 200
    await slack.settle()

    [queued] = await deps.store.list_jobs()
    [status] = fake_slack.thread(CHANNEL, PARENT_TS)
    assert "queued" in status["text"]

    # a first worker claims the job, runs the whole removal, then dies before saying so
    dead = await claim_and_die(deps, queued.id)

    async def nothing(percent: int, step: str) -> None:
        return None

    first_run = await deps.engine.process(dead, nothing)
    assert first_run.output_size_bytes > 0

    # its lease runs out; the reaper hands the job to a real worker, which runs it again
    await run_worker(deps)  # the queued run finds the job taken and leaves it
    reaped = await reap_dead(deps)
    assert [job.id for job in reaped] == [queued.id]
    await run_worker(deps)

    job = await deps.store.get(queued.id)
    assert job is not None and job.status == JobState.COMPLETED and job.attempts == 2
    assert job.delivered_at is not None

    # the dead worker comes back: its completion is refused and a stray delivery changes nothing
    late = await deps.store.move(
        job.id, JobState.COMPLETED, expected=[JobState.PROCESSING], owner="dead-worker"
    )
    assert late is None
    await deps.queue.enqueue_delivery(job.id, attempt=9)
    await run_worker(deps)

    # exactly one cleaned MP4, in the same thread, playable, with every frame
    [upload] = fake_slack.uploads
    assert (upload.channel_id, upload.thread_ts) == (CHANNEL, PARENT_TS)
    assert upload.filename == "small_clip-clean.mp4"
    result = tmp_path / "result.mp4"
    result.write_bytes(upload.content)
    assert upload.content[4:8] == b"ftyp"
    assert count_frames(result) == count_frames(small_clip)
    assert upload.initial_comment and "Took" in upload.initial_comment
    # the status message was edited to say it is done, and no other reply was posted
    [status] = fake_slack.thread(CHANNEL, PARENT_TS)
    assert "done" in status["text"] and job.id in status["text"]
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
