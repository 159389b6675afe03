"""The JobQueue port over arq: Redis carries job ids only, as JSON, never pickle.

arq job ids are deterministic per attempt (`{prefix}:run:{job_id}:{attempt}`), so queueing
the same attempt twice is a no-op; the database row stays the source of truth.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.exceptions import RedisError

from core.errors import QueueError
from core.settings import Settings

logger = logging.getLogger(__name__)

#: names of the arq functions the worker registers (see core.worker)
RUN_FUNCTION = "run_job"
DELIVER_FUNCTION = "deliver_result"

_REDIS_FAILURES = (RedisError, OSError, ConnectionError, TimeoutError)


def serialize(value: Any) -> bytes:
    """arq job serializer: JSON (web, worker and Modal deploy separately; pickle is unsafe)."""
    return json.dumps(value, default=repr, separators=(",", ":")).encode()


def deserialize(data: bytes) -> Any:
    """arq job deserializer matching `serialize`."""
    return json.loads(data)


def redis_settings(url: str) -> RedisSettings:
    """arq RedisSettings for a redis:// URL, failing fast instead of retrying for seconds."""
    rs = RedisSettings.from_dsn(url)
    rs.conn_retries = 2
    rs.conn_retry_delay = 1
    rs.conn_timeout = 3
    return rs


async def connect(settings: Settings, url: str) -> ArqRedis:
    """An arq pool on `url` with our JSON serializer and queue name; raise QueueError."""
    try:
        return await create_pool(
            redis_settings(url),
            job_serializer=serialize,
            job_deserializer=deserialize,
            default_queue_name=settings.queue_name,
        )
    except _REDIS_FAILURES as exc:
        raise QueueError(f"Redis is unreachable ({exc.__class__.__name__})") from exc


def run_id(settings: Settings, job_id: str, attempt: int) -> str:
    """The arq job id of one run attempt of a job."""
    return f"{settings.redis_prefix}:run:{job_id}:{attempt}"


def delivery_id(settings: Settings, job_id: str, attempt: int) -> str:
    """The arq job id of one delivery attempt of a job's result."""
    return f"{settings.redis_prefix}:deliver:{job_id}:{attempt}"


class ArqJobQueue:
    """Queues runs and deliveries of jobs on arq; every Redis failure becomes QueueError."""

    def __init__(self, redis: ArqRedis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    async def enqueue_run(self, job_id: str, attempt: int, defer_s: float = 0) -> bool:
        """Queue run `attempt` of the job; False when arq already holds this attempt."""
        arq_id = run_id(self.settings, job_id, attempt)
        job = await self._enqueue(RUN_FUNCTION, arq_id, defer_s, job_id, attempt)
        if job is None:
            logger.debug("run %s already queued", arq_id)
        return job is not None

    async def enqueue_delivery(self, job_id: str, attempt: int = 0, defer_s: float = 0) -> None:
        """Queue delivery `attempt` of the job's result (a no-op when already queued)."""
        arq_id = delivery_id(self.settings, job_id, attempt)
        await self._enqueue(DELIVER_FUNCTION, arq_id, defer_s, job_id, attempt)

    async def holds(self, job_id: str, attempt: int) -> bool:
        """Whether arq has this run queued (possibly deferred) or in progress."""
        return await self._holds_any([run_id(self.settings, job_id, attempt)])

    async def drop_stale_pickup(self, job_id: str, attempt: int) -> bool:
        """Forget arq's in-progress marker of a run whose worker died before claiming the row.

        arq keeps the run in its queue until it finishes, so the next worker's poll takes it;
        without this, the marker would hide it for the whole arq timeout (about 90 minutes).
        """
        return await self._drop_in_progress([run_id(self.settings, job_id, attempt)]) > 0

    async def drop_stale_delivery_pickup(self, job_id: str, attempts: int) -> bool:
        """Forget arq's in-progress markers of delivery tries 0..attempts of the job.

        For a delivery whose worker died (before or after claiming it): arq keeps the try
        in its queue until it finishes, so the next worker's poll takes it again, instead of
        after the whole arq timeout. The caller makes sure no live try can hold a marker
        (core.upkeep.reconcile_deliveries); a second send is stopped by the store's
        claim_delivery anyway. True if a marker was dropped.
        """
        ids = [delivery_id(self.settings, job_id, n) for n in range(attempts + 1)]
        return await self._drop_in_progress(ids) > 0

    async def _drop_in_progress(self, arq_ids: list[str]) -> int:
        try:
            return int(await self.redis.delete(*(in_progress_key_prefix + i for i in arq_ids)))
        except _REDIS_FAILURES as exc:
            raise QueueError(f"Redis failed ({exc.__class__.__name__})") from exc

    async def holds_delivery(self, job_id: str, attempts: int) -> bool:
        """Whether arq has any of delivery tries 0..attempts queued (or deferred) or in progress."""
        ids = [delivery_id(self.settings, job_id, n) for n in range(attempts + 1)]
        return await self._holds_any(ids)

    async def _holds_any(self, arq_ids: list[str]) -> bool:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for arq_id in arq_ids:
                    pipe.zscore(self.settings.queue_name, arq_id)
                    pipe.exists(job_key_prefix + arq_id)
                    pipe.exists(in_progress_key_prefix + arq_id)
                found = await pipe.execute()
        except _REDIS_FAILURES as exc:
            raise QueueError(f"Redis failed ({exc.__class__.__name__})") from exc
        for score, job_key, in_progress in zip(found[::3], found[1::3], found[2::3], strict=True):
            if in_progress or (score is not None and job_key):
                return True
        return False

    async def depth(self) -> int:
        """How many arq jobs (runs, deliveries, cron) wait in the queue, deferred ones included."""
        try:
            return int(await self.redis.zcard(self.settings.queue_name))
        except _REDIS_FAILURES as exc:
            raise QueueError(f"Redis failed ({exc.__class__.__name__})") from exc

    async def ping(self) -> None:
        """Raise QueueError when Redis does not answer."""
        try:
            await self.redis.ping()
        except _REDIS_FAILURES as exc:
            raise QueueError(f"Redis is unreachable ({exc.__class__.__name__})") from exc

    async def close(self) -> None:
        """Nothing to do: the Redis pool belongs to whoever opened it (core.deps.build)."""

    async def _enqueue(self, function: str, arq_id: str, defer_s: float, *args: Any) -> Any:
        try:
            return await self.redis.enqueue_job(
                function,
                *args,
                _job_id=arq_id,
                _queue_name=self.settings.queue_name,
                _defer_by=defer_s if defer_s > 0 else None,
            )
        except _REDIS_FAILURES as exc:
            raise QueueError(f"could not queue {function} ({exc.__class__.__name__})") from exc
