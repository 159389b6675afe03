"""Queue throughput: jobs per second through arq and real `core.worker` processes with a
trivial engine stand-in (benchmark only), and the time from enqueue to pick-up.

Loopback only and bounded: a private redis-server on a free port, a SQLite (default) or a
fresh PostgreSQL database, worker processes started by this script with the production
worker settings (`core.worker.build_worker`, arq's default poll delay). Two measurements:

  * backlog: N jobs accepted first, then the workers start; jobs/s until all are completed
    and delivered (the stand-in notifier counts deliveries);
  * trickle: workers idle, one job accepted every --gap-ms; enqueue -> pick-up latency
    (the row's started_at - created_at).

    python benchmarks/queue_throughput.py [--jobs 300] [--workers 1,2] [--slots 1,8]
                                          [--db sqlite|postgres] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.jobs import Job, JobState, NewJob, Source  # noqa: E402
from core.ports import EngineResult  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.worker import BUSY_RETRY_S  # noqa: E402


class TrivialEngine:
    """Benchmark-only stand-in: counts the run in Redis and 'produces' an empty output."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def process(self, job: Job, progress: Any) -> EngineResult:
        await self.redis.incr(f"{self.prefix}:bench:runs:{job.id}")
        await progress(50, "pretending")
        delay = float(job.options.get("work_s", 0) or 0)
        if delay:
            await asyncio.sleep(delay)
        return EngineResult(output_key=f"outputs/{job.id}.mp4", output_size_bytes=0, report={})

    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "backend": "trivial"}


class CountingNotifier:
    """Benchmark-only stand-in: counts each delivery of a job in Redis."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def progress(self, job: Job) -> None:
        return None

    async def deliver(self, job: Job) -> None:
        await self.redis.incr(f"{self.prefix}:bench:delivered:{job.id}")


def serve_worker() -> None:
    """Entry point of a worker process (--serve-worker): production worker, stand-in parts."""
    from core import worker as worker_module
    from core.deps import build
    from core.processing import Policy
    from core.worker import build_worker

    if os.environ.get(
        "BENCH_BUSY_RETRY_S"
    ):  # what-if only: production uses core.worker.BUSY_RETRY_S
        worker_module.BUSY_RETRY_S = float(os.environ["BENCH_BUSY_RETRY_S"])

    async def main() -> None:
        settings = Settings()
        deps = await build(settings, notifiers={})
        deps.engine = TrivialEngine(deps.redis, settings.redis_prefix)
        deps.notifiers = {s: CountingNotifier(deps.redis, settings.redis_prefix) for s in Source}
        base = Policy.from_settings(settings)
        slots = int(os.environ.get("BENCH_SLOTS", "1"))
        policy = Policy(
            lease_s=base.lease_s, heartbeat_s=base.heartbeat_s, max_concurrent_runs=slots
        )
        worker = build_worker(settings, deps=deps, policy=policy)
        try:
            await worker.async_run()
        except asyncio.CancelledError:
            pass
        finally:
            await worker.close()
            await deps.close()

    asyncio.run(main())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


class Bench:
    """One private Redis + database + storage, worker processes, and the driver's own Deps."""

    def __init__(self, db: str, lease_s: int = 30) -> None:
        self.db = db
        self.lease_s = lease_s
        self.work = Path(tempfile.mkdtemp(prefix="bl-queue-bench-"))
        self.prefix = f"blbench:{uuid.uuid4().hex[:8]}"
        self.redis_server: Any = None
        self.drop_db: Any = None
        self.deps: Any = None
        self.workers: list[asyncio.subprocess.Process] = []
        self.env: dict[str, str] = {}
        self.extra_env: dict[str, str] = {}

    async def __aenter__(self) -> Bench:
        from core.deps import build
        from core.embedded_redis import start_embedded_redis

        self.redis_server = await start_embedded_redis()
        if self.db == "postgres":
            from benchmarks.intake_load import fresh_pg_database

            database_url, self.drop_db = await fresh_pg_database()
        else:
            database_url = f"sqlite:///{self.work / 'bench.db'}"
        self.env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis_server.url,
            "REDIS_PREFIX": self.prefix,
            "STORAGE_DIR": str(self.work / "storage"),
            "DATA_DIR": str(self.work),
            "JOB_LEASE_SECONDS": str(self.lease_s),
        }
        values: dict[str, Any] = {k.lower(): v for k, v in self.env.items()}
        settings = Settings(**values)
        self.deps = await build(settings, engine=TrivialEngine(None, self.prefix), notifiers={})
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for proc in list(self.workers):
            await self.stop_worker(proc, signal.SIGKILL)
        if self.deps is not None:
            await self.deps.close()
        if self.drop_db is not None:
            await self.drop_db()
        if self.redis_server is not None:
            await self.redis_server.stop()

    async def start_worker(self, slots: int = 1) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-worker",
            env={**os.environ, **self.env, "BENCH_SLOTS": str(slots), **self.extra_env},
            cwd=str(ROOT),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.workers.append(proc)
        return proc

    async def stop_worker(
        self, proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM
    ) -> None:
        if proc.returncode is None:
            proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if proc in self.workers:
            self.workers.remove(proc)

    async def accept(self, n: int, **options: Any) -> list[str]:
        from core.intake import accept

        ids = []
        for _ in range(n):
            new = NewJob(
                source=Source.WEBHOOK,
                requester="bench",
                reply_to={},
                options={"region": "auto", **options},
                input_key="inputs/bench/none.mp4",
            )
            ids.append((await accept(self.deps, new)).job.id)
        return ids

    async def counts(self) -> dict[str, int]:
        jobs = await self.deps.store.list_jobs(limit=100_000)
        out: dict[str, int] = {}
        for job in jobs:
            out[job.status.value] = out.get(job.status.value, 0) + 1
        out["delivered"] = sum(1 for j in jobs if j.delivered_at is not None)
        return out

    async def wait_all_delivered(self, total: int, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if (await self.counts()).get("delivered", 0) >= total:
                return True
            await asyncio.sleep(0.1)
        return False

    async def pickup_latencies(self) -> list[float]:
        jobs = await self.deps.store.list_jobs(limit=100_000)
        return [
            (j.started_at - j.created_at).total_seconds()
            for j in jobs
            if j.started_at is not None and j.status == JobState.COMPLETED
        ]


async def backlog(
    db: str, workers: int, slots: int, jobs: int, max_s: float, busy_retry_s: str = ""
) -> dict[str, Any]:
    async with Bench(db) as bench:
        if busy_retry_s:
            bench.extra_env["BENCH_BUSY_RETRY_S"] = busy_retry_s
        t0 = time.perf_counter()
        await bench.accept(jobs)
        enqueue_s = time.perf_counter() - t0
        started = time.perf_counter()
        for _ in range(workers):
            await bench.start_worker(slots)
        done = await bench.wait_all_delivered(jobs, time.monotonic() + max_s)
        elapsed = time.perf_counter() - started
        finished = (await bench.counts()).get("delivered", 0)
    return {
        "mode": "backlog",
        "db": db,
        "workers": workers,
        "slots": slots,
        "jobs": jobs,
        "done": finished,
        "seconds": elapsed,
        "jobs_s": finished / elapsed if elapsed else 0.0,
        "enqueue_s": jobs / enqueue_s if enqueue_s else 0.0,
        "complete": done,
        "busy_retry": busy_retry_s or f"{BUSY_RETRY_S:g} (prod)",
    }


async def trickle(
    db: str, workers: int, slots: int, jobs: int, gap_s: float, max_s: float
) -> dict[str, Any]:
    async with Bench(db) as bench:
        for _ in range(workers):
            await bench.start_worker(slots)
        await asyncio.sleep(3)  # worker start-up (imports, connections, start-up reconcile)
        for _ in range(jobs):
            await bench.accept(1)
            await asyncio.sleep(gap_s)
        await bench.wait_all_delivered(jobs, time.monotonic() + max_s)
        latencies = await bench.pickup_latencies()
    return {
        "mode": "trickle",
        "db": db,
        "workers": workers,
        "slots": slots,
        "jobs": jobs,
        "done": len(latencies),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=0) * 1000,
    }


async def main(args: argparse.Namespace) -> None:
    rows = []
    for workers in args.workers:
        for slots in args.slots:
            rows.append(await backlog(args.db, workers, slots, args.jobs, args.max_seconds))
    if args.what_if_busy_retry_s:
        for slots in args.slots:
            rows.append(
                await backlog(
                    args.db, 1, slots, args.jobs, args.max_seconds, args.what_if_busy_retry_s
                )
            )
    trickles = [
        await trickle(args.db, 1, 1, args.trickle_jobs, args.gap_ms / 1000, args.max_seconds)
    ]
    print(f"\nqueue throughput ({args.db}), loopback; machine cores: {os.cpu_count()}")
    print(
        f"{'workers':>8}{'slots':>6}{'busy retry s':>13}{'jobs':>6}{'done':>6}{'seconds':>9}"
        f"{'jobs/s':>8}{'accept/s':>10}"
    )
    for r in rows:
        print(
            f"{r['workers']:>8}{r['slots']:>6}{r['busy_retry']:>13}{r['jobs']:>6}{r['done']:>6}"
            f"{r['seconds']:>9.1f}{r['jobs_s']:>8.1f}{r['enqueue_s']:>10.1f}"
        )
    print(f"\nenqueue -> pick-up (one idle worker, one job every {args.gap_ms} ms)")
    print(f"{'jobs':>6}{'done':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for r in trickles:
        print(
            f"{r['jobs']:>6}{r['done']:>6}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=300, help="backlog size (max 5000)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--slots", default="1,8", help="runs per worker process")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--trickle-jobs", type=int, default=40)
    parser.add_argument("--gap-ms", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=120, help="per measurement")
    parser.add_argument(
        "--what-if-busy-retry-s",
        default="0.1",
        help="also run 1 worker with core.worker.BUSY_RETRY_S patched to this ('' to skip)",
    )
    args = parser.parse_args(argv)
    args.jobs = max(1, min(args.jobs, 5000))
    args.trickle_jobs = max(1, min(args.trickle_jobs, 1000))
    args.workers = [max(1, min(int(w), 8)) for w in args.workers.split(",")]
    args.slots = [max(1, min(int(s), 64)) for s in args.slots.split(",")]
    return args


if __name__ == "__main__":
    options = parse_args()
    if options.serve_worker:
        serve_worker()
    else:
        asyncio.run(main(options))
