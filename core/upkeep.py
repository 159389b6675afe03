"""The worker's cron work: reap expired leases, rebuild the queue from the table, expire files.

Redis is not the source of truth: the reconciler queues every `queued` row arq does not
hold, so a flushed or restarted Redis loses nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from core.delivery import DELIVERY_BACKOFF_S, schedule_delivery
from core.deps import Deps
from core.jobs import Job, JobState
from core.ports import DELIVERY_CLAIM_TTL
from core.processing import requeue

logger = logging.getLogger(__name__)

#: most queued rows one reconciler pass looks at
RECONCILE_LIMIT = 10_000
#: how long an ended job may wait for its first delivery try before the reconciler queues one
DELIVERY_GRACE = timedelta(minutes=5)
#: rows per expiry batch, and batches per sweep
SWEEP_BATCH = 100
SWEEP_MAX_BATCHES = 20


def utcnow() -> datetime:
    return datetime.now(UTC)


async def requeue_or_fail(
    deps: Deps,
    job: Job,
    reason: str,
    *,
    lease_expired_before: datetime | None = None,
) -> Job | None:
    """Return a processing job to the queue (next attempt queued), or fail it when out of attempts.

    Conditional on the job still being `processing` (and, when given, on its lease having
    expired before `lease_expired_before`), so two callers never requeue it twice.
    Returns the moved job, or None when someone else moved it first.
    """
    if job.attempts < job.max_attempts:
        # at once: the run did not fail, its worker went away
        moved = await requeue(
            deps,
            job,
            step="waiting to retry",
            defer_s=0,
            lease_expired_before=lease_expired_before,
            error_message=f"attempt {job.attempts}: {reason}",
        )
        if moved is not None:
            logger.info("job %s ↻ requeued (%s): %s", job.id, job.source.value, reason)
        return moved
    moved = await deps.store.move(
        job.id,
        JobState.FAILED,
        expected=[JobState.PROCESSING],
        lease_expired_before=lease_expired_before,
        error_message=f"{reason}; gave up after {job.attempts} attempts",
    )
    if moved is not None:
        logger.info("job %s ✖ failed (%s): %s", job.id, job.source.value, moved.error_message)
        await schedule_delivery(deps, job.id)
    return moved


async def reap_expired_leases(deps: Deps, now: datetime | None = None) -> list[Job]:
    """Requeue (or fail) every processing job whose worker stopped renewing its lease."""
    now = now or utcnow()
    reaped = []
    for job in await deps.store.expired_leases(now):
        moved = await requeue_or_fail(
            deps, job, "worker stopped responding", lease_expired_before=now
        )
        if moved is not None:
            reaped.append(moved)
    return reaped


async def reconcile_queue(deps: Deps, now: datetime | None = None) -> list[str]:
    """Queue every `queued` row whose next run arq does not hold; return their ids.

    A row still queued a lease after it was last changed, whose run arq marks as in
    progress, was picked up by a worker that died before claiming it: the marker is
    dropped so that arq hands the run to the next worker now.
    """
    now = now or utcnow()
    picked_up_before = now - timedelta(seconds=deps.settings.job_lease_seconds)
    queued = await deps.store.list_jobs(states=[JobState.QUEUED], limit=RECONCILE_LIMIT)
    requeued = []
    for job in queued:
        attempt = job.attempts + 1
        if job.updated_at < picked_up_before and await deps.queue.drop_stale_pickup(
            job.id, attempt
        ):
            logger.warning("job %s: its run was picked up by a worker that died; freed", job.id)
        if await deps.queue.holds(job.id, attempt):
            continue
        if await deps.queue.enqueue_run(job.id, attempt):
            requeued.append(job.id)
        else:
            logger.warning("job %s: arq refused run %d yet does not hold it", job.id, attempt)
    if requeued:
        logger.info("reconciler queued %d job(s) Redis had lost", len(requeued))
    return requeued


async def reconcile_deliveries(deps: Deps, now: datetime | None = None) -> list[str]:
    """Queue a delivery for ended jobs that have none pending (e.g. Redis was down as they ended).

    A job ended more than DELIVERY_CLAIM_TTL ago whose delivery is unclaimed, or claimed
    longer ago than that (arq's timeout for one try), has no live try: an arq in-progress
    marker on it was left by a worker that died, and is dropped, so that arq hands the
    queued try to the next worker now instead of after the marker's hour and a half.
    The store's claim_delivery still stops a second send should that guess be wrong.
    """
    now = now or utcnow()
    picked_up_before = now - DELIVERY_CLAIM_TTL
    queued = []
    for job in await deps.store.undelivered(
        now - DELIVERY_GRACE, limit=RECONCILE_LIMIT, claimed_before=picked_up_before
    ):
        tries = len(DELIVERY_BACKOFF_S)
        if (
            job.completed_at is not None
            and job.completed_at < picked_up_before
            and await deps.queue.drop_stale_delivery_pickup(job.id, tries)
        ):
            logger.warning(
                "job %s: its delivery was picked up by a worker that died; freed", job.id
            )
        if await deps.queue.holds_delivery(job.id, tries):
            continue  # a retry is waiting out its backoff
        await schedule_delivery(deps, job.id)
        queued.append(job.id)
    if queued:
        logger.info("reconciler queued the delivery of %d ended job(s)", len(queued))
    return queued


async def sweep_expired_results(deps: Deps, now: datetime | None = None) -> int:
    """Delete inputs and outputs of jobs past expires_at; return how many jobs were swept."""
    now = now or utcnow()
    swept = 0
    for _ in range(SWEEP_MAX_BATCHES):
        batch = await deps.store.expired_results(now, limit=SWEEP_BATCH)
        for job in batch:
            keys = {job.input_key, job.output_key}
            if job.options.get("video_url"):
                keys.add(f"inputs/{job.id}/source")
            for key in sorted(k for k in keys if k):
                await deps.storage.delete(key)
            await deps.store.clear_files(job.id)
            swept += 1
        if len(batch) < SWEEP_BATCH:
            break
    if swept:
        logger.info("expiry sweep deleted the files of %d job(s)", swept)
    return swept
