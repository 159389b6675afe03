"""A loopback Supabase Storage server speaking the REST API the `supabase` client uses.

It keeps objects in memory and records every request (method, path, headers, body size)
so tests can assert on what the real client sent.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body_size: int = 0
    json: Any = None


@dataclass
class FakeStorage:
    """State of the fake: objects by (bucket, key), TUS uploads in progress, requests seen."""

    objects: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    #: make the next N TUS PATCH requests fail with 503 after storing nothing
    fail_patches: int = 0
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)

    def seen(self, method: str, contains: str = "") -> list[Received]:
        return [r for r in self.requests if r.method == method and contains in r.path]


def _not_found() -> web.Response:
    return web.json_response(
        {"statusCode": "404", "error": "not_found", "message": "Object not found"}, status=404
    )


STATE = web.AppKey("fake_storage_state", FakeStorage)


def _state(request: web.Request) -> FakeStorage:
    return request.app[STATE]


async def _record(request: web.Request, body_size: int = 0, payload: Any = None) -> None:
    _state(request).requests.append(
        Received(
            request.method,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            dict(request.query),
            body_size,
            payload,
        )
    )


async def _upload(request: web.Request) -> web.Response:
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    reader = await request.multipart()
    data, content_type = b"", ""
    async for part in reader:
        if part.name == "file":
            data = await part.read()
            content_type = part.headers.get("Content-Type", "")
    await _record(request, len(data), {"content_type": content_type})
    if (bucket, key) in _state(request).objects and request.headers.get("x-upsert") != "true":
        return web.json_response(
            {"statusCode": "409", "error": "Duplicate", "message": "exists"}, status=409
        )
    _state(request).objects[(bucket, key)] = (data, content_type)
    return web.json_response({"Key": f"{bucket}/{key}", "Id": uuid.uuid4().hex})


async def _download(request: web.Request) -> web.StreamResponse:
    await _record(request)
    found = _state(request).objects.get((request.match_info["bucket"], request.match_info["key"]))
    if found is None:
        return _not_found()
    return web.Response(body=found[0], content_type=found[1] or "application/octet-stream")


async def _sign(request: web.Request) -> web.Response:
    payload = await request.json()
    await _record(request, payload=payload)
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    if (bucket, key) not in _state(request).objects:
        return _not_found()
    token = uuid.uuid4().hex
    _state(request).tokens[token] = (bucket, key)
    return web.json_response({"signedURL": f"/object/sign/{bucket}/{key}?token={token}"})


async def _signed_get(request: web.Request) -> web.StreamResponse:
    await _record(request)
    target = _state(request).tokens.get(request.query.get("token", ""))
    if target != (request.match_info["bucket"], request.match_info["key"]):
        return web.json_response({"statusCode": "400", "error": "InvalidJWT"}, status=400)
    data, content_type = _state(request).objects[target]
    return web.Response(body=data, content_type=content_type or "application/octet-stream")


async def _remove(request: web.Request) -> web.Response:
    payload = await request.json()
    await _record(request, payload=payload)
    bucket = request.match_info["bucket"]
    removed = []
    for key in payload.get("prefixes", []):
        if _state(request).objects.pop((bucket, key), None) is not None:
            removed.append({"name": key, "bucket_id": bucket})
    return web.json_response(removed)


async def _info(request: web.Request) -> web.Response:
    await _record(request)
    found = _state(request).objects.get((request.match_info["bucket"], request.match_info["key"]))
    if found is None:
        return _not_found()
    return web.json_response({"name": request.match_info["key"], "size": len(found[0])})


async def _listing(request: web.Request) -> web.Response:
    await _record(request, payload=await request.json())
    return web.json_response([])


async def _tus_create(request: web.Request) -> web.Response:
    await _record(request)
    metadata = {}
    for item in request.headers.get("Upload-Metadata", "").split(","):
        name, _, value = item.strip().partition(" ")
        metadata[name] = base64.b64decode(value).decode()
    upload_id = uuid.uuid4().hex
    _state(request).uploads[upload_id] = {
        "length": int(request.headers["Upload-Length"]),
        "metadata": metadata,
        "data": bytearray(),
        "upsert": request.headers.get("x-upsert"),
    }
    return web.Response(
        status=201,
        headers={"Location": f"{request.url.origin()}/storage/v1/upload/resumable/{upload_id}"},
    )


async def _tus_patch(request: web.Request) -> web.Response:
    body = await request.read()
    await _record(request, len(body))
    upload = _state(request).uploads.get(request.match_info["upload_id"])
    if upload is None:
        return web.Response(status=404)
    if _state(request).fail_patches > 0:
        _state(request).fail_patches -= 1
        return web.Response(status=503, text="try again")
    if int(request.headers["Upload-Offset"]) != len(upload["data"]):
        return web.Response(status=409, text="offset mismatch")
    upload["data"].extend(body)
    if len(upload["data"]) == upload["length"]:
        meta = upload["metadata"]
        _state(request).objects[(meta["bucketName"], meta["objectName"])] = (
            bytes(upload["data"]),
            meta.get("contentType", ""),
        )
    return web.Response(status=204, headers={"Upload-Offset": str(len(upload["data"]))})


async def _tus_head(request: web.Request) -> web.Response:
    await _record(request)
    upload = _state(request).uploads.get(request.match_info["upload_id"])
    if upload is None:
        return web.Response(status=404)
    return web.Response(
        status=200,
        headers={
            "Upload-Offset": str(len(upload["data"])),
            "Upload-Length": str(upload["length"]),
        },
    )


def build_app(state: FakeStorage) -> web.Application:
    """The aiohttp application; mount it on a loopback port with aiohttp's test server."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    root = "/storage/v1"
    app.router.add_post(f"{root}/upload/resumable", _tus_create)
    app.router.add_patch(f"{root}/upload/resumable/{{upload_id}}", _tus_patch)
    app.router.add_head(f"{root}/upload/resumable/{{upload_id}}", _tus_head)
    app.router.add_post(f"{root}/object/sign/{{bucket}}/{{key:.+}}", _sign)
    app.router.add_get(f"{root}/object/sign/{{bucket}}/{{key:.+}}", _signed_get)
    app.router.add_get(f"{root}/object/info/{{bucket}}/{{key:.+}}", _info)
    app.router.add_post(f"{root}/object/list/{{bucket}}", _listing)
    app.router.add_post(f"{root}/object/{{bucket}}/{{key:.+}}", _upload)
    app.router.add_get(f"{root}/object/{{bucket}}/{{key:.+}}", _download)
    app.router.add_delete(f"{root}/object/{{bucket}}", _remove)
    return app
