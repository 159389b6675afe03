"""The composition root: `build(settings) -> Deps` wires every adapter; each can be overridden."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from core.jobs import Source
from core.ports import Engine, JobQueue, JobStore, Notifier, Storage
from core.settings import Settings


@dataclass
class Deps:
    """Everything a request handler, a worker task or an ops command needs."""

    settings: Settings
    store: JobStore
    storage: Storage
    queue: JobQueue
    engine: Engine
    #: redis.asyncio client (arq's ArqRedis) for dedup keys, rate limits and heartbeats
    redis: Any
    notifiers: dict[Source, Notifier] = field(default_factory=dict)
    #: called in reverse order by close()
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        while self.closers:
            await self.closers.pop()()
