"""The composition root: `build(settings) -> Deps` wires every adapter; each can be overridden."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from core.jobs import Source
from core.ports import Engine, JobQueue, JobStore, Notifier, Storage
from core.settings import Settings

logger = logging.getLogger(__name__)


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


async def build(settings: Settings, **overrides: Any) -> Deps:
    """Wire every adapter from settings; each keyword in `overrides` replaces the built one.

    Keywords: store, storage, redis, queue, engine, notifiers (a dict; replaces them all).
    With REDIS_URL unset (and no `redis` override) a private Redis is started and stopped
    by `Deps.close()`.
    """
    unknown = set(overrides) - {"store", "storage", "redis", "queue", "engine", "notifiers"}
    if unknown:
        raise TypeError(f"unknown Deps overrides: {', '.join(sorted(unknown))}")
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        return await _wire(settings, overrides, closers)
    except BaseException:
        while closers:
            await closers.pop()()
        raise


async def _wire(
    settings: Settings,
    overrides: dict[str, Any],
    closers: list[Callable[[], Awaitable[None]]],
) -> Deps:
    store = overrides.get("store")
    if store is None:
        from core.store import open_store

        store = await _maybe_await(open_store(settings))
        closers.append(store.close)
    storage = overrides.get("storage")
    if storage is None:
        from core.storage import open_storage

        storage = await _maybe_await(open_storage(settings))
        if hasattr(storage, "close"):
            closers.append(storage.close)
    redis = overrides.get("redis")
    if redis is None:
        redis = await _open_redis(settings, closers)
    queue = overrides.get("queue")
    if queue is None:
        from core.queue import ArqJobQueue

        queue = ArqJobQueue(redis, settings)
    engine = overrides.get("engine")
    if engine is None:
        engine = _build_engine(settings, storage)
    notifiers = overrides.get("notifiers")
    if notifiers is None:
        notifiers = _build_notifiers(settings, storage, redis)
        for notifier in notifiers.values():
            if hasattr(notifier, "close"):
                closers.append(notifier.close)
    return Deps(
        settings=settings,
        store=store,
        storage=storage,
        queue=queue,
        engine=engine,
        redis=redis,
        notifiers=dict(notifiers),
        closers=closers,
    )


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _open_redis(settings: Settings, closers: list[Callable[[], Awaitable[None]]]) -> Any:
    from core.queue import connect

    url = settings.redis_url
    if not url:
        from core.embedded_redis import start_embedded_redis

        server = await start_embedded_redis()
        closers.append(server.stop)
        url = server.url
    redis = await connect(settings, url)

    async def close_redis() -> None:
        await redis.aclose(close_connection_pool=True)

    closers.append(close_redis)
    return redis


def _build_engine(settings: Settings, storage: Storage) -> Engine:
    if settings.gpu_backend == "modal":
        from gpu.remote import ModalEngine

        return ModalEngine(settings, storage)
    from core.engines import LocalEngine

    return LocalEngine(settings, storage)


#: Source -> (module with build_notifier, whether the channel is on for these settings)
_NOTIFIER_MODULES: dict[Source, tuple[str, Callable[[Settings], bool]]] = {
    Source.WEBHOOK: ("webhooks.callbacks", lambda s: True),
    Source.SLACK: ("bots.slack.notifier", lambda s: s.slack_enabled),
    Source.TELEGRAM: ("bots.telegram.notifier", lambda s: s.telegram_enabled),
}


def _build_notifiers(settings: Settings, storage: Storage, redis: Any) -> dict[Source, Notifier]:
    notifiers: dict[Source, Notifier] = {}
    for source, (module_name, enabled) in _NOTIFIER_MODULES.items():
        if not enabled(settings):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            logger.warning(
                "no %s notifier: %s is not importable (%s)", source.value, module_name, exc
            )
            continue
        notifiers[source] = module.build_notifier(settings, storage, redis)
    return notifiers
