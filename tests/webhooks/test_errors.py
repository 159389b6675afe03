"""The JSON error middleware on a small app of its own."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from core.errors import (
    BadRegion,
    IllegalTransition,
    JobNotFound,
    QueueError,
    StorageError,
    StoreError,
    UnsafeURL,
)
from webhooks.errors import json_errors

SECRET = "postgresql://admin:hunter2@db.internal/blanklogo"

RAISED: dict[str, BaseException] = {
    "unknown": RuntimeError(f"cannot connect to {SECRET}"),
    "not-found": JobNotFound("no job abc"),
    "illegal": IllegalTransition("a completed job cannot become queued"),
    "queue": QueueError(f"Redis at {SECRET} refused"),
    "store": StoreError(f"{SECRET} timed out"),
    "storage": StorageError("disk full at /srv/storage"),
    "region": BadRegion("region must be 'auto' or a box"),
    "unsafe": UnsafeURL("the URL points to a loopback address"),
    "malformed": BadHttpMessage("bad header"),
}


@pytest.fixture
async def client(aiohttp_client: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        raise RAISED[request.match_info["what"]]

    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/raise/{what}", handler)
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    ("what", "status", "code"),
    [
        ("unknown", 500, "internal_error"),
        ("not-found", 404, "not_found"),
        ("illegal", 409, "illegal_transition"),
        ("queue", 503, "queue_unavailable"),
        ("store", 503, "database_unavailable"),
        ("storage", 503, "storage_unavailable"),
        ("region", 400, "bad_region"),
        ("unsafe", 400, "unsafe_url"),
        ("malformed", 400, "bad_request"),
    ],
)
async def test_errors_become_json_with_a_stable_code_and_no_secrets(
    client: Any, what: str, status: int, code: str
) -> None:
    response = await client.get(f"/raise/{what}")
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code and error["message"]
    assert "hunter2" not in error["message"] and "db.internal" not in error["message"]
    if status == 503:
        assert response.headers["Retry-After"]


async def test_user_errors_keep_their_message(client: Any) -> None:
    response = await client.get("/raise/region")
    assert (await response.json())["error"]["message"] == "region must be 'auto' or a box"


async def test_unknown_error_is_logged_once_with_the_route_pattern(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="webhooks.errors"):
        await client.get("/raise/unknown")
    (record,) = [r for r in caplog.records if r.name == "webhooks.errors"]
    assert "/raise/{what}" in record.getMessage()


async def test_plain_aiohttp_errors_are_json_too(client: Any) -> None:
    response = await client.get("/nowhere")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
