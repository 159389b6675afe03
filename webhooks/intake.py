"""The generic intake API: ``/v1/jobs`` for any system that can send HTTP.

``POST /v1/jobs`` takes either JSON ``{video_url, callback_url?, region?, metadata?}`` (the
worker downloads the URL later; here it is only checked to be a safe public http(s) URL)
or a ``multipart/form-data`` upload (field ``file``; optional fields ``callback_url``,
``region``, ``metadata`` as a JSON object) streamed to storage, never held whole, with
``MAX_UPLOAD_MB`` enforced while it streams. It answers 202 ``{id, status, status_url,
result_url, position}``; a repeated ``Idempotency-Key`` (or ``webhook-id``) returns the
first job with 200. ``GET /v1/jobs/{id}`` tells where a job stands, ``GET
/v1/jobs/{id}/result`` redirects to a signed, expiring download of the cleaned MP4, and
``DELETE /v1/jobs/{id}`` cancels a job that has not ended.

Authentication is described in `webhooks.auth` (API key or Standard Webhooks signature;
closed when neither is configured, except for loopback callers in dev mode). A client
sees and cancels only its own jobs; any other id is "not found".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from core import intake as intake_service
from core.delivery import schedule_delivery
from core.deps import Deps
from core.errors import NotAVideo, VideoTooLarge
from core.jobs import Job, JobState, NewJob, Source, new_job_id
from gpu.regions import parse_region
from webhooks.auth import Client, authenticate
from webhooks.errors import http_error
from webhooks.safe_http import LookupFailed, check_url
from webhooks.server import DEPS_KEY

logger = logging.getLogger(__name__)

JSON_MAX_BYTES = 64 * 1024
FIELD_MAX_BYTES = 16 * 1024
METADATA_MAX_BYTES = 8 * 1024
IDEMPOTENCY_KEY_MAX = 200
SNIFF_BYTES = 512
CHUNK_BYTES = 256 * 1024
#: a replayed webhook-id is answered from Redis for this long (2 × the ±5 min window)
REPLAY_TTL_S = 600
RESULT_LINK_TTL_S = 3600
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}")


# ---------------------------------------------------------------- is it a video?


def looks_like_video(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a video container we can decode."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return True  # MP4 / MOV / 3GP / M4V
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return True  # Matroska / WebM (EBML)
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX"):
        return True
    if head.startswith((b"FLV\x01", b"OggS", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return True  # FLV, Ogg, MPEG program stream, MPEG video
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return True  # ASF / WMV
    # MPEG transport stream: a sync byte every 188 bytes
    return len(head) >= 377 and head[0] == head[188] == head[376] == 0x47


def safe_filename(name: str | None) -> str:
    """A storage-safe version of the uploaded file's name."""
    # some clients (aiohttp among them) percent-encode the name in Content-Disposition
    base = unquote(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _SAFE_NAME.sub("_", base).strip("._")[:100]
    return cleaned or "upload.mp4"


# ---------------------------------------------------------------- small helpers


def _bad(code: str, message: str, cls: type[web.HTTPException] = web.HTTPBadRequest) -> Exception:
    return http_error(cls, code, message)


def _too_large(limit: int, what: str = "the request body") -> Exception:
    return http_error(
        web.HTTPRequestEntityTooLarge,
        "too_large",
        f"{what} is larger than {limit} bytes",
        max_size=limit,
        actual_size=limit + 1,
    )


def _mb(limit_bytes: int) -> str:
    return f"{limit_bytes // (1024 * 1024)} MB"


async def _read_capped(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _ms_between(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def job_links(deps: Deps, job_id: str) -> dict[str, str]:
    """The API's URLs for one job."""
    base = deps.settings.public_base_url.rstrip("/")
    return {
        "status_url": f"{base}/v1/jobs/{job_id}",
        "result_url": f"{base}/v1/jobs/{job_id}/result",
    }


def job_timings(job: Job) -> dict[str, Any]:
    """How long the job waited and worked, plus the engine's own step timings."""
    timings: dict[str, Any] = {
        "queued_ms": _ms_between(job.created_at, job.started_at),
        "processing_ms": job.processing_time_ms,
        "total_ms": _ms_between(job.created_at, job.completed_at),
    }
    engine = (job.report or {}).get("timings")
    if isinstance(engine, dict):
        timings["engine"] = engine
    return timings


def job_view(deps: Deps, job: Job) -> dict[str, Any]:
    """The public JSON of a job (GET /v1/jobs/{id})."""
    return {
        "id": job.id,
        "status": job.status.value,
        "progress": job.progress,
        "current_step": job.current_step,
        "error": job.error_message,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "region": job.options.get("region"),
        "metadata": job.reply_to.get("metadata"),
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "completed_at": _iso(job.completed_at),
        "expires_at": _iso(job.expires_at),
        "timings": job_timings(job),
        **job_links(deps, job.id),
    }


def _accepted_view(deps: Deps, job: Job, position: int) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        **job_links(deps, job.id),
        "position": position,
    }


# ---------------------------------------------------------------- auth wrapper

Handler = Callable[[web.Request, Deps, Client], Awaitable[web.StreamResponse]]


def _authenticated(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        deps = request.app[DEPS_KEY]
        client = authenticate(request, deps.settings)
        return await handler(request, deps, client)

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


async def _own_job(deps: Deps, client: Client, job_id: str) -> Job:
    job = await deps.store.get(job_id) if len(job_id) <= 64 else None
    if job is None or job.source != Source.WEBHOOK or job.requester != client.requester:
        raise _bad("not_found", "no such job", web.HTTPNotFound)
    return job


# ---------------------------------------------------------------- options


async def _check_user_url(deps: Deps, url: str) -> None:
    try:
        await check_url(url, deps.settings.allow_loopback_urls)
    except LookupFailed:
        raise http_error(
            web.HTTPServiceUnavailable,
            "dns_unavailable",
            "could not look up the URL's host right now; please try again",
            {"Retry-After": "5"},
        ) from None


def _optional_str(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad("invalid_field", f"{name} must be a string")
    return value


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("invalid_field", "metadata must be a JSON object")
    if len(json.dumps(value)) > METADATA_MAX_BYTES:
        raise _bad("invalid_field", f"metadata must be at most {METADATA_MAX_BYTES} bytes of JSON")
    return value


async def _options(deps: Deps, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(reply_to, options) from the request's optional fields, validated."""
    callback_url = _optional_str(payload, "callback_url")
    if callback_url is not None:
        await _check_user_url(deps, callback_url)
    region = parse_region(_optional_str(payload, "region")) or "auto"
    reply_to = {"callback_url": callback_url, "metadata": _metadata(payload.get("metadata"))}
    return reply_to, {"region": region}


def _idempotency_key(request: web.Request, client: Client) -> str | None:
    header = request.headers.get("Idempotency-Key")
    if header is not None and not _IDEMPOTENCY_KEY.fullmatch(header):
        raise _bad(
            "invalid_header",
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters",
        )
    key = header or client.msg_id
    # namespaced by client: two clients using the same key never see each other's job
    return None if key is None else f"webhook:{client.requester}:{key}"


# ---------------------------------------------------------------- replays of signed requests


def _replay_key(deps: Deps, msg_id: str) -> str:
    return f"{deps.settings.redis_prefix}:webhooks:seen:{msg_id}"


async def _replayed_job(deps: Deps, client: Client) -> Job | None:
    """The job a signed message with this webhook-id already created (Redis, best effort)."""
    if client.msg_id is None or deps.redis is None:
        return None
    try:
        raw = await deps.redis.get(_replay_key(deps, client.msg_id))
    except Exception as exc:  # noqa: BLE001 - Redis down: the store's idempotency still holds
        logger.warning("replay check skipped: %s", exc.__class__.__name__)
        return None
    if raw is None:
        return None
    job = await deps.store.get(raw.decode() if isinstance(raw, bytes) else str(raw))
    return job if job is not None and job.requester == client.requester else None


async def _remember_message(deps: Deps, client: Client, job: Job) -> None:
    if client.msg_id is None or deps.redis is None:
        return
    try:
        await deps.redis.set(_replay_key(deps, client.msg_id), job.id, ex=REPLAY_TTL_S, nx=True)
    except Exception as exc:  # noqa: BLE001 - best effort, see _replayed_job
        logger.warning("could not remember webhook-id: %s", exc.__class__.__name__)


async def _accept(deps: Deps, client: Client, new: NewJob) -> web.Response:
    accepted = await intake_service.accept(deps, new)
    await _remember_message(deps, client, accepted.job)
    return _accepted_response(deps, accepted.job, accepted.position, accepted.created)


def _accepted_response(deps: Deps, job: Job, position: int, created: bool) -> web.Response:
    body = _accepted_view(deps, job, position)
    status = 202 if created else 200
    return web.json_response(body, status=status, headers={"Location": body["status_url"]})


async def _replay_response(deps: Deps, job: Job) -> web.Response:
    position = await intake_service.queue_position(deps, job)
    return _accepted_response(deps, job, position, created=False)


# ---------------------------------------------------------------- POST /v1/jobs (JSON)


async def _create_from_json(
    request: web.Request, deps: Deps, client: Client, idempotency_key: str | None
) -> web.Response:
    body = await _read_capped(request, JSON_MAX_BYTES)
    client.verify_body(body)
    replayed = await _replayed_job(deps, client)
    if replayed is not None:
        return await _replay_response(deps, replayed)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _bad("malformed_json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _bad("invalid_body", "the body must be a JSON object")
    video_url = payload.get("video_url")
    if video_url is None or video_url == "":
        raise _bad("missing_field", "video_url is required (or upload the file as multipart)")
    if not isinstance(video_url, str):
        raise _bad("invalid_field", "video_url must be a string")
    await _check_user_url(deps, video_url)
    reply_to, options = await _options(deps, payload)
    new = NewJob(
        source=Source.WEBHOOK,
        requester=client.requester,
        reply_to=reply_to,
        options={**options, "video_url": video_url},
        idempotency_key=idempotency_key,
        max_attempts=deps.settings.max_attempts,
    )
    return await _accept(deps, client, new)


# ---------------------------------------------------------------- POST /v1/jobs (multipart)


class _HashingStream:
    """The request body as the multipart parser reads it, fed to a signature check on the way.

    Data the parser pushes back (`unread_data`) is kept here so it is hashed only once.
    """

    def __init__(self, inner: Any, client: Client) -> None:
        self._inner = inner
        self._client = client
        self._back = b""

    def _seen(self, data: bytes) -> bytes:
        if self._client.pending is not None:
            self._client.pending.update(data)
        return data

    async def read(self, n: int = -1) -> bytes:
        if self._back:
            if n < 0 or n >= len(self._back):
                data, self._back = self._back, b""
            else:
                data, self._back = self._back[:n], self._back[n:]
            return data
        return self._seen(await self._inner.read(n))

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        head = b""
        if self._back:
            index = self._back.find(b"\n")
            if index >= 0:
                line, self._back = self._back[: index + 1], self._back[index + 1 :]
                return line
            head, self._back = self._back, b""
        kwargs = {} if max_line_length is None else {"max_line_length": max_line_length}
        return head + self._seen(await self._inner.readline(**kwargs))

    def at_eof(self) -> bool:
        return not self._back and self._inner.at_eof()

    def unread_data(self, data: bytes) -> None:
        self._back = data + self._back

    async def drain(self, limit: int) -> None:
        """Read (and hash) whatever follows the last part, up to `limit` bytes."""
        total = 0
        while chunk := await self.read(CHUNK_BYTES):
            total += len(chunk)
            if total > limit:
                raise _too_large(limit, "the multipart epilogue")


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await _read_chunk(part, 8192):
        data += chunk
        if len(data) > FIELD_MAX_BYTES:
            raise _too_large(FIELD_MAX_BYTES, f"the field {part.name!r}")
    try:
        return data.decode(part.get_charset("utf-8"))
    except (LookupError, UnicodeDecodeError):
        raise _bad("invalid_field", f"the field {part.name!r} is not valid text") from None


async def _store_upload(deps: Deps, part: BodyPartReader, key: str) -> int:
    """Stream the file part into storage; NotAVideo / VideoTooLarge leave nothing stored."""
    limit = deps.settings.max_upload_bytes
    head = b""
    while len(head) < SNIFF_BYTES and (chunk := await _read_chunk(part, SNIFF_BYTES)):
        head += chunk
    if not head:
        raise NotAVideo("the uploaded file is empty")
    if not looks_like_video(head):
        raise NotAVideo("the uploaded file is not a video (MP4, MOV, WebM, MKV, AVI...)")
    if len(head) > limit:
        raise VideoTooLarge(f"the video is larger than the {_mb(limit)} limit")

    async def chunks() -> AsyncIterator[bytes]:
        size = len(head)
        yield head
        while chunk := await _read_chunk(part, CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise VideoTooLarge(f"the video is larger than the {_mb(limit)} limit")
            yield chunk

    content_type = part.headers.get("Content-Type", "application/octet-stream")
    try:
        return await deps.storage.put_stream(
            key, chunks(), content_type=content_type, max_bytes=limit
        )
    except BaseException:
        await _discard(deps, key)
        raise


async def _discard(deps: Deps, key: str) -> None:
    try:
        await deps.storage.delete(key)
    except Exception as exc:  # noqa: BLE001 - the expiry sweep removes it later
        logger.warning("could not remove %s after a failed upload: %s", key, exc.__class__.__name__)


async def _next_part(reader: MultipartReader) -> Any:
    try:
        return await reader.next()
    except (ValueError, HttpProcessingError):  # aiohttp's words for a broken multipart body
        raise _bad("invalid_body", "the multipart body is malformed") from None


async def _read_chunk(part: BodyPartReader, size: int) -> bytes:
    try:
        return await part.read_chunk(size)
    except (ValueError, HttpProcessingError):
        raise _bad("invalid_body", "the multipart body is malformed") from None


async def _create_from_upload(
    request: web.Request, deps: Deps, client: Client, idempotency_key: str | None
) -> web.Response:
    limit = deps.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + 1024 * 1024:
        raise VideoTooLarge(f"the video is larger than the {_mb(limit)} limit")
    stream = _HashingStream(request.content, client)
    try:
        reader = MultipartReader(request.headers, stream)  # type: ignore[arg-type]
    except (ValueError, AssertionError, KeyError):  # no or bad boundary parameter
        raise _bad("invalid_body", "multipart/form-data needs a valid boundary") from None
    job_id = new_job_id()
    fields: dict[str, Any] = {}
    key: str | None = None
    filename = size = None
    try:
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise _bad("invalid_body", "nested multipart bodies are not accepted")
            if part.name == "file":
                if key is not None:
                    raise _bad("invalid_body", "send one file per request")
                filename = safe_filename(part.filename)
                key = f"inputs/{job_id}/{filename}"
                size = await _store_upload(deps, part, key)
            elif part.name in ("callback_url", "region", "metadata"):
                fields[part.name] = await _read_field(part)
            else:
                await _read_field(part)  # unknown fields are read and ignored
        await stream.drain(FIELD_MAX_BYTES)
        client.check_signature()
        if key is None:
            raise _bad("missing_field", "the multipart body needs a 'file' field with the video")
        replayed = await _replayed_job(deps, client)
        if replayed is not None:
            await _discard(deps, key)
            return await _replay_response(deps, replayed)
        if "metadata" in fields:
            try:
                fields["metadata"] = json.loads(fields["metadata"])
            except ValueError:
                raise _bad("invalid_field", "metadata must be a JSON object") from None
        reply_to, options = await _options(deps, fields)
        new = NewJob(
            id=job_id,
            source=Source.WEBHOOK,
            requester=client.requester,
            reply_to=reply_to,
            options=options,
            input_key=key,
            input_filename=filename,
            input_size_bytes=size,
            idempotency_key=idempotency_key,
            max_attempts=deps.settings.max_attempts,
        )
        accepted = await intake_service.accept(deps, new)
    except BaseException:
        if key is not None:
            await _discard(deps, key)
        raise
    if not accepted.created:
        await _discard(deps, key)  # the first job has its own copy
    await _remember_message(deps, client, accepted.job)
    return _accepted_response(deps, accepted.job, accepted.position, accepted.created)


# ---------------------------------------------------------------- routes


@_authenticated
async def create_job(request: web.Request, deps: Deps, client: Client) -> web.StreamResponse:
    """POST /v1/jobs: accept a video by URL (JSON) or upload (multipart)."""
    idempotency_key = _idempotency_key(request, client)
    if request.content_type == "application/json":
        return await _create_from_json(request, deps, client, idempotency_key)
    if request.content_type == "multipart/form-data":
        return await _create_from_upload(request, deps, client, idempotency_key)
    raise _bad(
        "unsupported_media_type",
        "send application/json with a video_url, or multipart/form-data with a file",
        web.HTTPUnsupportedMediaType,
    )


async def _verify_small_body(request: web.Request, client: Client) -> None:
    if client.pending is not None:
        client.verify_body(await _read_capped(request, JSON_MAX_BYTES))


@_authenticated
async def get_job(request: web.Request, deps: Deps, client: Client) -> web.StreamResponse:
    """GET /v1/jobs/{id}: where the job stands."""
    await _verify_small_body(request, client)
    job = await _own_job(deps, client, request.match_info["id"])
    return web.json_response(job_view(deps, job))


@_authenticated
async def get_result(request: web.Request, deps: Deps, client: Client) -> web.StreamResponse:
    """GET /v1/jobs/{id}/result: redirect to a signed, expiring download of the cleaned MP4."""
    await _verify_small_body(request, client)
    job = await _own_job(deps, client, request.match_info["id"])
    if job.status in (JobState.QUEUED, JobState.PROCESSING):
        raise _bad(
            "not_finished", f"the job is {job.status.value}; try again later", web.HTTPConflict
        )
    if job.status == JobState.FAILED:
        raise _bad("job_failed", job.error_message or "the job failed", web.HTTPConflict)
    if job.status == JobState.CANCELLED:
        raise _bad("job_cancelled", "the job was cancelled", web.HTTPConflict)
    if job.output_key is None:
        raise _bad("result_expired", "the result has expired and was deleted", web.HTTPGone)
    url = await deps.storage.signed_url(job.output_key, expires_in=RESULT_LINK_TTL_S)
    raise web.HTTPFound(url, headers={"Cache-Control": "no-store"})


@_authenticated
async def cancel_job(request: web.Request, deps: Deps, client: Client) -> web.StreamResponse:
    """DELETE /v1/jobs/{id}: cancel a job that has not ended."""
    await _verify_small_body(request, client)
    job = await _own_job(deps, client, request.match_info["id"])
    moved = None
    if not job.is_terminal:
        moved = await deps.store.move(
            job.id,
            JobState.CANCELLED,
            expected=[JobState.QUEUED, JobState.PROCESSING],
            error_message="cancelled by the client",
        )
    if moved is None:
        current = await deps.store.get(job.id) or job
        raise _bad(
            "already_ended", f"the job has already ended ({current.status.value})", web.HTTPConflict
        )
    logger.info("job %s cancelled by %s", moved.id, client.requester)
    await schedule_delivery(deps, moved.id)  # the callback hears job.cancelled
    return web.json_response(job_view(deps, moved))


def setup(app: web.Application, deps: Deps) -> None:
    """Mount /v1/jobs on the app."""
    app.router.add_post("/v1/jobs", create_job)
    app.router.add_get("/v1/jobs/{id}", get_job, allow_head=False)
    app.router.add_get("/v1/jobs/{id}/result", get_result, allow_head=False)
    app.router.add_delete("/v1/jobs/{id}", cancel_job)
    if deps.settings.webhook_secret is None and not deps.settings.api_keys:
        if deps.settings.allow_loopback_urls:
            logger.warning(
                "intake API has no API_KEYS or WEBHOOK_SECRET: open to loopback callers only (dev mode)"
            )
        else:
            logger.warning(
                "intake API has no API_KEYS or WEBHOOK_SECRET: every /v1 request gets 401"
            )
