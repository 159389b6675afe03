"""Telling the requester that a job ended, once per job, retried with backoff on failure.

`store.claim_delivery` (delivery_claimed_at) guards against a second delivery even when a job
ran twice; `confirm_delivery` (delivered_at) marks it done. A claim whose worker died is taken
again after DELIVERY_CLAIM_TTL, and a try arq handed to a worker that died is freed by
`core.upkeep.reconcile_deliveries` after that TTL too. A DeliveryError releases the claim and queues another try after 30 s, 2 min, 10 min,
1 h and 4 h (plus jitter); after the last one the delivery is given up (delivered_at is set
then, meaning "settled"), logged, and counted
in the Redis key `{redis_prefix}:delivery_failures` (an integer; see `failures_key`) for
the ops reports. Every failed try is also counted per source for /metrics through
`core.metrics.record_delivery_failure` (`{redis_prefix}:metrics:delivery_failures:{source}`).
"""

from __future__ import annotations

import logging
import random

from core.deps import Deps
from core.errors import DeliveryError, QueueError, StoreError

logger = logging.getLogger(__name__)

#: waits before the 2nd, 3rd, ... delivery try (seconds)
DELIVERY_BACKOFF_S: tuple[float, ...] = (30, 120, 600, 3600, 4 * 3600)


def failures_key(prefix: str) -> str:
    """Redis key counting deliveries given up for good (INCR'd once per job)."""
    return f"{prefix}:delivery_failures"


async def delivery_failures(deps: Deps) -> int:
    """How many deliveries were given up since Redis was last emptied."""
    value = await deps.redis.get(failures_key(deps.settings.redis_prefix))
    return int(value or 0)


async def schedule_delivery(deps: Deps, job_id: str) -> None:
    """Queue the first delivery of an ended job (cancel paths call this too)."""
    try:
        await deps.queue.enqueue_delivery(job_id, 0)
    except QueueError as exc:
        logger.error("job %s: delivery not queued (%s)", job_id, exc)


def backoff_delay(attempt: int, schedule: tuple[float, ...] = DELIVERY_BACKOFF_S) -> float:
    """Wait before delivery try `attempt + 1`, with up to 20 % jitter."""
    return schedule[attempt] * (1 + random.uniform(0, 0.2))


async def deliver_result(
    deps: Deps,
    job_id: str,
    attempt: int = 0,
    *,
    schedule: tuple[float, ...] = DELIVERY_BACKOFF_S,
) -> str:
    """Deliver an ended job's result or reason through its channel; return what happened."""
    job = await deps.store.get(job_id)
    if job is None:
        return "unknown job"
    if not job.is_terminal:
        return f"job is {job.status.value}, nothing to deliver yet"
    if job.delivered_at is not None:
        return "already delivered"
    if not await deps.store.claim_delivery(job_id):
        return "being delivered by another worker"
    notifier = deps.notifiers.get(job.source)
    if notifier is None:
        logger.info("job %s ✉ nothing to deliver to (%s)", job_id, job.source.value)
        await deps.store.confirm_delivery(job_id)
        return "no notifier"
    try:
        await notifier.deliver(job)
    except DeliveryError as exc:
        await _count_failure(deps, job.source.value)
        return await _try_later(deps, job_id, attempt, schedule, str(exc))
    except Exception as exc:  # noqa: BLE001 - a notifier bug must not lose the delivery
        logger.error("job %s: notifier crashed", job_id, exc_info=exc)
        await _count_failure(deps, job.source.value)
        return await _try_later(deps, job_id, attempt, schedule, exc.__class__.__name__)
    await deps.store.confirm_delivery(job_id)
    logger.info(
        "job %s ✉ delivered (%s, %s, try %d)",
        job_id,
        job.source.value,
        job.status.value,
        attempt + 1,
    )
    return "delivered"


async def _count_failure(deps: Deps, source: str) -> None:
    from core.metrics import record_delivery_failure

    try:
        await record_delivery_failure(deps.redis, deps.settings, source)
    except Exception as exc:  # noqa: BLE001 - a metric must not stop the retry
        logger.warning("delivery failure not counted: %s", exc.__class__.__name__)


async def _try_later(
    deps: Deps, job_id: str, attempt: int, schedule: tuple[float, ...], reason: str
) -> str:
    if attempt >= len(schedule):
        # delivered_at then means "settled", so nothing retries it again
        await deps.store.confirm_delivery(job_id)
        logger.warning("job %s ✉ delivery given up after %d tries: %s", job_id, attempt + 1, reason)
        await deps.redis.incr(failures_key(deps.settings.redis_prefix))
        return "given up"
    try:
        await deps.store.release_delivery(job_id)
    except StoreError as exc:
        logger.error("job %s: delivery claim not released (%s)", job_id, exc)
        return "failed; claim kept"
    delay = backoff_delay(attempt, schedule)
    logger.info(
        "job %s ✉ delivery try %d failed (%s); next in %.0fs",
        job_id,
        attempt + 1,
        reason,
        delay,
    )
    await deps.queue.enqueue_delivery(job_id, attempt + 1, defer_s=delay)
    return "retrying"
