"""JSON errors for the whole HTTP surface: ``{"error": {"code": ..., "message": ...}}``.

The middleware translates at the boundary:

    InputError (NotAVideo 422, VideoTooLarge 413, others 400)  -> its own code and message
    UnsafeURL 400 · JobNotFound 404 · IllegalTransition 409
    StoreError / StorageError / QueueError 503 (+ Retry-After)   -> a generic "try again"
    aiohttp HTTP errors (404, 405, 413, ...)                      -> a code named after the status
    anything else                                                -> 500 internal_error, logged once

Messages of temporary and unknown errors are never shown: they may name hosts or paths.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from core.errors import (
    BlankLogoError,
    IllegalTransition,
    InputError,
    JobNotFound,
    NotAVideo,
    QueueError,
    StorageError,
    StoreError,
    UnsafeURL,
    VideoTooLarge,
)

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: codes for plain aiohttp HTTP errors, by status
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}

_TEMPORARY_MESSAGES: dict[type[BlankLogoError], str] = {
    StoreError: "the job database is unavailable right now; please try again",
    StorageError: "file storage is unavailable right now; please try again",
    QueueError: "the job queue is unavailable right now; please try again",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape of this API."""
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON error response."""
    return web.json_response(error_body(code, message), status=status, headers=headers)


def http_error(
    cls: type[web.HTTPException],
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> web.HTTPException:
    """An aiohttp HTTP exception carrying our JSON body (raise it from a handler)."""
    return cls(
        text=json.dumps(error_body(code, message)),
        content_type="application/json",
        headers=headers,
        **kwargs,
    )


def bad_request(
    code: str, message: str, cls: type[web.HTTPException] = web.HTTPBadRequest
) -> web.HTTPException:
    """A 400 (or `cls`) with our JSON body, for a handler to raise."""
    return http_error(cls, code, message)


def too_large(limit: int, what: str = "the request body") -> web.HTTPException:
    """A 413 too_large with our JSON body."""
    return http_error(
        web.HTTPRequestEntityTooLarge,
        "too_large",
        f"{what} is larger than {limit} bytes",
        max_size=limit,
        actual_size=limit + 1,
    )


def status_for(exc: BlankLogoError) -> int:
    """The HTTP status of one of our exceptions."""
    if isinstance(exc, VideoTooLarge):
        return 413
    if isinstance(exc, NotAVideo):
        return 422
    if isinstance(exc, InputError | UnsafeURL):
        return 400
    if isinstance(exc, JobNotFound):
        return 404
    if isinstance(exc, IllegalTransition):
        return 409
    if exc.temporary and isinstance(exc, StoreError | StorageError | QueueError):
        return 503
    return 500


def response_for(exc: BlankLogoError) -> web.Response:
    """Translate one of our exceptions into a JSON error response."""
    status = status_for(exc)
    if status == 503:
        message = next(
            (m for cls, m in _TEMPORARY_MESSAGES.items() if isinstance(exc, cls)),
            "please try again",
        )
        return error_response(status, exc.code, message, {"Retry-After": "5"})
    if status == 500:
        return error_response(500, "internal_error", "something went wrong on our side")
    return error_response(status, exc.code, str(exc) or exc.code.replace("_", " "))


def _from_http_exception(exc: web.HTTPException) -> web.StreamResponse:
    headers = {
        k: v for k, v in exc.headers.items() if k.lower() not in {"content-type", "content-length"}
    }
    code = STATUS_CODES.get(exc.status, "client_error" if exc.status < 500 else "server_error")
    return error_response(exc.status, code, exc.reason, headers)


def _route_name(request: web.Request) -> str:
    # the route pattern, never the concrete path: download paths may carry signed tokens
    info = request.match_info.route.resource
    return info.canonical if info is not None else "?"


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into the JSON error shape; log unknown ones once."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return _from_http_exception(exc)
    except HttpProcessingError as exc:  # a malformed body met while a handler parsed it
        status = exc.code if 400 <= exc.code < 500 else 400
        return error_response(
            status, STATUS_CODES.get(status, "bad_request"), "the request is malformed"
        )
    except BlankLogoError as exc:
        response = response_for(exc)
        if response.status >= 500:
            logger.warning(
                "%s %s failed: %s", request.method, _route_name(request), exc.__class__.__name__
            )
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("unhandled error in %s %s", request.method, _route_name(request))
        return error_response(500, "internal_error", "something went wrong on our side")
