"""A job's life through the real arq worker: states, retries, leases, hand-back, delivery."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from arq import cron
from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)

from core import queue as arq_queue
from core.deps import Deps
from core.errors import EngineError, NotAVideo
from core.health import read_worker_heartbeats
from core.intake import accept
from core.jobs import JobState
from core.processing import Policy
from core.upkeep import reconcile_queue, utcnow
from core.worker import StoppableWorker, build_worker, close_worker
from tests.pipeline.conftest import (
    build_deps,
    claim_and_die,
    new_job,
    reap_dead,
    run_worker,
    store_clip,
)
from tests.pipeline.fakes import CountingNotifier, ScriptedEngine


async def test_accepted_job_is_processed_completed_and_delivered_once(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    deps.engine.delay_s = 0.3  # type: ignore[attr-defined]
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
    assert accepted.created and accepted.position == 1

    await run_worker(deps)

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.COMPLETED
    assert (job.progress, job.current_step, job.attempts) == (100, "done", 1)
    assert job.output_key == f"outputs/{job.id}.mp4" and await deps.storage.exists(job.output_key)
    assert job.output_size_bytes == small_clip.stat().st_size
    assert job.lease_owner is None and job.error_message is None
    assert job.processing_time_ms is not None and job.delivered_at is not None
    assert notifier.delivered == [(job.id, "completed")]
    assert (job.id, 10, "removing") in notifier.progress_seen  # heartbeats carried progress


async def test_arq_carries_only_ids_as_json(deps: Deps, small_clip: Path) -> None:
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))

    raw = await deps.redis.get(job_key_prefix + arq_queue.run_id(deps.settings, accepted.job.id, 1))

    payload = json.loads(raw)  # JSON, not pickle
    assert payload["f"] == "run_job" and payload["a"] == [accepted.job.id, 1] and payload["k"] == {}


async def test_accepting_the_same_idempotency_key_twice_keeps_one_job(
    deps: Deps, small_clip: Path
) -> None:
    first = await accept(deps, await store_clip(deps, new_job(idempotency_key="k-1"), small_clip))
    again = await accept(deps, await store_clip(deps, new_job(idempotency_key="k-1"), small_clip))
    other = await accept(deps, await store_clip(deps, new_job(), small_clip))

    assert again.job.id == first.job.id and not again.created
    assert (first.position, again.position, other.position) == (1, 1, 2)
    assert await deps.queue.depth() == 2


async def test_transient_engine_errors_retry_up_to_max_attempts_then_fail_readably(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    engine: ScriptedEngine = deps.engine  # type: ignore[assignment]
    engine.default = EngineError("the GPU ran out of memory")
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))

    await run_worker(deps)

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.FAILED
    assert job.attempts == 3 and len(engine.calls) == 3
    assert job.error_message == "gave up after 3 attempts: the GPU ran out of memory"
    assert notifier.delivered == [(job.id, "failed")]


async def test_a_transient_error_then_success_completes_on_the_second_attempt(
    deps: Deps, small_clip: Path
) -> None:
    engine: ScriptedEngine = deps.engine  # type: ignore[assignment]
    engine.script = [EngineError("storage hiccup"), "ok"]
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))

    await run_worker(deps)

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.COMPLETED
    assert job.attempts == 2 and job.error_message is None


async def test_permanent_error_fails_at_once_with_the_users_message(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    engine: ScriptedEngine = deps.engine  # type: ignore[assignment]
    engine.default = NotAVideo("this file is not a video")
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))

    await run_worker(deps)

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.FAILED
    assert job.attempts == 1 and len(engine.calls) == 1
    assert job.error_message == "this file is not a video"
    assert notifier.count(job.id) == 1


async def test_expired_lease_is_reaped_run_again_and_delivered_once(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
    # a worker that claims the job and then dies without a word
    dead = await claim_and_die(deps, accepted.job.id)
    await run_worker(deps)  # arq's run 1 finds the job taken and leaves it
    assert (await deps.store.get(dead.id)).status == JobState.PROCESSING  # type: ignore[union-attr]

    reaped = await reap_dead(deps)
    assert [job.id for job in reaped] == [dead.id]
    await run_worker(deps)

    job = await deps.store.get(dead.id)
    assert job is not None and job.status == JobState.COMPLETED and job.attempts == 2
    # the dead worker comes back and tries to finish: its result is refused, no second delivery
    late = await deps.store.move(
        dead.id, JobState.COMPLETED, expected=[JobState.PROCESSING], owner="dead-worker"
    )
    assert late is None
    await deps.queue.enqueue_delivery(dead.id, attempt=7)
    await run_worker(deps)
    assert notifier.count(dead.id) == 1


async def test_reaper_fails_a_job_whose_attempts_are_used_up(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    accepted = await accept(deps, await store_clip(deps, new_job(max_attempts=1), small_clip))
    await claim_and_die(deps, accepted.job.id)

    await reap_dead(deps)
    await run_worker(deps)

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.FAILED
    assert job.error_message == "worker stopped responding; gave up after 1 attempts"
    assert notifier.count(job.id) == 1


async def test_two_workers_never_process_the_same_job(
    settings, notifier: CountingNotifier, small_clip: Path
) -> None:
    first = await build_deps(settings, notifier)
    engine = ScriptedEngine(first.storage, delay_s=0.5)
    first.engine = engine
    second = await build_deps(settings, notifier, engine=engine)
    try:
        accepted = await accept(first, await store_clip(first, new_job(), small_clip))
        # a duplicate run in arq under another attempt id, as a confused reconciler might add
        await first.queue.enqueue_run(accepted.job.id, 2)

        await asyncio.gather(run_worker(first), run_worker(second))

        job = await first.store.get(accepted.job.id)
        assert job is not None and job.status == JobState.COMPLETED
        assert engine.calls == [job.id] and engine.max_running == 1
        assert notifier.count(job.id) == 1
    finally:
        await second.close()
        await first.close()


async def test_cancelling_a_running_job_stops_the_work_and_drops_the_result(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    engine: ScriptedEngine = deps.engine  # type: ignore[assignment]
    engine.default = "hang"
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
    worker = asyncio.create_task(run_worker(deps))
    await asyncio.wait_for(engine.started.wait(), 10)

    await deps.store.move(accepted.job.id, JobState.CANCELLED, expected=[JobState.PROCESSING])
    await asyncio.wait_for(worker, 10)

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.CANCELLED and job.output_key is None
    assert engine.cancelled == 1
    assert notifier.delivered == [(job.id, "cancelled")]


async def _worker_on_the_job(
    deps: Deps, engine: ScriptedEngine
) -> tuple[StoppableWorker, asyncio.Task[None]]:
    """A worker running in this process, once the engine has started on the queued job."""
    slow = Policy(lease_s=300, heartbeat_s=0.1)
    worker = build_worker(deps.settings, deps=deps, policy=slow, poll_delay=0, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(engine.started.wait(), 10)
    return worker, running


async def test_graceful_shutdown_hands_the_job_back_at_once(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    engine: ScriptedEngine = deps.engine  # type: ignore[assignment]
    engine.script = ["hang"]
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
    worker, running = await _worker_on_the_job(deps, engine)
    alive = await read_worker_heartbeats(deps.redis, deps.settings)
    assert [beat["jobs_running"] for beat in alive] == [1]

    await close_worker(worker)  # what SIGTERM does: cancel the running jobs, then shut down
    running.cancel()
    assert await read_worker_heartbeats(deps.redis, deps.settings) == []

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.QUEUED
    assert job.attempts == 0 and job.lease_owner is None and engine.cancelled == 1
    assert await deps.queue.holds(job.id, 1)

    await run_worker(deps)  # another worker takes it straight away, no lease to wait out
    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.COMPLETED and job.attempts == 1
    assert notifier.count(job.id) == 1


async def test_a_worker_stopped_again_and_again_leaves_the_job_to_the_next_one_each_time(
    deps: Deps, notifier: CountingNotifier, small_clip: Path
) -> None:
    # A stop that came while the poll loop was picking the handed-back run up again left
    # it marked in progress with no task (the next worker skipped it for arq's whole
    # timeout; a burst worker polled it forever), or started a task after the running
    # ones were cancelled, which then ran on (a cron run's then left its in-progress
    # marker: the next burst worker waited on it). Each 40-stop run of this test hit one.
    engine: ScriptedEngine = deps.engine  # type: ignore[assignment]
    engine.default = "hang"
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
    stops = 40
    for _ in range(stops):
        engine.started.clear()
        worker, running = await _worker_on_the_job(deps, engine)
        await close_worker(worker)
        running.cancel()
        assert engine.running == 0
    assert engine.cancelled == stops

    engine.default = "ok"
    await asyncio.wait_for(run_worker(deps), 10)
    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.COMPLETED and job.attempts == 1
    assert notifier.count(job.id) == 1


async def test_a_stop_during_a_cron_run_leaves_nothing_for_the_next_worker_to_wait_on(
    deps: Deps,
) -> None:
    ticking = asyncio.Event()
    cut: list[str] = []

    async def tick_forever(ctx: dict[str, Any]) -> None:
        cut.append(ctx["job_id"])
        ticking.set()
        await asyncio.Event().wait()

    name = f"{deps.settings.redis_prefix}:tick_forever"
    worker = build_worker(
        deps.settings,
        deps=deps,
        poll_delay=0,
        handle_signals=False,
        cron_jobs=[cron(tick_forever, name=name, run_at_startup=True)],
    )
    running = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(ticking.wait(), 10)
    [arq_id] = cut
    assert arq_id.startswith(f"{name}:")

    await close_worker(worker)
    running.cancel()

    # arq would keep the run queued, in progress for a minute, then fail it as retried once
    prefixes = (in_progress_key_prefix, job_key_prefix, retry_key_prefix, result_key_prefix)
    assert [await deps.redis.exists(p + arq_id) for p in prefixes] == [0, 0, 0, 0]
    assert await deps.redis.zscore(deps.settings.queue_name, arq_id) is None

    after = await run_worker(deps)
    assert (after.jobs_failed, after.jobs_retried) == (0, 0)


async def test_reconciler_requeues_queued_rows_that_redis_lost(
    deps: Deps, small_clip: Path
) -> None:
    stored, _ = await deps.store.create(await store_clip(deps, new_job(), small_clip))
    assert not await deps.queue.holds(stored.id, 1)  # as if Redis had been flushed

    assert await reconcile_queue(deps) == [stored.id]
    assert await reconcile_queue(deps) == []  # held now: never queued twice
    await run_worker(deps)

    job = await deps.store.get(stored.id)
    assert job is not None and job.status == JobState.COMPLETED


async def test_retry_waits_are_deferred_in_arq_not_slept_in_the_worker(
    deps: Deps, small_clip: Path
) -> None:
    engine: ScriptedEngine = deps.engine  # type: ignore[assignment]
    engine.script = [EngineError("flaky")]
    accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
    slow_retry = Policy(lease_s=2, heartbeat_s=0.1, retry_base_s=30)

    await run_worker(deps, slow_retry, max_burst_jobs=2)  # run 1 and the start-up reconciler

    job = await deps.store.get(accepted.job.id)
    assert job is not None and job.status == JobState.QUEUED and job.attempts == 1
    assert job.error_message == "attempt 1 failed: flaky"
    score = await deps.redis.zscore(
        deps.settings.queue_name, arq_queue.run_id(deps.settings, job.id, 2)
    )
    wait_s = score / 1000 - utcnow().timestamp()
    assert 50 < wait_s < 80  # 2^1 × 30 s plus jitter
