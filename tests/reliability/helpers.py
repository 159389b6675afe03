"""Things the fault tests start and stop: worker processes, a TCP proxy, a callback receiver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]

#: a real arq worker in its own process; engine target and notifiers chosen by env
WORKER_SCRIPT = """
import asyncio, os
from core.deps import build
from core.engines import LocalEngine
from core.settings import Settings
from core.storage import open_storage
from core.worker import build_worker

async def main():
    settings = Settings()
    storage = open_storage(settings)
    engine = LocalEngine(settings, storage, target=os.environ["BL_TEST_ENGINE_TARGET"])
    extra = {} if os.environ.get("BL_TEST_REAL_NOTIFIERS") else {"notifiers": {}}
    deps = await build(settings, storage=storage, engine=engine, **extra)
    worker = build_worker(settings, deps=deps, poll_delay=0.05, cron_jobs=[])
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        pass
    finally:
        await worker.close()
        await deps.close()

asyncio.run(main())
"""


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that gives a worker process the same settings as the test."""
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "REDIS_PREFIX": settings.redis_prefix,
        "DATABASE_URL": settings.database_url or "",
        "STORAGE_DIR": str(settings.storage_dir),
        "DATA_DIR": str(settings.data_dir),
        "JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
        "ALLOW_LOOPBACK_URLS": "true" if settings.allow_loopback_urls else "false",
        "BL_TEST_ENGINE_TARGET": "tests.pipeline.stand_in_engine:copy",
    }
    env.update(extra)
    return env


async def start_worker_process(settings: Settings, **extra: str) -> asyncio.subprocess.Process:
    """`python -c WORKER_SCRIPT` with the test's settings (the caller stops it)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER_SCRIPT, env=worker_env(settings, **extra), cwd=str(REPO)
    )


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """Kill a process we started if it still runs, and reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def kill_pid(pid: int) -> None:
    """SIGKILL a process by id if it still exists (an orphaned engine child)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


async def wait_for(
    check: Callable[[], Awaitable[Any]], timeout_s: float, what: str, every_s: float = 0.05
) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(every_s)


async def wait_for_file(path: Path, timeout_s: float) -> str:
    """The text of `path` once it exists."""

    async def exists() -> bool:
        return path.exists() and path.stat().st_size > 0

    await wait_for(exists, timeout_s, f"{path.name} to appear")
    return path.read_text()


class TcpProxy:
    """A loopback TCP proxy to `target_port` that can be stopped (every connection cut) and resumed."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones (the database 'goes away')."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@dataclass
class Receiver:
    """A loopback callback receiver: answers `status` (changeable) and records every POST."""

    status: int = 200
    posts: list[dict[str, Any]] = field(default_factory=list)
    at: list[float] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callback", self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/callback"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _callback(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.at.append(time.monotonic())
        self.answered.append(self.status)
        if self.status == 200:
            self.posts.append(body)
        return web.Response(status=self.status)

    def delivered(self, job_id: str) -> int:
        """How many successful callbacks named this job."""
        return sum(1 for post in self.posts if post.get("data", {}).get("id") == job_id)


async def run_worker_until(
    deps: Any, check: Callable[[], Awaitable[Any]], timeout_s: float, **options: Any
) -> Any:
    """Run a real arq Worker in this process until `check` holds, then stop it.

    Not burst mode: a killed worker leaves its arq entry "in progress" until arq's own
    timeout, which a burst worker would wait for.
    """
    from core import worker as worker_module
    from core.worker import build_worker, close_worker
    from tests.pipeline.conftest import FAST

    options.setdefault("policy", FAST)
    worker = build_worker(
        deps.settings, deps=deps, poll_delay=0.05, handle_signals=False, **options
    )
    # a busy worker re-queues a run for 3 s later; tests want the other worker to take it now
    busy_retry, worker_module.BUSY_RETRY_S = worker_module.BUSY_RETRY_S, 0.05
    task = asyncio.create_task(worker.async_run())
    try:
        return await wait_for(check, timeout_s, "the worker to finish the work")
    finally:
        # the stop SIGTERM makes (no pick-up cut in half: cancelling the poll loop first
        # could leave a run marked in progress with no task, hidden from the next worker)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await close_worker(worker)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        worker_module.BUSY_RETRY_S = busy_retry
