"""A callback receiver that is down for a while: deliveries retry on the backoff schedule (shrunk
here) and the job is delivered exactly once when it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core import delivery
from core.deps import Deps, build
from core.intake import accept
from core.jobs import JobState
from core.settings import Settings
from core.storage import open_storage
from tests.pipeline.conftest import new_job, store_clip
from tests.pipeline.fakes import ScriptedEngine
from tests.reliability.helpers import Receiver, run_worker_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SCHEDULE = (0.3, 0.6, 1.2, 2.4, 4.8)


@pytest.fixture
async def deps(pg_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Deps]:
    monkeypatch.setattr(delivery, "DELIVERY_BACKOFF_S", SCHEDULE)
    monkeypatch.setattr(delivery.deliver_result, "__kwdefaults__", {"schedule": SCHEDULE})
    storage = open_storage(pg_settings)
    d = await build(pg_settings, storage=storage, engine=ScriptedEngine(storage))
    yield d
    await d.close()


async def test_deliveries_retry_on_the_backoff_schedule_until_the_receiver_is_back(
    deps: Deps, small_clip: Path, receiver: Receiver
) -> None:
    receiver.status = 503
    job = await accept(
        deps,
        await store_clip(deps, new_job(reply_to={"callback_url": receiver.url}), small_clip),
    )

    async def back_after_three_failures() -> bool:
        if len(receiver.answered) >= 3:
            receiver.status = 200
        current = await deps.store.get(job.job.id)
        return current is not None and current.delivered_at is not None and receiver.posts

    await run_worker_until(deps, back_after_three_failures, 30)
    await run_worker_until(deps, lambda: asyncio.sleep(1, True), 5)  # nothing more arrives

    done = await deps.store.get(job.job.id)
    assert done is not None and done.status == JobState.COMPLETED
    assert receiver.answered[:3] == [503, 503, 503] and receiver.answered[-1] == 200
    assert receiver.delivered(job.job.id) == 1 and len(receiver.answered) == 4
    gaps = [b - a for a, b in zip(receiver.at, receiver.at[1:], strict=False)]
    for gap, planned in zip(gaps, SCHEDULE, strict=False):
        # each wait follows the schedule (+ up to 20 % jitter, + worker polling)
        assert planned * 0.9 <= gap <= planned * 1.2 + 0.6, (gaps, SCHEDULE)


async def test_a_receiver_down_past_the_schedule_is_given_up_and_counted(
    deps: Deps, small_clip: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = (0.2, 0.2)
    monkeypatch.setattr(delivery.deliver_result, "__kwdefaults__", {"schedule": short})
    receiver.status = 500
    job = await accept(
        deps,
        await store_clip(deps, new_job(reply_to={"callback_url": receiver.url}), small_clip),
    )

    async def given_up() -> bool:
        return await delivery.delivery_failures(deps) == 1

    await run_worker_until(deps, given_up, 20)
    assert len(receiver.answered) == len(short) + 1
    assert receiver.posts == [], "nothing was accepted by the receiver"
    # a given-up delivery keeps its claim ("settled"), so no reconciler pass retries it again
    current = await deps.store.get(job.job.id)
    assert current is not None and current.delivered_at is not None
