"""The real service app served on a loopback port from a background thread (for sync clients
such as schemathesis and the load scripts)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from core.deps import Deps, build
from core.settings import Settings
from tests.webhooks.conftest import IdleEngine
from webhooks.server import build_app


class LiveApp:
    """Start with `start()`, stop with `stop()`; `url` is the base URL, `deps` the app's Deps."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.settings = settings
        self.overrides = {"engine": IdleEngine(), **overrides}
        self.url = ""
        self.deps: Deps | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="live-app", daemon=True)

    def start(self) -> LiveApp:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the app did not start in 30 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the app's loop (e.g. a store query) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner: web.AppRunner | None = None
        try:
            self.deps = await build(self.settings, **self.overrides)
            runner = web.AppRunner(build_app(self.deps), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            if self.deps is not None:
                await self.deps.close()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self.deps.close()
