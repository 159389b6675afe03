"""The SSRF guard: address rules, connect-time refusal, and redirects re-checked."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.errors import UnsafeURL, VideoTooLarge
from core.storage import open_storage
from webhooks import safe_http
from webhooks.safe_http import check_url, open_session, parse_ip_literal, refusal_reason

REFUSED_URLS = [
    "http://127.0.0.1/",
    "http://127.8.9.10:8080/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://224.0.0.251/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 around 169.254.169.254
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[ff02::1]/",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",  # hex
    "http://0x7f000001/",
    "http://127.1/",  # short form
    "http://017700000001/",
    "http://localhost/",
    "http://LOCALHOST./",
    "https://user:secret@93.184.216.34/",
    "ftp://93.184.216.34/",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "http:///no-host",
    "",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await check_url(url, allow_loopback=False)


async def test_public_literal_addresses_pass() -> None:
    await check_url("http://93.184.216.34/video.mp4", allow_loopback=False)
    await check_url("https://[2606:4700:4700::1111]/v.mp4", allow_loopback=False)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/", "http://localhost/", "http://[::1]/", "http://[::ffff:127.0.0.1]/"],
)
async def test_allow_loopback_lets_loopback_through(url: str) -> None:
    await check_url(url, allow_loopback=True)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/", "http://169.254.169.254/", "http://[fd00::1]/", "http://0.0.0.0/"]
)
async def test_allow_loopback_lets_nothing_else_through(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await check_url(url, allow_loopback=True)


def test_odd_ipv4_spellings_are_read_as_resolvers_read_them() -> None:
    assert parse_ip_literal("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert parse_ip_literal("0177.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert parse_ip_literal("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert parse_ip_literal("example.com") is None


def test_every_refusal_has_a_reason_in_words() -> None:
    reason = refusal_reason(ipaddress.ip_address("::ffff:169.254.169.254"))
    assert reason is not None and "link-local" in reason and "IPv6" in reason
    assert refusal_reason(ipaddress.ip_address("8.8.8.8")) is None


def test_connect_time_guard_refuses_a_socket_to_a_private_address() -> None:
    factory = safe_http._socket_factory(allow_loopback=False)
    addr = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80))
    with pytest.raises(safe_http.RefusedAddress):
        factory(addr)
    mapped = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:127.0.0.1", 80, 0, 0))
    with pytest.raises(safe_http.RefusedAddress):
        factory(mapped)


# ---------------------------------------------------------------- against a loopback server


@pytest.fixture
async def origin() -> Any:
    """A loopback server with redirects to everywhere we must not go."""
    app = web.Application()
    port_box: dict[str, int] = {}

    def redirect(target: Callable[[], str], status: int = 302) -> Any:
        async def handler(request: web.Request) -> web.Response:
            raise web.HTTPFound(target()) if status == 302 else web.HTTPTemporaryRedirect(target())

        return handler

    async def final(request: web.Request) -> web.Response:
        return web.Response(
            body=b"\x00\x00\x00\x18ftypisom" + b"\x00" * 5000, content_type="video/mp4"
        )

    app.router.add_get("/final", final)
    app.router.add_get("/to-final", redirect(lambda: "/final"))
    app.router.add_get("/to-private", redirect(lambda: "http://10.0.0.1/secret"))
    app.router.add_get("/to-metadata", redirect(lambda: "http://169.254.169.254/latest/meta-data/"))
    app.router.add_get("/to-mapped", redirect(lambda: "http://[::ffff:192.168.0.1]/", 307))
    app.router.add_get(
        "/to-localhost", redirect(lambda: f"http://localhost:{port_box['port']}/final")
    )
    app.router.add_get("/loop", redirect(lambda: "/loop"))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    port_box["port"] = server.port
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


class _Settings:
    def __init__(self, allow_loopback_urls: bool, max_upload_bytes: int = 10_000_000) -> None:
        self.allow_loopback_urls = allow_loopback_urls
        self.max_upload_bytes = max_upload_bytes


async def _get(url: str, allow_loopback: bool = True) -> int:
    async with open_session(_Settings(allow_loopback)) as session:  # type: ignore[arg-type]
        response = await safe_http.request(session, "GET", url, allow_loopback=allow_loopback)
        async with response:
            return response.status


async def test_redirects_to_safe_targets_are_followed(origin: str) -> None:
    assert await _get(f"{origin}/to-final") == 200
    assert await _get(f"{origin}/to-localhost") == 200


@pytest.mark.parametrize("path", ["/to-private", "/to-metadata", "/to-mapped"])
async def test_redirect_to_a_private_address_is_refused(origin: str, path: str) -> None:
    with pytest.raises(UnsafeURL):
        await _get(f"{origin}{path}")


async def test_redirect_to_localhost_is_refused_without_the_loopback_setting(origin: str) -> None:
    with pytest.raises(UnsafeURL):
        await _get(f"{origin}/to-localhost", allow_loopback=False)


async def test_endless_redirects_stop_after_five(origin: str) -> None:
    with pytest.raises(UnsafeURL, match="redirects"):
        await _get(f"{origin}/loop")


async def test_connect_time_guard_holds_when_dns_changes_after_the_check(
    origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the name looked public when checked, then resolves to loopback
    async def fooled_check(url: str, allow_loopback: bool = False) -> None:
        return None

    monkeypatch.setattr(safe_http, "check_url", fooled_check)
    port = origin.rsplit(":", 1)[1]
    with pytest.raises(UnsafeURL, match="loopback"):
        await _get(f"http://localhost:{port}/final", allow_loopback=False)


async def test_plain_session_use_is_guarded_too(origin: str) -> None:
    async with open_session(_Settings(False)) as session:  # type: ignore[arg-type]
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(f"{origin}/final")
    assert isinstance(caught.value.os_error, safe_http.RefusedAddress)


async def test_fetch_to_storage_streams_the_body_and_keeps_the_limit(
    origin: str, make_settings: Callable[..., Any]
) -> None:
    settings = make_settings()
    storage = open_storage(settings)
    fetched = await safe_http.fetch_to_storage(
        settings, storage, f"{origin}/to-final", "inputs/x/a.mp4"
    )
    assert fetched.size == 5012 and fetched.content_type == "video/mp4"
    assert await storage.exists("inputs/x/a.mp4")
    with pytest.raises(VideoTooLarge):
        await safe_http.fetch_to_storage(
            settings, storage, f"{origin}/final", "inputs/y/a.mp4", max_bytes=1000
        )
    assert not await storage.exists("inputs/y/a.mp4")


@pytest.mark.parametrize(
    ("errno", "expected"),
    [(socket.EAI_NONAME, UnsafeURL), (socket.EAI_AGAIN, safe_http.LookupFailed)],
)
async def test_missing_names_are_refused_and_dns_outages_are_temporary(
    monkeypatch: pytest.MonkeyPatch, errno: int, expected: type[Exception]
) -> None:
    async def failing_lookup(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(errno, "lookup failed")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", failing_lookup)
    with pytest.raises(expected):
        await check_url("https://videos.example.com/a.mp4")
