"""Loopback load on POST /telegram/webhook: how fast updates are answered and handled.

Starts the fake Bot API (tests/telegram/fake_botapi.py) and the real aiohttp app (real
PTB, real Redis, SQLite, local storage) on loopback ports, then posts a bounded number of
real Bot API updates (video messages, /help commands and redeliveries) with a fixed
concurrency, and prints p50/p99 of:

* answer: POST -> HTTP 200 (what Telegram waits for before it redelivers);
* reply: POST -> the bot's first reply reaching the Bot API (help text or "fetching…");
* queued: POST -> the status reply edited to "Queued, position N" (video fetched, job kept).

    python benchmarks/telegram_updates.py [--updates 300] [--concurrency 20]

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0); its keys are removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.deps import build  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.media import make_clip  # noqa: E402
from tests.telegram.fake_botapi import TOKEN, FakeBotApi  # noqa: E402
from tests.telegram.updates import command_update, video_update  # noqa: E402
from webhooks.server import build_app  # noqa: E402

SECRET = "bench-secret"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<7} n={len(ms):<4} p50={percentile(ms, 0.50):7.1f} ms  "
        f"p99={percentile(ms, 0.99):7.1f} ms  max={max(ms):7.1f} ms  "
        f"mean={statistics.fmean(ms):7.1f} ms"
    )


def make_updates(count: int, video_every: int, redeliver_every: int) -> list[dict[str, Any]]:
    updates: list[dict[str, Any]] = []
    for n in range(1, count + 1):
        chat = 10_000 + n  # one chat per update: no per-chat ordering hides concurrency
        if n % video_every == 0:
            update = video_update(n, file_id="clip", chat_id=chat, user_id=chat, message_id=n)
        else:
            update = command_update(n, "/help", user_id=chat, message_id=n)
        updates.append(update)
        if n % redeliver_every == 0:
            updates.append(update)  # Telegram redelivering the same update_id
    return updates


async def bench(args: argparse.Namespace) -> None:
    api = await FakeBotApi().start()
    tmp = Path(tempfile.mkdtemp(prefix="bl-tg-bench-"))
    clip = make_clip(tmp / "clip.mp4", seconds=1.0, size="160x120", fps=10)
    api.add_file("clip", clip.read_bytes())
    settings = Settings(
        redis_url=args.redis_url,
        redis_prefix=f"blbench:{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite:///{tmp / 'bench.db'}",
        storage_dir=tmp / "storage",
        data_dir=tmp,
        telegram_bot_token=TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_api_base_url=api.api_base_url,
        telegram_file_base_url=api.file_base_url,
    )
    deps = await build(settings)
    runner = web.AppRunner(build_app(deps), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/telegram/webhook"

    updates = make_updates(args.updates, args.video_every, args.redeliver_every)
    posted_at: dict[int, float] = {}
    answers: list[float] = []
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(args.concurrency)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def post(session: aiohttp.ClientSession, update: dict[str, Any]) -> None:
        async with gate:
            started = time.monotonic()
            posted_at.setdefault(update["message"]["message_id"], started)
            async with session.post(url, json=update, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            answers.append(time.monotonic() - started)

    wall = time.monotonic()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(post(session, update) for update in updates))
    posting_s = time.monotonic() - wall
    videos = sum(1 for n in range(1, args.updates + 1) if n % args.video_every == 0)
    await api.wait_for(
        lambda: (
            len(api.calls_to("sendMessage")) >= args.updates
            and sum("Queued" in c.params["text"] for c in api.calls_to("editMessageText")) >= videos
        ),
        timeout=120,
        what="every update handled",
    )
    handled_s = time.monotonic() - wall

    replies: list[float] = []
    status_of: dict[int, int] = {}
    for call in api.calls_to("sendMessage"):
        message_id = call.json_param("reply_parameters")["message_id"]
        replies.append(call.at - posted_at[message_id])
        status_of[call.result["message_id"]] = message_id
    queued = [
        call.at - posted_at[status_of[int(call.params["message_id"])]]
        for call in api.calls_to("editMessageText")
        if "Queued" in call.params["text"]
    ]
    jobs = await deps.store.list_jobs(limit=10_000)

    print(
        f"{len(updates)} POSTs ({args.updates} updates, {len(updates) - args.updates} "
        f"redeliveries; {videos} videos), concurrency {args.concurrency}, "
        f"statuses {statuses}"
    )
    print(f"posted in {posting_s:.2f}s, all handled after {handled_s:.2f}s; jobs kept: {len(jobs)}")
    print(summary("answer", answers))
    print(summary("reply", replies))
    print(summary("queued", queued))

    await runner.cleanup()
    for pattern in (f"{settings.redis_prefix}:*", f"arq:*:{settings.redis_prefix}:*"):
        async for key in deps.redis.scan_iter(match=pattern, count=500):
            await deps.redis.delete(key)
    await deps.close()
    await api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300, help="distinct updates (max 2000)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--video-every", type=int, default=5, help="every Nth update is a video")
    parser.add_argument("--redeliver-every", type=int, default=10)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    args.updates = max(1, min(args.updates, 2000))
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
