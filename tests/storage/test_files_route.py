"""GET /files/{key} through a real aiohttp app: valid, tampered, expired and missing links."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from core.settings import Settings
from core.storage import open_storage
from core.storage.local import LocalStorage
from core.storage.signing import sign
from webhooks import files

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def setup_app(
    make_settings: Callable[..., Settings], aiohttp_client: Callable[..., object]
) -> tuple[TestClient, LocalStorage]:
    settings = make_settings()
    storage = open_storage(settings)
    assert isinstance(storage, LocalStorage)
    await storage.put_stream("outputs/job1.mp4", chunks_of(VIDEO))
    app = web.Application()
    files.setup(app, SimpleNamespace(settings=settings, storage=storage))  # type: ignore[arg-type]
    client = await aiohttp_client(app)  # type: ignore[operator]
    return client, storage


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_valid_link_streams_the_video(setup_app) -> None:
    client, storage = setup_app
    url = await storage.signed_url("outputs/job1.mp4", expires_in=60)
    resp = await client.get(path_and_query(url))
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO
    head = await client.head(path_and_query(url))
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(VIDEO)


async def test_tampered_signature_is_forbidden(setup_app) -> None:
    client, storage = setup_app
    url = path_and_query(await storage.signed_url("outputs/job1.mp4", expires_in=60))
    flipped = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert (await client.get(flipped)).status == 403
    assert (await client.get(url.split("&signature=")[0])).status == 403
    assert (await client.get("/files/outputs/job1.mp4")).status == 403
    other_key = url.replace("job1", "job2")
    assert (await client.get(other_key)).status == 403
    resp = await client.get(flipped)
    assert (await resp.json())["error"]["code"] == "forbidden"


async def test_expired_link_is_forbidden(setup_app) -> None:
    client, storage = setup_app
    expires = int(time.time()) - 5
    sig = sign(storage._signing_key, "outputs/job1.mp4", expires)
    resp = await client.get(f"/files/outputs/job1.mp4?expires={expires}&signature={sig}")
    assert resp.status == 403
    later = expires + 3600  # a signature for another time does not carry over
    assert (
        await client.get(f"/files/outputs/job1.mp4?expires={later}&signature={sig}")
    ).status == 403


async def test_valid_link_to_a_missing_file_is_not_found(setup_app) -> None:
    client, storage = setup_app
    url = await storage.signed_url("outputs/gone.mp4", expires_in=60)
    assert (await client.get(path_and_query(url))).status == 404
    expires = int(time.time()) + 60
    sneaky = "outputs/../url_signing.key"
    sig = sign(storage._signing_key, sneaky, expires)
    resp = await client.get(f"/files/{sneaky}?expires={expires}&signature={sig}")
    assert resp.status in {403, 404}


async def test_route_is_absent_with_supabase_storage(make_settings, aiohttp_client) -> None:
    settings = make_settings(storage_backend="supabase")
    app = web.Application()
    files.setup(app, SimpleNamespace(settings=settings, storage=None))  # type: ignore[arg-type]
    client = await aiohttp_client(app)
    assert (await client.get("/files/outputs/job1.mp4?expires=1&signature=x")).status == 404


async def test_result_link_works_through_the_service_app(make_settings, aiohttp_client) -> None:
    from core.deps import Deps
    from core.store import open_store
    from webhooks.appkeys import DEPS_KEY
    from webhooks.server import DEPS_KEY as SERVER_DEPS_KEY
    from webhooks.server import build_app

    settings = make_settings()
    store = await open_store(settings)
    storage = open_storage(settings)
    try:
        deps = Deps(settings, store, storage, queue=None, engine=None, redis=None)  # type: ignore[arg-type]
        app = build_app(deps)
        assert SERVER_DEPS_KEY is DEPS_KEY and app[DEPS_KEY] is deps
        await storage.put_stream("outputs/job9.mp4", chunks_of(VIDEO))
        client = await aiohttp_client(app)
        url = await storage.signed_url("outputs/job9.mp4", expires_in=60)
        resp = await client.get(path_and_query(url))
        assert resp.status == 200 and await resp.read() == VIDEO
        tampered = path_and_query(url).replace("job9", "job8")
        resp = await client.get(tampered)
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "forbidden"
    finally:
        await store.close()
