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
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core import intake as intake_service
from core.delivery import schedule_delivery
from core.deps import Deps
from core.jobs import Job, JobState, NewJob, Source, new_job_id
from gpu.regions import parse_region
from webhooks.auth import Client, authenticate
from webhooks.callbacks import iso, marks_removed, ms_between
from webhooks.errors import bad_request, http_error, too_large
from webhooks.safe_http import LookupFailed, check_url
from webhooks.server import DEPS_KEY
from webhooks.uploads import discard, receive_upload

logger = logging.getLogger(__name__)

JSON_MAX_BYTES = 64 * 1024
METADATA_MAX_BYTES = 8 * 1024
IDEMPOTENCY_KEY_MAX = 200
CHUNK_BYTES = 256 * 1024
#: a replayed webhook-id is answered from Redis for this long (2 × the ±5 min window)
REPLAY_TTL_S = 600
RESULT_LINK_TTL_S = 3600
_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}")


# ---------------------------------------------------------------- small helpers


async def _read_capped(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


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
        "queued_ms": ms_between(job.created_at, job.started_at),
        "processing_ms": job.processing_time_ms,
        "total_ms": ms_between(job.created_at, job.completed_at),
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
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "expires_at": iso(job.expires_at),
        "marks_removed": marks_removed(job),
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
        raise bad_request("not_found", "no such job", web.HTTPNotFound)
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
        raise bad_request("invalid_field", f"{name} must be a string")
    return value


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("invalid_field", "metadata must be a JSON object")
    if len(json.dumps(value)) > METADATA_MAX_BYTES:
        raise bad_request(
            "invalid_field", f"metadata must be at most {METADATA_MAX_BYTES} bytes of JSON"
        )
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
        raise bad_request(
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
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting bombs
        raise bad_request("malformed_json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise bad_request("invalid_body", "the body must be a JSON object")
    video_url = payload.get("video_url")
    if video_url is None or video_url == "":
        raise bad_request(
            "missing_field", "video_url is required (or upload the file as multipart)"
        )
    if not isinstance(video_url, str):
        raise bad_request("invalid_field", "video_url must be a string")
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


async def _create_from_upload(
    request: web.Request, deps: Deps, client: Client, idempotency_key: str | None
) -> web.Response:
    job_id = new_job_id()
    upload = await receive_upload(request, deps, client, job_id)
    try:
        replayed = await _replayed_job(deps, client)
        if replayed is not None:
            await discard(deps, upload.key)
            return await _replay_response(deps, replayed)
        fields: dict[str, Any] = dict(upload.fields)
        if "metadata" in fields:
            try:
                fields["metadata"] = json.loads(fields["metadata"])
            except (ValueError, RecursionError):
                raise bad_request("invalid_field", "metadata must be a JSON object") from None
        reply_to, options = await _options(deps, fields)
        new = NewJob(
            id=job_id,
            source=Source.WEBHOOK,
            requester=client.requester,
            reply_to=reply_to,
            options=options,
            input_key=upload.key,
            input_filename=upload.filename,
            input_size_bytes=upload.size,
            idempotency_key=idempotency_key,
            max_attempts=deps.settings.max_attempts,
        )
        accepted = await intake_service.accept(deps, new)
    except BaseException:
        await discard(deps, upload.key)
        raise
    if not accepted.created:
        await discard(deps, upload.key)  # the first job has its own copy
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
    raise bad_request(
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
        raise bad_request(
            "not_finished", f"the job is {job.status.value}; try again later", web.HTTPConflict
        )
    if job.status == JobState.FAILED:
        raise bad_request("job_failed", job.error_message or "the job failed", web.HTTPConflict)
    if job.status == JobState.CANCELLED:
        raise bad_request("job_cancelled", "the job was cancelled", web.HTTPConflict)
    if job.output_key is None:
        raise bad_request("result_expired", "the result has expired and was deleted", web.HTTPGone)
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
        raise bad_request(
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
