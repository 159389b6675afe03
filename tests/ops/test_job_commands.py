"""`/job`, `/retry` and `/cancel` on real stores and Redis."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from arq.constants import job_key_prefix

from core.deps import Deps
from core.jobs import JobState
from core.ops import OpsRequest, handle_command
from core.queue import delivery_id
from tests.ops.conftest import SLACK_ADMIN, Clock, ended_at, processing_at, queued_at

pytestmark = [pytest.mark.redis]


def cli(command: str, args: str = "") -> OpsRequest:
    return OpsRequest("cli", "alice", command, args)


async def test_job_shows_state_progress_attempts_error_and_timings(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    job = await processing_at(
        store,
        clock,
        now - timedelta(minutes=3),
        now - timedelta(minutes=2),
        progress=55,
        step="inpainting",
        beat_at=now - timedelta(seconds=5),
    )
    clock.at(now)
    reply = await handle_command(deps, cli("job", job.id))
    assert reply.ok
    assert reply.data["status"] == "processing"
    assert reply.data["progress"] == 55
    assert reply.data["waited_s"] == 60.0
    assert f"Job {job.id}: processing" in reply.text
    assert "Progress: 55% (inpainting)" in reply.text
    assert "Attempts: 1/3" in reply.text
    assert "(waited 60 s)" in reply.text
    assert "Worker: worker-1" in reply.text

    failed = await ended_at(store, clock, now - timedelta(minutes=10), 90, JobState.FAILED)
    reply = await handle_command(deps, cli("job", failed.id))
    assert "Error: engine crashed" in reply.text
    assert "(total 1.5 min)" in reply.text


async def test_job_with_an_unknown_id_says_so(deps: Deps) -> None:
    reply = await handle_command(deps, cli("job", "doesnotexist"))
    assert not reply.ok
    assert reply.text == "No job with id doesnotexist."


async def test_retry_puts_a_failed_job_back_in_the_queue_with_fresh_attempts(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    failed = await ended_at(store, clock, now - timedelta(minutes=10), 90, JobState.FAILED)
    clock.at(now)
    reply = await handle_command(deps, cli("retry", failed.id))
    assert reply.ok, reply.text
    job = await store.get(failed.id)
    assert job.status == JobState.QUEUED
    assert job.error_message is None and job.completed_at is None
    assert job.max_attempts == 1 + deps.settings.max_attempts
    assert await deps.queue.holds(failed.id, 2)
    assert f"Job {failed.id} (failed) is back in the queue: attempt 2 of 4." in reply.text


async def test_retry_of_a_cancelled_job_queues_it(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    job = await queued_at(store, clock, now - timedelta(minutes=1))
    await store.move(job.id, JobState.CANCELLED, expected=[JobState.QUEUED])
    reply = await handle_command(deps, cli("retry", job.id))
    assert reply.ok
    assert (await store.get(job.id)).status == JobState.QUEUED
    assert await deps.queue.holds(job.id, 1)


async def test_retry_refuses_a_job_that_is_not_failed_or_cancelled(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    job = await processing_at(store, clock, now - timedelta(minutes=2), now - timedelta(minutes=1))
    reply = await handle_command(deps, cli("retry", job.id))
    assert not reply.ok
    assert "is processing; only failed or cancelled jobs can be retried" in reply.text
    assert (await store.get(job.id)).status == JobState.PROCESSING


async def test_cancel_of_a_running_job_takes_it_from_its_worker(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    job = await processing_at(store, clock, now - timedelta(minutes=2), now - timedelta(minutes=1))
    clock.at(now)
    reply = await handle_command(deps, OpsRequest("slack", SLACK_ADMIN, "cancel", job.id))
    assert reply.ok
    assert "cancelled (was processing; the worker stops at its next heartbeat)" in reply.text
    cancelled = await store.get(job.id)
    assert cancelled.status == JobState.CANCELLED
    assert cancelled.error_message == "Cancelled by an operator."
    assert cancelled.lease_owner is None
    # the worker's next heartbeat finds the job is no longer its own, and stops
    assert await store.heartbeat(job.id, "worker-1", 300, progress=50) is None
    # the requester hears about it
    assert await deps.redis.exists(job_key_prefix + delivery_id(deps.settings, job.id, 0))


async def test_cancel_of_a_queued_job_keeps_it_from_running(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    job = await queued_at(store, clock, now)
    reply = await handle_command(deps, cli("cancel", job.id))
    assert reply.ok and "it will not run" in reply.text
    assert await store.claim(job.id, "worker-1", 300) is None


async def test_cancel_of_an_ended_job_changes_nothing(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    done = await ended_at(store, clock, now - timedelta(minutes=5), 60)
    reply = await handle_command(deps, cli("cancel", done.id))
    assert not reply.ok
    assert reply.text == f"Job {done.id} is already completed; nothing to cancel."
    assert (await store.get(done.id)).status == JobState.COMPLETED
