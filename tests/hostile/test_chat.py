"""Hostile chat: non-operators running destructive commands, odd arguments, and a flood of
videos from one person (the per-person hourly limit holds under concurrency, politely)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bots.telegram import texts
from core.intake import accept
from core.jobs import JobState, NewJob, Source
from tests.telegram.conftest import HEADERS
from tests.telegram.test_webhook import replies_to, settle, telegram_jobs
from tests.telegram.updates import ADMIN_ID, USER_ID, command_update, video_update

pytestmark = pytest.mark.redis


async def _send(client, update) -> None:  # type: ignore[no-untyped-def]
    response = await client.post("/telegram/webhook", json=update, headers=HEADERS)
    assert response.status == 200


async def test_non_operators_cannot_cancel_retry_or_sweep_anything(tg_client, fake_api) -> None:
    client, deps = await tg_client()
    job = (
        await accept(
            deps,
            NewJob(source=Source.WEBHOOK, requester="someone", reply_to={}, input_key="inputs/x/a"),
        )
    ).job
    commands = [
        f"/cancel {job.id}",
        f"/retry {job.id}",
        "/retry_stuck",
        f"/job {job.id}",
        "/queue",
        "/health",
    ]
    for n, text in enumerate(commands, start=1):
        await _send(client, command_update(n, text, user_id=USER_ID, message_id=n))
    await settle(client)
    for n in range(1, len(commands) + 1):
        (reply,) = replies_to(fake_api, n)
        assert "operators only" in reply
        assert job.id not in reply, "a refusal tells nothing about the job"
    current = await deps.store.get(job.id)
    assert current is not None and current.status == JobState.QUEUED
    audit = await deps.store.audit_log()
    assert len(audit) == len(commands) and {e.outcome for e in audit} == {"refused"}


ODD_ARGUMENTS = [
    "/job",
    "/job " + "x" * 4000,
    "/job ' OR 1=1 --",
    "/job %s%s%s%n",
    "/cancel ../../etc/passwd",
    "/retry \u202e\u0000gnp.exe",
    "/job 🎬🎬🎬",
    "/retry_stuck now please, all of them",
    "/queue@SomeOtherBot",
    "/cancel " + " ".join(["a"] * 500),
]


async def test_odd_arguments_from_an_operator_get_a_readable_answer(
    tg_client, fake_api, caplog: pytest.LogCaptureFixture
) -> None:
    client, deps = await tg_client()
    caplog.set_level(logging.WARNING)
    for n, text in enumerate(ODD_ARGUMENTS, start=1):
        await _send(client, command_update(n, text, user_id=ADMIN_ID, message_id=n))
    await settle(client)
    answered = 0
    for n, text in enumerate(ODD_ARGUMENTS, start=1):
        replies = replies_to(fake_api, n)
        if text.startswith("/queue@"):
            continue  # a command for another bot is not ours to answer
        assert len(replies) == 1, (text, replies)
        assert 0 < len(replies[0]) <= 4096, "fits one Telegram message"
        answered += 1
    assert answered == len(ODD_ARGUMENTS) - 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert {j.status for j in await deps.store.list_jobs()} <= {JobState.QUEUED}


async def test_a_flood_of_videos_from_one_person_is_limited_politely(
    tg_client, fake_api, small_clip
) -> None:
    limit = 5
    client, deps = await tg_client(user_rate_limit_per_hour=limit)
    fake_api.add_file("v", small_clip.read_bytes())
    flood = [video_update(n, file_id="v", message_id=n) for n in range(1, 13)]
    await asyncio.gather(*(_send(client, update) for update in flood))
    other = video_update(100, file_id="v", message_id=100, chat_id=555, user_id=555)
    await _send(client, other)
    await settle(client)

    jobs = await telegram_jobs(deps)
    mine = [j for j in jobs if j.requester == str(USER_ID)]
    assert len(mine) == limit, "exactly the hourly limit got through, even all at once"
    assert [j.requester for j in jobs if j.requester != str(USER_ID)] == ["555"]
    refused = [
        text
        for n in range(1, 13)
        for text in replies_to(fake_api, n)
        if text == texts.clip(texts.rate_limited(limit))
    ]
    assert len(refused) == 12 - limit
    assert "this hour" in refused[0] and "Traceback" not in refused[0]
