"""Markers and counters in Redis (SET NX / INCR with a TTL), shared by every process and channel.

Each fails open: they protect the queue and the chat from noise, and a Redis hiccup must
not refuse honest users (the job's idempotency key still stops a second job).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from core.jobs import Source
from core.settings import Settings

logger = logging.getLogger(__name__)

#: Slack retries an event three times within about an hour; keep markers a day
EVENT_TTL_S = 24 * 3600


async def first_time(redis: Any, key: str, ttl_s: int = EVENT_TTL_S) -> bool:
    """True for the first caller to mark `key`; True as well when Redis cannot answer.

    Failing open is safe here: the job's idempotency key still stops a second job; at worst
    a duplicate status message is posted.
    """
    try:
        return bool(await redis.set(key, b"1", nx=True, ex=ttl_s))
    except Exception as exc:  # noqa: BLE001 - any Redis failure means "cannot tell"
        logger.warning("dedup marker %s not set (%s); going ahead", key, exc.__class__.__name__)
        return True


async def throttled(redis: Any, key: str, every_ms: int) -> bool:
    """True when `key` was marked in the last `every_ms` (the caller should skip); marks it otherwise."""
    try:
        return not await redis.set(key, b"1", nx=True, px=every_ms)
    except Exception as exc:  # noqa: BLE001 - a throttle that cannot tell lets the edit through
        logger.debug("throttle %s unavailable (%s)", key, exc.__class__.__name__)
        return False


async def within_limit(redis: Any, key: str, limit: int, window_s: int) -> bool:
    """Count one use under `key` in its window; False once the count passes `limit`.

    A Redis failure lets the use through: the limit protects the queue, it must not refuse
    honest users because Redis hiccuped.
    """
    try:
        count = await redis.incr(key)
        if count == 1:
            await redis.expire(key, window_s)
    except Exception as exc:  # noqa: BLE001 - see above
        logger.warning("rate limit %s not checked (%s)", key, exc.__class__.__name__)
        return True
    return int(count) <= limit


async def within_hourly_video_limit(
    redis: Any, settings: Settings, source: Source, requester: str, admins: list[str]
) -> bool:
    """Count one video from `requester` this hour; False past USER_RATE_LIMIT_PER_HOUR.

    Operators (`admins`) are not counted; a limit of 0 turns it off.
    """
    limit = settings.user_rate_limit_per_hour
    if limit <= 0 or requester in admins:
        return True
    hour = int(time.time() // 3600)
    key = f"{settings.redis_prefix}:{source.value}:rate:{requester}:{hour}"
    return await within_limit(redis, key, limit, 3600)
