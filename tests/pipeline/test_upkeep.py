"""The reaper, the expiry sweep and the intake's behaviour when Redis is away."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from core.deps import Deps
from core.errors import QueueError
from core.intake import accept
from core.jobs import JobState
from core.processing import requeue
from core.queue import run_id
from core.upkeep import reap_expired_leases, reconcile_queue, sweep_expired_results, utcnow
from tests.pipeline.conftest import new_job, run_worker, store_clip


async def test_expiry_sweep_deletes_inputs_and_outputs_of_expired_jobs(
    deps: Deps, small_clip: Path
) -> None:
    old = await accept(deps, await store_clip(deps, new_job(), small_clip))
    await run_worker(deps)
    done = await deps.store.get(old.job.id)
    assert done is not None and done.status == JobState.COMPLETED
    assert done.input_key and done.output_key

    assert await sweep_expired_results(deps, now=utcnow()) == 0  # not expired yet
    assert await sweep_expired_results(deps, now=utcnow() + timedelta(days=8)) == 1

    assert not await deps.storage.exists(done.input_key)
    assert not await deps.storage.exists(done.output_key)
    swept = await deps.store.get(done.id)
    assert swept is not None and swept.input_key is None and swept.output_key is None
    assert await sweep_expired_results(deps, now=utcnow() + timedelta(days=8)) == 0


async def test_the_reaper_leaves_live_leases_and_queues_the_next_run_at_once(
    deps: Deps, small_clip: Path
) -> None:
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
    dead = await deps.store.claim(accepted.job.id, "dead-worker", 60)
    assert dead is not None
    assert await reap_expired_leases(deps, now=utcnow()) == []  # its lease is still running

    [reaped] = await reap_expired_leases(deps, now=utcnow() + timedelta(seconds=61))
    assert (reaped.status, reaped.current_step) == (JobState.QUEUED, "waiting to retry")
    assert reaped.error_message == "attempt 1: worker stopped responding"
    # no retry backoff: the run did not fail, its worker went away
    score = await deps.redis.zscore(deps.settings.queue_name, run_id(deps.settings, dead.id, 2))
    # arq rounds its score to the nearest millisecond, so it may read up to 0.5 ms ahead
    assert score is not None and score <= utcnow().timestamp() * 1000 + 1

    # the dead worker coming back cannot requeue it a second time
    again = await requeue(deps, dead, step="waiting to retry", defer_s=0, owner="dead-worker")
    assert again is None


class RedisDown:
    """A JobQueue whose Redis does not answer."""

    async def enqueue_run(self, job_id: str, attempt: int, defer_s: float = 0) -> bool:
        raise QueueError("Redis is unreachable (ConnectionError)")

    async def holds(self, job_id: str, attempt: int) -> bool:
        raise QueueError("Redis is unreachable (ConnectionError)")


async def test_a_job_accepted_while_redis_is_down_is_kept_and_queued_by_the_reconciler(
    deps: Deps, small_clip: Path
) -> None:
    real_queue = deps.queue
    deps.queue = RedisDown()  # type: ignore[assignment]
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
    assert accepted.created and accepted.job.status == JobState.QUEUED

    deps.queue = real_queue  # Redis is back
    assert await reconcile_queue(deps) == [accepted.job.id]
    await run_worker(deps)

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.COMPLETED
