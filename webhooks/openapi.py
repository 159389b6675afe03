"""``GET /openapi.json``: the intake API's OpenAPI 3.1 document (accurate enough to fuzz from)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.deps import Deps
from gpu.regions import CORNERS
from webhooks.server import DEPS_KEY

VERSION = "1.0.0"

#: stable error codes of the intake API (the `code` in every error body)
ERROR_CODES = [
    "bad_request",
    "invalid_body",
    "invalid_field",
    "invalid_header",
    "malformed_json",
    "missing_field",
    "bad_input",
    "bad_region",
    "unsafe_url",
    "unauthorized",
    "not_found",
    "method_not_allowed",
    "not_finished",
    "job_failed",
    "job_cancelled",
    "already_ended",
    "illegal_transition",
    "result_expired",
    "too_large",
    "unsupported_media_type",
    "not_a_video",
    "headers_too_large",
    "internal_error",
    "database_unavailable",
    "storage_unavailable",
    "queue_unavailable",
    "dns_unavailable",
]

_REGION = {
    "type": "string",
    "maxLength": 64,
    "description": (
        "Where the mark is: 'auto' (default, detected from the whole clip), a box "
        "'x,y,w,h' in pixels, or a corner: " + ", ".join(CORNERS) + "."
    ),
    "examples": ["auto", "1700,950,200,100", "bottom-right"],
}
_URL = {"type": "string", "format": "uri", "maxLength": 2048}
_METADATA = {
    "type": "object",
    "description": "Your own data, returned as is in the job and in the callback (at most 8 KB).",
    "additionalProperties": True,
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(ref: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


_COMMON_ERRORS = {
    "400": _error("Bad request (see the error code)"),
    "401": _error("Missing or bad credentials (nothing was stored)"),
    "413": _error("Request body too large"),
    "500": _error("Unexpected server error"),
    "503": _error("A backing service is unavailable; try again"),
}

_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The job id returned by POST /v1/jobs.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}

_LOCATION = {"Location": {"description": "The job's status URL", "schema": {"type": "string"}}}

#: what the engine removed, once the job has completed
_MARKS: dict[str, object] = {
    "type": ["array", "null"],
    "description": (
        "The marks removed, once the job has completed ([] when none was found; null "
        "before). Boxes are x, y, w, h in pixels of the picture as it is shown."
    ),
    "items": {
        "type": "object",
        "properties": {
            "box": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4},
            "opacity": {"type": "number"},
            "start_s": {"type": "number"},
            "end_s": {"type": "number"},
            "method": {"type": "string"},
        },
    },
}


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable machine-readable code; one of: "
                        + ", ".join(ERROR_CODES)
                        + " (new codes may be added).",
                        "examples": ERROR_CODES,
                    },
                    "message": {"type": "string", "description": "For people; may change."},
                },
            }
        },
    },
    "JobRequest": {
        "type": "object",
        "required": ["video_url"],
        "examples": [
            {
                "video_url": "https://93.184.216.34/clips/launch.mp4",
                "callback_url": "https://93.184.216.34/hooks/blanklogo",
                "region": "bottom-right",
                "metadata": {"order": "A-1042"},
            }
        ],
        "properties": {
            "video_url": {
                **_URL,
                "description": "Public http(s) URL of the video; the worker downloads it. "
                "Private, loopback and link-local targets are refused.",
            },
            "callback_url": {
                **_URL,
                "type": ["string", "null"],
                "description": "Receives a signed POST (Standard Webhooks) when the job ends.",
            },
            "region": {**_REGION, "type": ["string", "null"]},
            "metadata": {**_METADATA, "type": ["object", "null"]},
        },
    },
    "JobUpload": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "contentMediaType": "application/octet-stream",
                "description": "The video (MP4, MOV, WebM, MKV, AVI, ...), at most MAX_UPLOAD_MB; "
                "its first bytes must be those of a video (else 422 not_a_video).",
            },
            "callback_url": _URL,
            "region": _REGION,
            "metadata": {"type": "string", "description": "A JSON object, as text."},
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["id", "status", "status_url", "result_url", "position"],
        "properties": {
            "id": {"type": "string"},
            "status": {"$ref": "#/components/schemas/JobStatus"},
            "status_url": {"type": "string"},
            "result_url": {"type": "string"},
            "position": {
                "type": "integer",
                "minimum": 0,
                "description": "Place in the queue (1 = next); 0 when not waiting.",
            },
        },
    },
    "JobStatus": {
        "type": "string",
        "enum": ["queued", "processing", "completed", "failed", "cancelled"],
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "progress", "attempts", "status_url", "result_url"],
        "properties": {
            "id": {"type": "string"},
            "status": {"$ref": "#/components/schemas/JobStatus"},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "current_step": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"], "description": "Why the job failed, in words."},
            "attempts": {"type": "integer", "minimum": 0},
            "max_attempts": {"type": "integer", "minimum": 0},
            "region": {"type": ["string", "null"]},
            "metadata": {"type": ["object", "null"]},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "completed_at": {"type": ["string", "null"], "format": "date-time"},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "marks_removed": _MARKS,
            "timings": {
                "type": "object",
                "properties": {
                    "queued_ms": {"type": ["integer", "null"]},
                    "processing_ms": {"type": ["integer", "null"]},
                    "total_ms": {"type": ["integer", "null"]},
                    "engine": {"type": "object"},
                },
            },
            "status_url": {"type": "string"},
            "result_url": {"type": "string"},
        },
    },
    "CallbackEvent": {
        "type": "object",
        "description": "Body of the signed POST sent to callback_url when a job ends.",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"type": "string", "enum": ["job.completed", "job.failed", "job.cancelled"]},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "status": {"$ref": "#/components/schemas/JobStatus"},
                    "result_url": {"type": ["string", "null"]},
                    "status_url": {"type": "string"},
                    "error": {"type": ["string", "null"]},
                    "metadata": {"type": ["object", "null"]},
                    "marks_removed": _MARKS,
                    "timings": {"type": "object"},
                },
            },
        },
    },
}

_SIGNED_HEADERS_NOTE = (
    "Standard Webhooks (https://www.standardwebhooks.com): send `webhook-id`, "
    "`webhook-timestamp` (Unix seconds, within ±5 min) and `webhook-signature: v1,<base64 "
    'HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the WEBHOOK_SECRET (`whsec_<base64>`). '
    "A replayed `webhook-id` returns the job it first created."
)

_LINKS = {
    name: {"operationId": op, "parameters": {"id": "$response.body#/id"}}
    for name, op in (
        ("GetJob", "getJob"),
        ("GetJobResult", "getJobResult"),
        ("CancelJob", "cancelJob"),
    )
}

_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeat a request with the same key to get the first job back, never a second.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[\\x21-\\x7e]+$"},
}


def document(public_base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the intake API."""
    created = {
        "202": {**_json("Accepted", "The job was accepted and queued", _LOCATION), "links": _LINKS},
        "200": _json("Accepted", "This Idempotency-Key / webhook-id already made this job"),
        **_COMMON_ERRORS,
        "415": _error("Neither application/json nor multipart/form-data"),
        "422": _error("The upload is not a video (code not_a_video)"),
    }
    job_errors = {
        "400": _COMMON_ERRORS["400"],
        "401": _COMMON_ERRORS["401"],
        "404": _error("No such job (or not yours)"),
        "500": _COMMON_ERRORS["500"],
        "503": _COMMON_ERRORS["503"],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "BlankLogo intake API",
            "version": VERSION,
            "description": "Send a video (by URL or upload); get it back without its watermark. "
            "Auth: an API key as a Bearer token, or a Standard Webhooks signature.",
        },
        "servers": [{"url": public_base_url.rstrip("/")}],
        "security": [{"bearerAuth": []}, {"webhookSignature": []}],
        "paths": {
            "/v1/jobs": {
                "post": {
                    "operationId": "createJob",
                    "summary": "Submit a video",
                    "parameters": [_IDEMPOTENCY],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/JobRequest"}
                            },
                            "multipart/form-data": {
                                "schema": {"$ref": "#/components/schemas/JobUpload"},
                                "encoding": {"file": {"contentType": "application/octet-stream"}},
                            },
                        },
                    },
                    "responses": created,
                    "callbacks": {
                        "jobEnded": {
                            "{$request.body#/callback_url}": {
                                "post": {
                                    "summary": "Sent once when the job ends (signed)",
                                    "requestBody": {
                                        "content": {
                                            "application/json": {
                                                "schema": {
                                                    "$ref": "#/components/schemas/CallbackEvent"
                                                }
                                            }
                                        }
                                    },
                                    "responses": {
                                        "2XX": {"description": "Received"},
                                        "410": {"description": "Stop sending"},
                                    },
                                }
                            }
                        }
                    },
                }
            },
            "/v1/jobs/{id}": {
                "parameters": [_JOB_ID],
                "get": {
                    "operationId": "getJob",
                    "summary": "Where a job stands",
                    "responses": {"200": _json("Job", "The job"), **job_errors},
                },
                "delete": {
                    "operationId": "cancelJob",
                    "summary": "Cancel a job that has not ended",
                    "description": "The job is cancelled, not erased: it stays readable with "
                    "status `cancelled` until it expires.",
                    "responses": {
                        "200": _json("Job", "The cancelled job"),
                        **job_errors,
                        "409": _error("The job has already ended (code already_ended)"),
                    },
                },
            },
            "/v1/jobs/{id}/result": {
                "parameters": [_JOB_ID],
                "get": {
                    "operationId": "getJobResult",
                    "summary": "Download the cleaned MP4",
                    "responses": {
                        "302": {
                            "description": "Redirect to a signed, expiring download URL",
                            "headers": {
                                "Location": {
                                    "description": "The signed URL",
                                    "schema": {"type": "string"},
                                }
                            },
                        },
                        **job_errors,
                        "409": _error("Not finished, failed or cancelled (see the code)"),
                        "410": _error("The result has expired (code result_expired)"),
                    },
                },
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of the API_KEYS.",
                },
                "webhookSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "webhook-signature",
                    "description": _SIGNED_HEADERS_NOTE,
                },
            },
        },
    }


async def serve_document(request: web.Request) -> web.Response:
    """GET /openapi.json."""
    deps = request.app[DEPS_KEY]
    return web.json_response(document(deps.settings.public_base_url))


def setup(app: web.Application, deps: Deps) -> None:
    """Mount GET /openapi.json."""
    app.router.add_get("/openapi.json", serve_document, allow_head=False)
