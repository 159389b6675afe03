"""How fast the Slack endpoint answers Events API requests (Slack gives up after 3 s).

Loopback only and bounded: starts the fake Slack (tests/slack/fake_slack.py) and the real
`blanklogo web` app on ephemeral 127.0.0.1 ports, with a SQLite store, local storage and the
machine's Redis (REDIS_URL, default redis://127.0.0.1:6379/0, keys under a unique prefix that
is deleted afterwards). Posts signed `message` events that each carry a small video, at
rising concurrency (after a round of events sent one at a time), and prints p50/p99 of
  * answer: time until the HTTP answer (what Slack measures), and
  * queued: time until the thread reply says "queued" (download + accept, in the background).

    python benchmarks/slack_events.py [--events 300] [--concurrency 1,8,32] [--max-seconds 90]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bots.slack import SLACK_BOT_KEY  # noqa: E402
from core.deps import build  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.redis_keys import forget_redis_keys  # noqa: E402
from tests.slack.fake_slack import BOT_TOKEN, FakeSlack  # noqa: E402
from tests.slack.slack_http import (  # noqa: E402
    SIGNING_SECRET,
    dumps,
    event_envelope,
    message_event,
    signed_headers,
)
from webhooks.server import build_app  # noqa: E402

VIDEO = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(64 * 1024)


class NoEngine:
    """The benchmark measures intake only; no job is run."""

    async def process(self, job: Any, progress: Any) -> Any:
        raise RuntimeError("not used")

    async def health(self) -> dict[str, Any]:
        return {"status": "ok"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def one_round(
    session: aiohttp.ClientSession,
    url: str,
    fake: FakeSlack,
    count: int,
    concurrency: int,
    deadline: float,
) -> tuple[list[float], list[float], int]:
    """Post `count` events, `concurrency` at a time; return answer times, queued times, errors."""
    answers: list[float] = []
    posted: dict[str, float] = {}
    errors = 0
    gate = asyncio.Semaphore(concurrency)

    async def post(i: int) -> None:
        nonlocal errors
        if time.monotonic() > deadline:
            return
        file = fake.host_file(VIDEO, f"bench-{i}.mp4")
        event = message_event(channel="C0BENCH", user=f"U{i:08d}", files=[file])
        body = dumps(event_envelope(event))
        async with gate:
            headers = signed_headers(body, "application/json")
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                elapsed = time.perf_counter() - started
            if resp.status != 200:
                errors += 1
                return
            answers.append(elapsed)
            posted[event["ts"]] = started

    await asyncio.gather(*(post(i) for i in range(count)))
    queued = await wait_for_queued(fake, posted, deadline + 30)
    return answers, queued, errors


async def wait_for_queued(
    fake: FakeSlack, posted: dict[str, float], deadline: float
) -> list[float]:
    """Seconds from each post until its thread reply said "queued" (polled every 10 ms)."""
    seen: dict[str, float] = {}
    while len(seen) < len(posted) and time.monotonic() < deadline:
        now = time.perf_counter()
        for (_, _), message in list(fake.messages.items()):
            thread = message.get("thread_ts")
            if thread in posted and thread not in seen and "queued" in message["text"]:
                seen[thread] = now - posted[thread]
        await asyncio.sleep(0.01)
    return list(seen.values())


async def isolated_round(
    session: aiohttp.ClientSession, url: str, fake: FakeSlack, count: int
) -> tuple[list[float], list[float]]:
    """One event at a time, each waited for until "queued": the uncontended user experience."""
    answers: list[float] = []
    queued: list[float] = []
    for i in range(count):
        file = fake.host_file(VIDEO, f"alone-{i}.mp4")
        event = message_event(channel="C0ALONE", user=f"UALONE{i:04d}", files=[file])
        body = dumps(event_envelope(event))
        started = time.perf_counter()
        async with session.post(
            url, data=body, headers=signed_headers(body, "application/json")
        ) as resp:
            await resp.read()
        answers.append(time.perf_counter() - started)
        queued += await wait_for_queued(fake, {event["ts"]: started}, time.monotonic() + 30)
    return answers, queued


def line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:>7}: no samples"
    return (
        f"{name:>7}: p50 {percentile(values, 0.5) * 1000:7.1f} ms   p99 "
        f"{percentile(values, 0.99) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
    )


async def main(args: argparse.Namespace) -> int:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"blbench:{uuid.uuid4().hex[:8]}"
    fake = await FakeSlack().start()
    with tempfile.TemporaryDirectory(prefix="blanklogo-bench-") as tmp:
        settings = Settings(
            redis_url=redis_url,
            redis_prefix=prefix,
            database_url=f"sqlite:///{tmp}/bench.db",
            storage_dir=Path(tmp) / "storage",
            data_dir=Path(tmp),
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_base_url=fake.api_base_url,
            allow_loopback_urls=True,
        )
        deps = await build(settings, engine=NoEngine(), notifiers={})
        app = build_app(deps)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        deadline = time.monotonic() + args.max_seconds
        print(f"{os.cpu_count()} CPU cores; {args.events} events per round; Redis {redis_url}")
        try:
            async with aiohttp.ClientSession() as session:
                # first request pays auth.test once; not counted
                warm = dumps(event_envelope(message_event(text="warm-up")))
                await session.post(url, data=warm, headers=signed_headers(warm, "application/json"))
                answers, queued = await isolated_round(session, url, fake, args.isolated)
                print(f"one at a time: {len(answers)} events")
                print("  " + line("answer", answers))
                print("  " + line("queued", queued))
                for concurrency in args.concurrency:
                    answers, queued, errors = await one_round(
                        session, url, fake, args.events, concurrency, deadline
                    )
                    await app[SLACK_BOT_KEY].background.drain(timeout=60)
                    print(
                        f"concurrency {concurrency:>3}: {len(answers)} answered, {errors} errors, "
                        f"{len(queued)} queued"
                    )
                    print("  " + line("answer", answers))
                    print("  " + line("queued", queued))
                    if time.monotonic() > deadline:
                        print("time budget spent; stopping")
                        break
        finally:
            await runner.cleanup()
            await deps.close()
            await fake.stop()
            await forget_redis_keys(redis_url, prefix)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="events per round (max 2000)")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 8, 32],
        help="comma-separated concurrency levels",
    )
    parser.add_argument(
        "--isolated", type=int, default=30, help="events sent one at a time first (max 200)"
    )
    parser.add_argument("--max-seconds", type=float, default=90, help="time budget of all rounds")
    args = parser.parse_args()
    args.events = max(1, min(args.events, 2000))
    args.isolated = max(0, min(args.isolated, 200))
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
