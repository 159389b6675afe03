"""A worker SIGKILLed (or OOM-killed) after arq handed it a run but before it claimed the row
leaves arq's in-progress marker behind, for the run's whole arq timeout (ENGINE_TIMEOUT_S + 1 h);
one killed inside a delivery leaves that marker on the delivery try, and maybe a delivery claim.
None of them may lose the job, nor send its result twice.

Found by benchmarks/soak.py: 3 of 200 jobs stayed `queued` and never ran after one of two
workers was killed. Here the state the dead worker leaves is made directly (the marker arq
sets when it starts a job), so the test is deterministic.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from arq.constants import in_progress_key_prefix

from core import upkeep
from core.delivery import deliver_result
from core.deps import Deps
from core.intake import accept
from core.jobs import Job, JobState
from core.ports import DELIVERY_CLAIM_TTL
from core.queue import delivery_id, run_id
from tests.pipeline import conftest as pipeline
from tests.pipeline.conftest import new_job, run_worker, store_clip
from tests.reliability.helpers import run_worker_until

pytestmark = pytest.mark.redis

# the pipeline tests' fixtures: real Redis (by prefix), SQLite, local storage, scripted engine
settings = pipeline.settings
notifier = pipeline.notifier
deps = pipeline.deps


async def test_a_run_picked_up_by_a_worker_that_died_before_claiming_runs_again_soon(
    deps: Deps, small_clip
) -> None:
    job = (await accept(deps, await store_clip(deps, new_job(), small_clip))).job
    arq_id = run_id(deps.settings, job.id, 1)
    # what arq wrote when the (now dead) worker started this run
    await deps.redis.psetex(in_progress_key_prefix + arq_id, 5_400_000, b"1")

    await upkeep.reconcile_queue(deps)  # just accepted: a live worker may be claiming it
    assert await deps.redis.exists(in_progress_key_prefix + arq_id)
    a_lease_later = datetime.now(UTC) + timedelta(seconds=deps.settings.job_lease_seconds + 1)
    await upkeep.reconcile_queue(deps, now=a_lease_later)

    async def completed() -> bool:
        current = await deps.store.get(job.id)
        return current is not None and current.status == JobState.COMPLETED

    await run_worker_until(deps, completed, 4)


async def test_a_delivery_claimed_by_a_worker_that_died_is_sent_later(
    deps: Deps, notifier, small_clip
) -> None:
    job = (await accept(deps, await store_clip(deps, new_job(), small_clip))).job

    async def delivered() -> bool:
        current = await deps.store.get(job.id)
        return current is not None and current.delivered_at is not None

    await run_worker_until(deps, delivered, 10)
    assert notifier.count(job.id) == 1
    # the state a worker killed inside deliver_result leaves (and Redis then lost its arq
    # entry): claimed, the notifier never ran
    await deps.store.release_delivery(job.id)
    assert await deps.store.claim_delivery(job.id)
    assert await upkeep.reconcile_deliveries(deps) == []  # the claim may still be live

    later = datetime.now(UTC) + DELIVERY_CLAIM_TTL + timedelta(minutes=1)
    assert await upkeep.reconcile_deliveries(deps, now=later) == [job.id]
    # the real clock has not moved on: let the claim look stale to the store as well
    await deps.store.release_delivery(job.id)
    await run_worker_until(deps, delivered, 10)
    assert notifier.count(job.id) == 2


async def ended_with_delivery_picked_up(deps: Deps, small_clip) -> tuple[str, str]:
    """A completed job whose delivery try 0 arq handed to a worker (its in-progress marker,
    as arq writes it, is set); return the job id and the marker's key."""
    job = (await accept(deps, await store_clip(deps, new_job(), small_clip))).job
    assert await deps.store.claim(job.id, "worker-1", 60) is not None
    assert await deps.store.move(job.id, JobState.COMPLETED, owner="worker-1") is not None
    await deps.queue.enqueue_delivery(job.id, 0)
    marker = in_progress_key_prefix + delivery_id(deps.settings, job.id, 0)
    await deps.redis.psetex(marker, 5_400_000, b"1")
    return job.id, marker


async def test_a_delivery_picked_up_by_a_worker_that_died_is_queued_again_after_the_claim_ttl(
    deps: Deps, notifier, small_clip
) -> None:
    job_id, marker = await ended_with_delivery_picked_up(deps, small_clip)

    # past the reconciler's grace but within the claim TTL: a live worker may be claiming it
    soon = datetime.now(UTC) + upkeep.DELIVERY_GRACE + timedelta(minutes=1)
    assert await upkeep.reconcile_deliveries(deps, now=soon) == []
    assert await deps.redis.exists(marker)

    later = datetime.now(UTC) + DELIVERY_CLAIM_TTL + timedelta(minutes=1)
    # the marker is dropped; try 0 is still in arq's queue, so nothing new is queued
    assert await upkeep.reconcile_deliveries(deps, now=later) == []
    assert not await deps.redis.exists(marker)

    async def delivered() -> bool:
        current = await deps.store.get(job_id)
        return current is not None and current.delivered_at is not None

    await run_worker_until(deps, delivered, 10)
    assert notifier.count(job_id) == 1


async def test_a_delivery_freed_from_a_worker_that_was_only_slow_is_still_sent_once(
    deps: Deps, notifier, small_clip, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, marker = await ended_with_delivery_picked_up(deps, small_clip)
    later = datetime.now(UTC) + DELIVERY_CLAIM_TTL + timedelta(minutes=1)
    assert await upkeep.reconcile_deliveries(deps, now=later) == []
    assert not await deps.redis.exists(marker)

    # the worker was alive after all, only slow: it has claimed the delivery and is still
    # sending when arq hands try 0 to another worker
    sending, go_on = asyncio.Event(), asyncio.Event()
    send = notifier.deliver

    async def slow_first_send(job: Job) -> None:
        if not sending.is_set():
            sending.set()
            await go_on.wait()
        await send(job)

    monkeypatch.setattr(notifier, "deliver", slow_first_send)
    slow = asyncio.create_task(deliver_result(deps, job_id, 0))
    await asyncio.wait_for(sending.wait(), 10)
    await run_worker(deps)
    assert await deps.queue.depth() == 0  # the second pick-up ran, and stood back
    go_on.set()

    assert await slow == "delivered"
    assert notifier.count(job_id) == 1
