"""Delivery: once per job, retried with backoff on DeliveryError, given up and counted at the end."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from core import queue as arq_queue
from core.delivery import DELIVERY_BACKOFF_S, deliver_result, delivery_failures
from core.deps import Deps
from core.jobs import JobState
from core.metrics import delivery_failures_key
from core.upkeep import reconcile_deliveries, utcnow
from tests.pipeline.conftest import new_job, run_worker, store_clip
from tests.pipeline.fakes import CountingNotifier


async def ended_job(deps: Deps, clip: Path, state: JobState = JobState.COMPLETED) -> str:
    job, _ = await deps.store.create(await store_clip(deps, new_job(), clip))
    await deps.store.claim(job.id, "w", 60)
    await deps.store.move(
        job.id, state, owner="w", error_message="nope" if state == JobState.FAILED else None
    )
    return job.id


async def test_a_failed_delivery_is_released_and_retried_later_with_backoff(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    notifier.failures = 1
    job_id = await ended_job(deps, small_clip)

    assert await deliver_result(deps, job_id, 0) == "retrying"

    job = await deps.store.get(job_id)
    assert job is not None and job.delivered_at is None  # claim released for the next try
    score = await deps.redis.zscore(
        deps.settings.queue_name, arq_queue.delivery_id(deps.settings, job_id, 1)
    )
    wait_s = score / 1000 - utcnow().timestamp()
    assert DELIVERY_BACKOFF_S[0] - 1 < wait_s < DELIVERY_BACKOFF_S[0] * 1.2 + 1

    assert await deliver_result(deps, job_id, 1) == "delivered"
    assert notifier.delivered == [(job_id, "completed")]


async def test_delivery_is_given_up_after_the_last_try_and_counted(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    notifier.failures = 100
    job_id = await ended_job(deps, small_clip, JobState.FAILED)

    outcome = await deliver_result(deps, job_id, len(DELIVERY_BACKOFF_S))

    assert outcome == "given up"
    assert await delivery_failures(deps) == 1
    assert int(await deps.redis.get(delivery_failures_key(deps.settings, "webhook"))) == 1
    assert await deps.queue.depth() == 0
    assert notifier.delivered == []
    job = await deps.store.get(job_id)
    assert job is not None and job.delivered_at is not None  # settled: never retried again
    assert await reconcile_deliveries(deps, utcnow() + timedelta(hours=1)) == []


async def test_a_delivery_lost_with_redis_is_queued_again_by_the_reconciler(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    job_id = await ended_job(deps, small_clip)  # ended, but no delivery was ever queued
    assert await reconcile_deliveries(deps) == []  # still within the grace period

    later = utcnow() + timedelta(minutes=10)
    assert await reconcile_deliveries(deps, later) == [job_id]
    assert await reconcile_deliveries(deps, later) == []  # arq holds it now
    await run_worker(deps)
    assert notifier.count(job_id) == 1


async def test_the_reconciler_leaves_a_delivery_waiting_out_its_backoff(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    notifier.failures = 1
    job_id = await ended_job(deps, small_clip)
    assert await deliver_result(deps, job_id, 0) == "retrying"

    assert await reconcile_deliveries(deps, utcnow() + timedelta(minutes=10)) == []


async def test_a_job_is_delivered_once_however_often_delivery_runs(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    job_id = await ended_job(deps, small_clip)
    for attempt in range(3):
        await deps.queue.enqueue_delivery(job_id, attempt)

    await run_worker(deps)
    assert await deliver_result(deps, job_id, 9) == "already delivered"

    assert notifier.count(job_id) == 1


async def test_unfinished_jobs_are_not_delivered(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    job, _ = await deps.store.create(await store_clip(deps, new_job(), small_clip))

    assert await deliver_result(deps, job.id, 0) == "job is queued, nothing to deliver yet"
    assert notifier.delivered == []


async def test_sources_without_a_notifier_are_marked_delivered(
    deps: Deps, small_clip: Path
) -> None:
    deps.notifiers.clear()
    job_id = await ended_job(deps, small_clip)

    assert await deliver_result(deps, job_id, 0) == "no notifier"
    job = await deps.store.get(job_id)
    assert job is not None and job.delivered_at is not None
