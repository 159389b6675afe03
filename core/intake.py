"""The intake service every channel calls: keep the job, queue its first run, say where it stands.

Choice on partial failure: once the row is stored the job is kept, even if Redis refuses
the enqueue. The row stays `queued` and the reconciler (a cron in every worker, once a
minute) queues it as soon as Redis answers again, so `accept` returns it rather than
asking the user to retry and risking a second job. Only a store failure means the job
could not be kept: then StoreError propagates (channels answer 503 / "try again").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.deps import Deps
from core.errors import QueueError, StoreError
from core.jobs import Job, JobState, NewJob

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """The kept job, whether this call created it, and its place in the queue (0: not waiting)."""

    job: Job
    created: bool
    position: int


async def accept(deps: Deps, new: NewJob) -> Accepted:
    """Store the job (idempotent on idempotency_key), queue its run and return its position."""
    job, created = await deps.store.create(new)
    if job.status == JobState.QUEUED:
        await _ensure_queued(deps, job, created)
    if created:
        logger.info("job %s accepted from %s (%s)", job.id, job.source.value, job.requester)
    else:
        logger.info("job %s already known from %s, returned again", job.id, job.source.value)
    return Accepted(job=job, created=created, position=await queue_position(deps, job))


async def _ensure_queued(deps: Deps, job: Job, created: bool) -> None:
    attempt = job.attempts + 1
    try:
        if created or not await deps.queue.holds(job.id, attempt):
            await deps.queue.enqueue_run(job.id, attempt)
    except QueueError as exc:
        # the row is kept; the reconciler queues it once Redis is back (see module docstring)
        logger.warning("job %s stored but not queued yet (%s); the reconciler will", job.id, exc)


async def queue_position(deps: Deps, job: Job) -> int:
    """1 + the number of queued jobs created before this one; 0 when it is not queued."""
    try:
        return await deps.store.queue_position(job)
    except StoreError as exc:
        logger.warning("queue position of job %s unknown: %s", job.id, exc)
        return 0
