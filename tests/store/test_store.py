"""The JobStore contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core.errors import IllegalTransition, StoreError
from core.jobs import JobState, Source
from core.ports import AuditEntry
from core.store.base import SqlJobStore
from tests.store.conftest import Clock, new_job

LEASE = 300


async def claimed(store: SqlJobStore, n: int = 0, owner: str = "worker-a", **kw: object):
    job, _ = await store.create(new_job(n, **kw))
    got = await store.claim(job.id, owner, LEASE)
    assert got is not None
    return got


async def test_created_job_round_trips_exactly(store: SqlJobStore, clock: Clock) -> None:
    job, created = await store.create(new_job(1))
    assert created
    assert job.status is JobState.QUEUED
    assert job.created_at == clock.now and job.created_at.tzinfo is not None
    assert job.expires_at == clock.now + timedelta(days=7)
    assert await store.get(job.id) == job
    assert await store.get("no-such-job") is None


async def test_every_settable_field_round_trips(store: SqlJobStore, clock: Clock) -> None:
    job = await claimed(store)
    done = await store.move(
        job.id,
        JobState.COMPLETED,
        owner="worker-a",
        output_key=f"outputs/{job.id}.mp4",
        output_size_bytes=2**40,
        input_duration_sec=12.625,
        processing_time_ms=4321,
        progress=100,
        current_step="done",
        report={"regions": [{"box": [1, 2, 3, 4], "opacity": 0.5}], "device": "cpu"},
        reply_to={"channel": "C1", "thread_ts": "1.2", "message_ts": "1.3"},
    )
    assert done is not None
    assert await store.get(job.id) == done
    assert done.output_size_bytes == 2**40
    assert done.report == {"regions": [{"box": [1, 2, 3, 4], "opacity": 0.5}], "device": "cpu"}
    assert done.reply_to["message_ts"] == "1.3"
    assert done.completed_at == clock.now


async def test_repeated_idempotency_key_returns_first_job(store: SqlJobStore) -> None:
    first, created = await store.create(new_job(1, idempotency_key="req-1"))
    again, created_again = await store.create(new_job(2, idempotency_key="req-1"))
    assert created and not created_again
    assert again == first
    other, created_other = await store.create(new_job(3, idempotency_key="req-2"))
    assert created_other and other.id != first.id


async def test_concurrent_creates_with_one_key_make_one_job(store: SqlJobStore) -> None:
    results = await asyncio.gather(
        *(store.create(new_job(n, idempotency_key="same")) for n in range(8))
    )
    assert sum(created for _, created in results) == 1
    assert len({job.id for job, _ in results}) == 1
    assert len(await store.list_jobs()) == 1


async def test_claim_takes_a_lease_and_counts_the_attempt(store: SqlJobStore, clock: Clock) -> None:
    job, _ = await store.create(new_job())
    got = await store.claim(job.id, "worker-a", LEASE)
    assert got is not None
    assert got.status is JobState.PROCESSING
    assert got.lease_owner == "worker-a"
    assert got.lease_expires_at == clock.now + timedelta(seconds=LEASE)
    assert got.started_at == clock.now
    assert got.attempts == 1


async def test_second_claim_of_claimed_job_fails(store: SqlJobStore) -> None:
    job = await claimed(store)
    assert await store.claim(job.id, "worker-b", LEASE) is None
    assert (await store.get(job.id)).lease_owner == "worker-a"  # type: ignore[union-attr]
    assert await store.claim("no-such-job", "worker-b", LEASE) is None


async def test_concurrent_claims_give_the_job_to_one_worker(store: SqlJobStore) -> None:
    job, _ = await store.create(new_job())
    results = await asyncio.gather(*(store.claim(job.id, f"w{i}", LEASE) for i in range(10)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert (await store.get(job.id)).attempts == 1  # type: ignore[union-attr]


async def test_heartbeat_renews_lease_and_records_progress(
    store: SqlJobStore, clock: Clock
) -> None:
    job = await claimed(store)
    clock.advance(100)
    beat = await store.heartbeat(job.id, "worker-a", LEASE, progress=40, step="removing")
    assert beat is not None
    assert beat.lease_expires_at == clock.now + timedelta(seconds=LEASE)
    assert (beat.progress, beat.current_step) == (40, "removing")
    quiet = await store.heartbeat(job.id, "worker-a", LEASE)
    assert quiet is not None and (quiet.progress, quiet.current_step) == (40, "removing")
    clamped = await store.heartbeat(job.id, "worker-a", LEASE, progress=250)
    assert clamped is not None and clamped.progress == 100


async def test_heartbeat_returns_none_once_the_worker_lost_the_job(store: SqlJobStore) -> None:
    job = await claimed(store)
    assert await store.heartbeat(job.id, "worker-b", LEASE, progress=10) is None
    assert (await store.get(job.id)).progress == 0  # type: ignore[union-attr]
    assert await store.move(job.id, JobState.CANCELLED) is not None
    assert await store.heartbeat(job.id, "worker-a", LEASE, progress=50) is None
    requeued = await claimed(store, 1)
    await store.move(requeued.id, JobState.QUEUED, owner="worker-a")
    await store.claim(requeued.id, "worker-b", LEASE)
    assert await store.heartbeat(requeued.id, "worker-a", LEASE) is None
    assert await store.heartbeat(requeued.id, "worker-b", LEASE) is not None


async def test_move_needs_the_owner_when_one_is_named(store: SqlJobStore) -> None:
    job = await claimed(store)
    assert await store.move(job.id, JobState.COMPLETED, owner="worker-b") is None
    assert (await store.get(job.id)).status is JobState.PROCESSING  # type: ignore[union-attr]
    done = await store.move(job.id, JobState.COMPLETED, owner="worker-a")
    assert done is not None and done.status is JobState.COMPLETED


async def test_move_only_from_expected_states(store: SqlJobStore) -> None:
    job, _ = await store.create(new_job())
    assert await store.move(job.id, JobState.CANCELLED, expected=[JobState.PROCESSING]) is None
    assert await store.move(job.id, JobState.COMPLETED) is None  # queued cannot complete
    cancelled = await store.move(job.id, JobState.CANCELLED, expected=[JobState.QUEUED])
    assert cancelled is not None and cancelled.status is JobState.CANCELLED
    assert await store.move(job.id, JobState.CANCELLED) is None
    assert await store.move("no-such-job", JobState.CANCELLED) is None


async def test_move_with_lease_expired_before_only_takes_expired_leases(
    store: SqlJobStore, clock: Clock
) -> None:
    job = await claimed(store)
    assert (
        await store.move(job.id, JobState.QUEUED, lease_expired_before=clock.now, error_message="x")
        is None
    )
    clock.advance(LEASE + 1)
    back = await store.move(
        job.id, JobState.QUEUED, expected=[JobState.PROCESSING], lease_expired_before=clock.now
    )
    assert back is not None
    assert back.status is JobState.QUEUED
    assert back.lease_owner is None and back.lease_expires_at is None
    assert back.attempts == 1
    again = await store.claim(job.id, "worker-b", LEASE)
    assert again is not None and again.attempts == 2 and again.started_at == clock.now


async def test_illegal_move_raises(store: SqlJobStore) -> None:
    job, _ = await store.create(new_job())
    with pytest.raises(IllegalTransition):
        await store.move(job.id, JobState.QUEUED, expected=[JobState.COMPLETED])
    with pytest.raises(IllegalTransition):
        await store.move(job.id, JobState.FAILED, expected=[JobState.QUEUED])
    with pytest.raises(ValueError, match="status"):
        await store.move(job.id, JobState.CANCELLED, status="completed")
    assert (await store.get(job.id)).status is JobState.QUEUED  # type: ignore[union-attr]


async def test_terminal_move_sets_completed_at_and_clears_lease(
    store: SqlJobStore, clock: Clock
) -> None:
    job = await claimed(store)
    clock.advance(42)
    failed = await store.move(
        job.id, JobState.FAILED, owner="worker-a", error_message="The file is not a video."
    )
    assert failed is not None
    assert failed.completed_at == clock.now and failed.updated_at == clock.now
    assert failed.lease_owner is None and failed.lease_expires_at is None
    assert failed.error_message == "The file is not a video."
    assert failed.started_at == clock.now - timedelta(seconds=42)


async def test_operator_retry_of_failed_job_starts_a_fresh_run(store: SqlJobStore) -> None:
    job = await claimed(store)
    await store.move(job.id, JobState.FAILED, error_message="boom")
    assert await store.claim_delivery(job.id)
    retried = await store.move(job.id, JobState.QUEUED, expected=[JobState.FAILED], attempts=0)
    assert retried is not None
    assert retried.completed_at is None and retried.delivered_at is None
    assert retried.attempts == 0 and retried.error_message == "boom"


async def test_claim_delivery_is_true_exactly_once_under_concurrency(store: SqlJobStore) -> None:
    job = await claimed(store)
    await store.move(job.id, JobState.COMPLETED)
    results = await asyncio.gather(*(store.claim_delivery(job.id) for _ in range(10)))
    assert results.count(True) == 1
    assert (await store.get(job.id)).delivery_claimed_at is not None  # type: ignore[union-attr]
    assert not await store.claim_delivery(job.id)
    await store.confirm_delivery(job.id)
    assert (await store.get(job.id)).delivered_at is not None  # type: ignore[union-attr]
    assert not await store.claim_delivery(job.id, stale_after=timedelta(0))


async def test_a_claim_left_by_a_dead_worker_can_be_taken_after_it_goes_stale(
    store: SqlJobStore, clock: Clock
) -> None:
    job = await claimed(store)
    await store.move(job.id, JobState.COMPLETED)
    assert await store.claim_delivery(job.id)
    clock.advance(60)
    assert not await store.claim_delivery(job.id, stale_after=timedelta(minutes=5))
    assert [j.id for j in await store.undelivered(clock.now)] == [job.id]
    assert await store.undelivered(clock.now, claimed_before=clock.now - timedelta(minutes=5)) == []
    clock.advance(300)
    assert await store.claim_delivery(job.id, stale_after=timedelta(minutes=5))


async def test_released_delivery_can_be_claimed_again(store: SqlJobStore) -> None:
    job = await claimed(store)
    await store.move(job.id, JobState.COMPLETED)
    assert await store.claim_delivery(job.id)
    await store.release_delivery(job.id)
    assert (await store.get(job.id)).delivered_at is None  # type: ignore[union-attr]
    assert await store.claim_delivery(job.id)
    assert not await store.claim_delivery(job.id)


async def test_expired_leases_lists_processing_jobs_past_their_lease(
    store: SqlJobStore, clock: Clock
) -> None:
    old = await claimed(store, 1)
    clock.advance(200)
    fresh = await claimed(store, 2)
    done = await claimed(store, 3)
    await store.move(done.id, JobState.COMPLETED)
    clock.advance(150)  # old's lease (300 s) ran out 50 s ago; fresh has 150 s left
    assert [j.id for j in await store.expired_leases(clock.now)] == [old.id]
    clock.advance(200)
    assert [j.id for j in await store.expired_leases(clock.now)] == [old.id, fresh.id]


async def test_stuck_jobs_are_long_running_or_past_their_lease(
    store: SqlJobStore, clock: Clock
) -> None:
    long_running = await claimed(store, 1)
    clock.advance(500)
    await store.heartbeat(long_running.id, "worker-a", LEASE)
    quiet = await claimed(store, 2, owner="worker-b")
    clock.advance(200)
    recent = await claimed(store, 3, owner="worker-c")
    await store.heartbeat(long_running.id, "worker-a", LEASE)
    clock.advance(150)  # quiet's lease expired; long_running started 850 s ago
    stuck = await store.stuck_jobs(clock.now - timedelta(seconds=600), clock.now)
    assert [j.id for j in stuck] == [long_running.id, quiet.id]
    assert recent.id not in {j.id for j in stuck}


async def test_queued_ids_and_list_jobs_are_oldest_first(store: SqlJobStore, clock: Clock) -> None:
    ids = []
    for n in range(3):
        job, _ = await store.create(new_job(n, source=Source.SLACK if n == 1 else Source.WEBHOOK))
        ids.append(job.id)
        clock.advance(1)
    await store.claim(ids[0], "w", LEASE)
    assert await store.queued_ids() == ids[1:]
    assert [j.id for j in await store.list_jobs()] == ids
    assert [j.id for j in await store.list_jobs(states=[JobState.QUEUED])] == ids[1:]
    assert [j.id for j in await store.list_jobs(source=Source.SLACK)] == [ids[1]]
    assert [j.id for j in await store.list_jobs(limit=2)] == ids[:2]
    assert await store.list_jobs(states=[]) == []


async def test_queue_position_counts_the_queued_jobs_ahead(
    store: SqlJobStore, clock: Clock
) -> None:
    jobs = []
    for n in range(4):
        job, _ = await store.create(new_job(n))
        jobs.append(job)
        if n != 2:  # jobs 2 and 3 share a timestamp: the id breaks the tie
            clock.advance(1)
    await store.claim(jobs[0].id, "w", LEASE)
    positions = [await store.queue_position(job) for job in jobs[1:]]
    assert positions[0] == 1
    assert sorted(positions[1:]) == [2, 3]
    running = await store.get(jobs[0].id)
    assert running is not None and await store.queue_position(running) == 0


async def test_undelivered_lists_ended_jobs_without_a_settled_delivery(
    store: SqlJobStore, clock: Clock
) -> None:
    done = await claimed(store, 1)
    await store.move(done.id, JobState.COMPLETED, owner="worker-a")
    delivered = await claimed(store, 2)
    await store.move(delivered.id, JobState.FAILED, owner="worker-a")
    await store.confirm_delivery(delivered.id)
    await claimed(store, 3)  # still processing
    clock.advance(60)
    assert [j.id for j in await store.undelivered(clock.now)] == [done.id]
    assert await store.undelivered(clock.now - timedelta(seconds=120)) == []


async def test_counts_by_state_groups_state_and_source(store: SqlJobStore) -> None:
    await store.create(new_job(1))
    await store.create(new_job(2))
    await store.create(new_job(3, source=Source.TELEGRAM))
    await claimed(store, 4, source=Source.SLACK)
    assert dict(await store.counts_by_state()) == {
        (JobState.QUEUED, Source.WEBHOOK): 2,
        (JobState.QUEUED, Source.TELEGRAM): 1,
        (JobState.PROCESSING, Source.SLACK): 1,
    }


async def test_finished_since_lists_completed_and_failed_from_then(
    store: SqlJobStore, clock: Clock
) -> None:
    early = await claimed(store, 1)
    await store.move(early.id, JobState.COMPLETED)
    since = clock.advance(60)
    ok = await claimed(store, 2)
    bad = await claimed(store, 3)
    gone = await claimed(store, 4)
    await store.move(ok.id, JobState.COMPLETED)
    clock.advance(1)
    await store.move(bad.id, JobState.FAILED)
    await store.move(gone.id, JobState.CANCELLED)
    finished = await store.finished_since(since)
    assert [(f.id, f.status) for f in finished] == [
        (ok.id, JobState.COMPLETED),
        (bad.id, JobState.FAILED),
    ]
    assert finished[0].started_at == since and finished[0].completed_at == since
    assert finished[0].source is Source.WEBHOOK and finished[0].created_at == since


async def test_expired_results_lists_ended_jobs_with_files_past_ttl(
    store: SqlJobStore, clock: Clock
) -> None:
    done = await claimed(store, 1)
    await store.move(done.id, JobState.COMPLETED, output_key=f"outputs/{done.id}.mp4")
    waiting, _ = await store.create(new_job(2))
    assert await store.expired_results(clock.now) == []
    clock.advance(8 * 86400)
    assert [j.id for j in await store.expired_results(clock.now)] == [done.id]
    assert waiting.id not in {j.id for j in await store.expired_results(clock.now)}
    await store.clear_files(done.id)
    cleared = await store.get(done.id)
    assert cleared is not None and cleared.input_key is None and cleared.output_key is None
    assert await store.expired_results(clock.now) == []


async def test_audit_entries_round_trip_newest_first(store: SqlJobStore, clock: Clock) -> None:
    await store.record_audit(AuditEntry("slack:U1", "slack", "health", "", "ok"))
    clock.advance(1)
    await store.record_audit(
        AuditEntry("telegram:42", "telegram", "retry-stuck", "15 --dry-run", "refused", "not admin")
    )
    log = await store.audit_log()
    assert [(e.actor, e.command, e.args, e.outcome, e.detail) for e in log] == [
        ("telegram:42", "retry-stuck", "15 --dry-run", "refused", "not admin"),
        ("slack:U1", "health", "", "ok", ""),
    ]
    assert log[0].at == clock.now and log[0].id is not None
    assert [e.command for e in await store.audit_log(limit=1)] == ["retry-stuck"]


async def test_ping_answers_while_open(store: SqlJobStore) -> None:
    await store.ping()


async def test_closed_store_raises_store_error(store: SqlJobStore) -> None:
    await store.close()
    with pytest.raises(StoreError):
        await store.get("x")
    with pytest.raises(StoreError):
        await store.ping()
    await store.close()  # closing twice is harmless


async def test_report_with_numpy_values_is_stored_as_plain_json(store: SqlJobStore) -> None:
    np = pytest.importorskip("numpy")
    job = await claimed(store)
    report = {"opacity": np.float32(0.5), "box": np.array([1, 2, 3, 4]), "frames": np.int64(30)}
    done = await store.move(job.id, JobState.COMPLETED, report=report)
    assert done is not None
    assert done.report == {"opacity": 0.5, "box": [1, 2, 3, 4], "frames": 30}
