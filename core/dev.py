"""`blanklogo dev`: the whole service in one process on embedded defaults.

SQLite (migrated at start), local file storage, a private Redis on a free loopback port
when REDIS_URL is unset, the local engine; the aiohttp app and an arq worker share one
event loop. Ctrl-C or SIGTERM stops both cleanly (a running job is handed back).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.settings import Settings

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `blanklogo dev`."""
    parser.add_argument("--host", help="address to listen on (default: HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 8080)")


def run(args: argparse.Namespace) -> int:
    """Run web + worker until Ctrl-C / SIGTERM."""
    overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
    settings = with_dev_api_key(Settings(**overrides))
    asyncio.run(serve(settings))
    return 0


def dev_api_key_path(settings: Settings) -> Path:
    return settings.data_dir / "dev_api_key"


def with_dev_api_key(settings: Settings) -> Settings:
    """When no intake credential is configured, give the dev server one kept in data_dir.

    The intake API refuses every caller without API_KEYS or WEBHOOK_SECRET; a newcomer's
    first `curl` should work, so dev makes a key once (mode 0600) and says where it is.
    """
    if settings.api_keys or settings.webhook_secret:
        return settings
    path = dev_api_key_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    key = SecretStr(path.read_text().strip())
    return settings.model_copy(update={"api_keys": [key]})


def channels_line(settings: Settings) -> str:
    """Which intake channels this configuration turns on."""
    on = ["webhook API (POST /v1/jobs)"]
    off: list[str] = []
    (on if settings.slack_enabled else off).append("Slack")
    (on if settings.telegram_enabled else off).append("Telegram")
    line = "channels on: " + ", ".join(on)
    if off:
        line += "; off (no token): " + ", ".join(off)
    return line


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Start everything, print where it runs, and wait for `stop` (or a signal)."""
    from aiohttp import web

    from core.deps import build
    from core.worker import build_worker
    from webhooks.server import build_app

    stop = stop or asyncio.Event()
    cleanups: list[Any] = []
    try:
        if not settings.redis_url:
            from core.embedded_redis import start_embedded_redis

            redis_server = await start_embedded_redis()
            cleanups.append(redis_server.stop)
            settings = settings.model_copy(update={"redis_url": redis_server.url})
        deps = await build(settings)
        cleanups.append(deps.close)
        applied = await deps.store.migrate()
        if applied:
            logger.info("database migrated: %s", ", ".join(applied))
        runner = web.AppRunner(build_app(deps), access_log=None)
        await runner.setup()
        cleanups.append(runner.cleanup)
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        worker = build_worker(settings, deps=deps, handle_signals=False)
        worker_task = asyncio.create_task(worker.async_run())
        cleanups.append(lambda: _stop_worker(worker, worker_task))
        port = _bound_port(runner, settings.port)
        print(f"BlankLogo is running at http://127.0.0.1:{port}", flush=True)
        print(channels_line(settings), flush=True)
        key_file = dev_api_key_path(settings)
        if key_file.exists():
            print(
                f'try it: curl -H "Authorization: Bearer $(cat {key_file})"'
                f" -F file=@video.mp4 http://127.0.0.1:{port}/v1/jobs",
                flush=True,
            )
        print("press Ctrl-C to stop", flush=True)
        await _wait(stop, worker_task)
    finally:
        while cleanups:
            with contextlib.suppress(Exception):
                await cleanups.pop()()


def _bound_port(runner: Any, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


async def _wait(stop: asyncio.Event, worker_task: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopping, worker_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    if worker_task.done() and not worker_task.cancelled() and worker_task.exception():
        logger.error("the worker stopped", exc_info=worker_task.exception())
    print("stopping BlankLogo", flush=True)


async def _stop_worker(worker: Any, task: asyncio.Task[None]) -> None:
    from core.worker import close_worker

    # cancels running jobs (each hands itself back), then runs on_shutdown
    await close_worker(worker)
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
