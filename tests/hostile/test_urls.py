"""Outbound URLs that lead inside our network are refused: spellings tests/webhooks does not
cover, DNS names that resolve to private addresses, and redirects to any of them — checked in
the guard itself, at the intake API, in the worker's download and in callback delivery."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.errors import UnsafeURL
from core.intake import accept
from core.jobs import JobState
from core.settings import Settings
from tests.pipeline.conftest import build_deps, forget_prefix, new_job, run_worker
from tests.pipeline.fakes import CountingNotifier
from tests.reliability.helpers import Receiver
from tests.webhooks.conftest import ApiFactory
from webhooks import safe_http
from webhooks.callbacks import CallbackNotifier

#: names our fake resolver answers, the way a hostile DNS zone would
FAKE_DNS: dict[str, list[str]] = {
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "loopback.example": ["127.0.0.1"],
    "ula.example": ["fd00::1"],
    "mapped.example": ["::ffff:192.168.1.1"],
    "half-public.example": ["93.184.216.34", "10.0.0.1"],  # one bad answer is enough
    "public.example": ["93.184.216.34"],
}

SPELLINGS_NOT_COVERED_ELSEWHERE = [
    "http://2852039166/",  # 169.254.169.254 as one decimal number
    "http://0251.0376.0251.0376/",  # the same in octal
    "http://0xa9fea9fe/",  # and in hex
    "http://0xA9.0xFE.0xA9.0xFE/",
    "http://169.254.169.254./",  # trailing dot
    "http://169.254.43518/",  # a.b.c short form
    "http://0/",  # 0.0.0.0
    "http://10.1/",
    "http://[::ffff:7f00:1]/",  # IPv4-mapped, hex tail
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
    "http://[fe80::1%25eth0]/",  # zone id
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://[fec0::1]/",  # site-local
    "http://[::]:80/",
    "http://１２７．０．０．１/",  # full-width digits (IDNA folds them to 127.0.0.1)
    "http://127.0.0.1:80@93.184.216.34/",  # credentials trick
    "http://93.184.216.34:99999/",  # bad port
    "gopher://93.184.216.34/",
    "http://" + "a" * 3000 + ".com/",
]


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer FAKE_DNS names from a table; every other name goes to the real resolver."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.rstrip(".") in FAKE_DNS:
            out = []
            for address in FAKE_DNS[name.rstrip(".")]:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr = (
                    (address, int(port or 80), 0, 0)
                    if ":" in address
                    else (address, int(port or 80))
                )
                out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
            return out
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("url", SPELLINGS_NOT_COVERED_ELSEWHERE)
async def test_more_spellings_of_inside_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await safe_http.check_url(url, allow_loopback=False)


@pytest.mark.parametrize("name", sorted(n for n in FAKE_DNS if n != "public.example"))
async def test_names_resolving_to_inside_addresses_are_refused(fake_dns: None, name: str) -> None:
    with pytest.raises(UnsafeURL, match="resolves to"):
        await safe_http.check_url(f"https://{name}/video.mp4", allow_loopback=False)


async def test_a_name_resolving_to_a_public_address_passes(fake_dns: None) -> None:
    await safe_http.check_url("https://public.example/video.mp4", allow_loopback=False)


@pytest.mark.parametrize("field", ["video_url", "callback_url"])
@pytest.mark.parametrize("name", ["internal.example", "metadata.example", "half-public.example"])
async def test_intake_refuses_urls_whose_names_resolve_inside(
    fake_dns: None, start_api: ApiFactory, field: str, name: str
) -> None:
    api = await start_api(allow_loopback_urls=False)
    payload = {"video_url": "https://public.example/v.mp4", field: f"https://{name}/x"}
    status, body = await api.post_json(payload)
    assert status == 400 and body["error"]["code"] == "unsafe_url", body
    assert "resolves to" in body["error"]["message"]
    assert await api.deps.store.list_jobs() == []


@pytest.fixture
async def redirector(aiohttp_server: Callable[..., Any]) -> str:
    """A loopback origin whose /go?to=URL answers 302 to URL."""

    async def go(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/go", go)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}/go"


REDIRECT_TARGETS = [
    "http://2852039166/latest/meta-data/",
    "http://0251.0376.0251.0376/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://internal.example/secret",
    "http://metadata.example/latest/meta-data/",
    "http://ula.example/",
    "file:///etc/passwd",
    "ftp://93.184.216.34/",
]


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
async def test_redirects_to_inside_addresses_are_refused(
    fake_dns: None, redirector: str, target: str
) -> None:
    class Loopback:  # the origin itself is on loopback, so loopback is allowed here
        allow_loopback_urls = True

    from yarl import URL

    url = str(URL(redirector).with_query(to=target))
    async with safe_http.open_session(Loopback()) as session:  # type: ignore[arg-type]
        with pytest.raises(UnsafeURL):
            response = await safe_http.request(session, "GET", url, allow_loopback=True)
            response.release()


@pytest.fixture
async def worker_settings(
    make_settings: Callable[..., Settings], redis_url: str
) -> AsyncIterator[Settings]:
    settings = make_settings(redis_url=redis_url, job_lease_seconds=5)
    yield settings
    await forget_prefix(redis_url, settings.redis_prefix)


async def test_a_url_job_redirected_inside_fails_at_once_with_a_clear_reason(
    fake_dns: None, redirector: str, worker_settings: Settings, tmp_path: Path
) -> None:
    from yarl import URL

    notifier = CountingNotifier()
    deps = await build_deps(worker_settings, notifier)
    try:
        url = str(URL(redirector).with_query(to="http://metadata.example/latest/meta-data/"))
        job = await accept(deps, new_job(options={"region": "auto", "video_url": url}))
        await run_worker(deps)
        failed = await deps.store.get(job.job.id)
        assert failed is not None and failed.status == JobState.FAILED
        assert failed.attempts == 1, "an unsafe URL is permanent: no retries"
        assert "resolves to" in (failed.error_message or ""), failed.error_message
        assert deps.engine.calls == []  # type: ignore[attr-defined]
        assert notifier.count(job.job.id) == 1
    finally:
        await deps.close()


async def test_a_callback_to_a_name_resolving_inside_is_never_sent(
    fake_dns: None, make_settings: Callable[..., Settings], redis_url: str
) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        port = receiver.url.rsplit(":", 1)[1].split("/")[0]
        settings = make_settings(redis_url=redis_url, allow_loopback_urls=False)
        from core.storage import open_storage

        notifier = CallbackNotifier(settings, open_storage(settings))
        job = new_job(reply_to={"callback_url": f"http://loopback.example:{port}/callback"})
        ended = job.to_job(datetime.now(UTC), timedelta(days=1)).replace(
            status=JobState.FAILED, error_message="x"
        )
        await notifier.deliver(ended)  # given up quietly: retrying cannot make it safe
        await notifier.close()
        assert receiver.answered == []
    finally:
        await receiver.stop()
