"""Intake load: `POST /v1/jobs` (URL form) at rising concurrency, on PostgreSQL and on SQLite.

Loopback only and bounded: the real app (`webhooks.server.build_app`) runs in a child process
on an ephemeral 127.0.0.1 port with local storage and a private redis-server on a free port
(nothing touches the machine's Redis); no worker runs, so this measures intake alone: auth,
JSON checks, the URL check (a public literal address, no DNS), the row insert, the enqueue
and the queue position. PostgreSQL gets a fresh database on 127.0.0.1:5432 that is dropped
afterwards. Prints a table with requests/s and p50/p99 latency per concurrency level.

    python benchmarks/intake_load.py [--requests 400] [--concurrency 1,4,16,64]
                                     [--db sqlite,postgres] [--max-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
API_KEY = "bench-api-key-0123456789"
VIDEO_URL = "http://93.184.216.34/clip.mp4"

#: the server process: builds the real app on the given settings, prints its port, serves
#: until its stdin closes
SERVER = """
import asyncio, sys
from aiohttp import web
from core.deps import build
from core.settings import Settings
from webhooks.server import build_app

class NoEngine:
    async def process(self, job, progress):
        raise RuntimeError("intake only")
    async def health(self):
        return {"status": "ok"}

async def main():
    deps = await build(Settings(), engine=NoEngine(), notifiers={})
    runner = web.AppRunner(build_app(deps), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()
    await deps.close()

asyncio.run(main())
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


async def fresh_pg_database() -> tuple[str, Any]:
    """A new PostgreSQL database and a coroutine function that drops it."""
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    name = f"bl_bench_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')

    async def drop() -> None:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


async def start_server(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVER,
        env={**os.environ, **env},
        cwd=str(ROOT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line:
        raise RuntimeError("the app did not start")
    return proc, f"http://127.0.0.1:{int(line)}"


async def stop_server(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def level(base: str, concurrency: int, total: int, deadline: float) -> dict[str, Any]:
    """Send `total` POSTs with `concurrency` in flight; return figures."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    body = json.dumps({"video_url": VIDEO_URL, "region": "auto"}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_client() -> None:
            nonlocal sent
            while sent < total and time.monotonic() < deadline:
                sent += 1
                started = time.perf_counter()
                async with session.post(f"{base}/v1/jobs", data=body, headers=headers) as r:
                    await r.read()
                latencies.append(time.perf_counter() - started)
                statuses[r.status] = statuses.get(r.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "ok": statuses.get(202, 0),
        "errors": len(latencies) - statuses.get(202, 0),
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


async def bench_db(db: str, args: argparse.Namespace, redis_url: str) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="bl-intake-bench-"))
    drop = None
    if db == "postgres":
        database_url, drop = await fresh_pg_database()
    else:
        database_url = f"sqlite:///{work / 'bench.db'}"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"blbench:{uuid.uuid4().hex[:8]}",
        "STORAGE_DIR": str(work / "storage"),
        "DATA_DIR": str(work),
        "API_KEYS": API_KEY,
        "PUBLIC_BASE_URL": "http://127.0.0.1:1",
    }
    proc, base = await start_server(env)
    rows = []
    try:
        deadline = time.monotonic() + args.max_seconds
        await level(base, 1, 20, deadline)  # warm-up: connections, prepared statements
        for concurrency in args.concurrency:
            row = await level(base, concurrency, args.requests, deadline)
            rows.append({"db": db, **row})
    finally:
        await stop_server(proc)
        if drop is not None:
            await drop()
    return rows


async def main(args: argparse.Namespace) -> None:
    from core.embedded_redis import start_embedded_redis

    redis = await start_embedded_redis()
    rows: list[dict[str, Any]] = []
    try:
        for db in args.db:
            rows += await bench_db(db, args, redis.url)
    finally:
        await redis.stop()
    print(f"\nPOST /v1/jobs (URL form), loopback; machine cores: {os.cpu_count()}")
    print(
        f"{'db':<9}{'conc':>5}{'reqs':>6}{'ok':>6}{'err':>5}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
    )
    for r in rows:
        print(
            f"{r['db']:<9}{r['concurrency']:>5}{r['requests']:>6}{r['ok']:>6}{r['errors']:>5}"
            f"{r['rps']:>9.1f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=400, help="per concurrency level (max 5000)"
    )
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--max-seconds", type=float, default=60, help="per database")
    args = parser.parse_args(argv)
    args.requests = max(1, min(args.requests, 5000))
    args.concurrency = [max(1, min(int(c), 256)) for c in args.concurrency.split(",")]
    args.db = [d.strip() for d in args.db.split(",") if d.strip() in ("sqlite", "postgres")]
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
