"""Clean-up of the Redis keys one test made: ours and arq's, by the test's prefix, never others."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis


async def forget_keys(redis: Any, prefix: str) -> None:
    """Delete the keys under `prefix` through an open client."""
    for pattern in (f"{prefix}:*", f"arq:*:{prefix}:*"):
        async for key in redis.scan_iter(match=pattern, count=500):
            await redis.delete(key)


async def forget_redis_keys(url: str, prefix: str) -> None:
    """Delete the keys under `prefix` on the Redis at `url`."""
    client = Redis.from_url(url)
    try:
        await forget_keys(client, prefix)
    finally:
        await client.aclose()
