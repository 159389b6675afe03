"""Completion callbacks: signed POSTs to a loopback receiver, errors, 410, unsafe targets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.errors import DeliveryError
from core.jobs import Job, JobState, Source
from core.storage import open_storage
from tests.webhooks.conftest import WEBHOOK_SECRET
from webhooks import callbacks
from webhooks.callbacks import build_notifier
from webhooks.signatures import verify


class Receiver:
    """A loopback callback receiver that answers with a chosen status."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.delay = 0.0
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status, text="thanks")

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/hook"


@pytest.fixture
async def receiver() -> Any:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    rec.server = TestServer(app, host="127.0.0.1")
    await rec.server.start_server()
    yield rec
    await rec.server.close()


def _job(status: JobState, callback_url: str | None, **fields: Any) -> Job:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": "job123",
        "source": Source.WEBHOOK,
        "requester": "key:abc",
        "reply_to": {"callback_url": callback_url, "metadata": {"order": 7}},
        "status": status,
        "created_at": now - timedelta(seconds=30),
        "updated_at": now,
        "expires_at": now + timedelta(days=7),
        "started_at": now - timedelta(seconds=20),
        "completed_at": now,
        "processing_time_ms": 20_000,
    }
    values.update(fields)
    return Job(**values)


@pytest.fixture
def notifier_for(make_settings: Callable[..., Any]) -> Callable[..., Any]:
    def factory(**overrides: Any) -> Any:
        settings = make_settings(webhook_secret=WEBHOOK_SECRET, **overrides)
        return build_notifier(settings, open_storage(settings), None)

    return factory


async def test_completed_job_gets_a_signed_callback_with_a_result_link(
    receiver: Receiver, notifier_for: Callable[..., Any], small_clip: Path
) -> None:
    notifier = notifier_for()
    await notifier.storage.put_file("outputs/job123.mp4", small_clip)
    region = {"box": [600, 20, 90, 40], "opacity": 0.5, "start_s": 0.0, "end_s": 2.0}
    report = {"regions": [{**region, "method": "invert"}], "timings": {"total_s": 1.0}}
    job = _job(JobState.COMPLETED, receiver.url, output_key="outputs/job123.mp4", report=report)
    await notifier.deliver(job)
    await notifier.close()
    assert len(receiver.calls) == 1
    headers, body = receiver.calls[0]
    assert verify(WEBHOOK_SECRET, headers, body, now=time.time()) == "job123.completed.0"
    event = json.loads(body)
    assert event["type"] == "job.completed"
    data = event["data"]
    assert data["id"] == "job123" and data["status"] == "completed"
    assert data["metadata"] == {"order": 7} and data["error"] is None
    assert "/files/outputs/job123.mp4?" in data["result_url"]
    assert data["timings"]["processing_ms"] == 20_000
    assert data["marks_removed"] == [{**region, "method": "invert"}]


async def test_failed_job_callback_says_why(
    receiver: Receiver, notifier_for: Callable[..., Any]
) -> None:
    notifier = notifier_for()
    await notifier.deliver(_job(JobState.FAILED, receiver.url, error_message="not a video"))
    await notifier.close()
    event = json.loads(receiver.calls[0][1])
    assert event["type"] == "job.failed"
    assert event["data"]["error"] == "not a video" and event["data"]["result_url"] is None


async def test_every_try_of_one_event_carries_the_same_webhook_id(
    receiver: Receiver, notifier_for: Callable[..., Any]
) -> None:
    notifier = notifier_for()
    job = _job(JobState.CANCELLED, receiver.url)
    await notifier.deliver(job)
    await notifier.deliver(job)
    await notifier.close()
    ids = [headers["webhook-id"] for headers, _ in receiver.calls]
    assert ids == ["job123.cancelled.0", "job123.cancelled.0"]


async def test_a_job_that_fails_again_after_a_retry_sends_a_new_event(
    receiver: Receiver, notifier_for: Callable[..., Any]
) -> None:
    notifier = notifier_for()
    await notifier.deliver(_job(JobState.FAILED, receiver.url, attempts=3))
    await notifier.deliver(_job(JobState.FAILED, receiver.url, attempts=4))
    await notifier.close()
    ids = [headers["webhook-id"] for headers, _ in receiver.calls]
    assert ids == ["job123.failed.3", "job123.failed.4"]


async def test_receiver_error_raises_delivery_error_for_a_retry(
    receiver: Receiver, notifier_for: Callable[..., Any]
) -> None:
    receiver.status = 500
    notifier = notifier_for()
    with pytest.raises(DeliveryError, match="500"):
        await notifier.deliver(_job(JobState.FAILED, receiver.url))
    await notifier.close()


async def test_timeout_raises_delivery_error(
    receiver: Receiver, notifier_for: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callbacks, "CALLBACK_TIMEOUT_S", 0.3)
    receiver.delay = 2
    notifier = notifier_for()
    with pytest.raises(DeliveryError):
        await notifier.deliver(_job(JobState.FAILED, receiver.url))
    await notifier.close()


async def test_gone_receiver_is_given_up_without_error(
    receiver: Receiver, notifier_for: Callable[..., Any]
) -> None:
    receiver.status = 410
    notifier = notifier_for()
    await notifier.deliver(_job(JobState.FAILED, receiver.url))
    await notifier.close()
    assert len(receiver.calls) == 1


async def test_receiver_down_raises_delivery_error(notifier_for: Callable[..., Any]) -> None:
    notifier = notifier_for()
    with pytest.raises(DeliveryError):
        await notifier.deliver(_job(JobState.FAILED, "http://127.0.0.1:9/hook"))
    await notifier.close()


async def test_callback_to_a_private_address_is_never_sent(
    receiver: Receiver, notifier_for: Callable[..., Any]
) -> None:
    notifier = notifier_for(allow_loopback_urls=False)
    await notifier.deliver(_job(JobState.FAILED, receiver.url))
    await notifier.close()
    assert receiver.calls == []


async def test_jobs_without_callback_url_and_progress_are_no_ops(
    receiver: Receiver, notifier_for: Callable[..., Any]
) -> None:
    notifier = notifier_for()
    await notifier.deliver(_job(JobState.COMPLETED, None))
    await notifier.progress(_job(JobState.PROCESSING, receiver.url))
    await notifier.close()
    assert receiver.calls == []
