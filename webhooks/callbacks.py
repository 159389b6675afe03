"""Completion callbacks: a signed POST to the job's ``callback_url`` when it ends.

The body is a Standard Webhooks event::

    {"type": "job.completed" | "job.failed" | "job.cancelled",
     "timestamp": "<ISO 8601>",
     "data": {"id", "status", "result_url", "status_url", "error", "metadata", "marks_removed",
              "timings"}}

signed with ``WEBHOOK_SECRET`` (headers ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``; `webhooks.signatures`). The ``webhook-id`` is the same on every try
of the same event (``{job id}.{status}.{attempts}``) so receivers can drop duplicates, and
new when a job ends again after an operator's retry. ``result_url`` is
a signed storage link valid until the result expires (``RESULT_TTL_DAYS``).

A 2xx answer is success; 410 Gone means the receiver wants no more calls, so we stop
without an error; an unsafe URL is given up (retrying cannot help). Any other answer, a
timeout or a network failure raises DeliveryError and the pipeline retries with backoff.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from core.errors import DeliveryError, StorageError, UnsafeURL
from core.jobs import Job, JobState
from core.ports import Storage
from core.settings import Settings
from webhooks import safe_http
from webhooks.signatures import signed_headers

logger = logging.getLogger(__name__)

CALLBACK_TIMEOUT_S = 15
EVENT_TYPES = {
    JobState.COMPLETED: "job.completed",
    JobState.FAILED: "job.failed",
    JobState.CANCELLED: "job.cancelled",
}
USER_AGENT = "BlankLogo-Webhooks/1"


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a time, or None."""
    return value.isoformat() if value is not None else None


def ms_between(start: datetime | None, end: datetime | None) -> int | None:
    """Milliseconds from `start` to `end`, or None when either is unknown."""
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def marks_removed(job: Job) -> list[dict[str, Any]] | None:
    """The marks the engine removed (box x,y,w,h in pixels of the picture as shown, opacity,
    start_s/end_s, method); [] when it found none; None until the job has completed."""
    if job.status is not JobState.COMPLETED:
        return None
    regions = (job.report or {}).get("regions") or []
    keys = ("box", "opacity", "start_s", "end_s", "method")
    return [{k: r[k] for k in keys if k in r} for r in regions if isinstance(r, dict)]


def event_body(job: Job, result_url: str | None, public_base_url: str) -> dict[str, Any]:
    """The JSON event sent for an ended job."""
    base = public_base_url.rstrip("/")
    return {
        "type": EVENT_TYPES[job.status],
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "id": job.id,
            "status": job.status.value,
            "result_url": result_url,
            "status_url": f"{base}/v1/jobs/{job.id}",
            "error": job.error_message,
            "metadata": job.reply_to.get("metadata"),
            "completed_at": iso(job.completed_at),
            "marks_removed": marks_removed(job),
            "timings": {
                "queued_ms": ms_between(job.created_at, job.started_at),
                "processing_ms": job.processing_time_ms,
                "total_ms": ms_between(job.created_at, job.completed_at),
            },
        },
    }


class CallbackNotifier:
    """Notifier for webhook jobs: one signed POST per ended job; callers poll for progress."""

    def __init__(self, settings: Settings, storage: Storage, redis: Any = None) -> None:
        self.settings = settings
        self.storage = storage
        self.redis = redis
        self._session: aiohttp.ClientSession | None = None

    async def progress(self, job: Job) -> None:
        """No-op: webhook clients poll GET /v1/jobs/{id} for progress."""

    async def close(self) -> None:
        """Close the outbound HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = safe_http.open_session(
                self.settings, timeout_s=CALLBACK_TIMEOUT_S, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def _result_url(self, job: Job) -> str | None:
        if job.status != JobState.COMPLETED or not job.output_key:
            return None
        ttl = self.settings.result_ttl_days * 86400
        if job.expires_at is not None:
            ttl = max(60, int((job.expires_at - datetime.now(UTC)).total_seconds()))
        try:
            return await self.storage.signed_url(job.output_key, expires_in=ttl)
        except StorageError as exc:
            raise DeliveryError(f"no result link for job {job.id} yet ({exc})") from exc

    async def deliver(self, job: Job) -> None:
        """POST the signed event to the job's callback_url; raise DeliveryError to be retried."""
        url = (job.reply_to or {}).get("callback_url")
        if not url or job.status not in EVENT_TYPES:
            return
        body = json.dumps(
            event_body(job, await self._result_url(job), self.settings.public_base_url),
            separators=(",", ":"),
        ).encode()
        msg_id = f"{job.id}.{job.status.value}.{job.attempts}"
        headers = {"Content-Type": "application/json"}
        if self.settings.webhook_secret is not None:
            secret = self.settings.webhook_secret.get_secret_value()
            headers |= signed_headers(secret, msg_id, int(time.time()), body)
        else:
            logger.warning("job %s: callback sent unsigned (no WEBHOOK_SECRET)", job.id)
            headers |= {"webhook-id": msg_id, "webhook-timestamp": str(int(time.time()))}
        try:
            response = await safe_http.request(
                self._client(),
                "POST",
                url,
                allow_loopback=self.settings.allow_loopback_urls,
                follow_redirects=False,
                data=body,
                headers=headers,
            )
        except UnsafeURL as exc:
            logger.warning("job %s: callback given up, unsafe URL (%s)", job.id, exc)
            return
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"callback failed ({exc.__class__.__name__})") from exc
        async with response:
            status = response.status
        if status == 410:
            logger.info("job %s: callback receiver answered 410 Gone; not retrying", job.id)
            return
        if not 200 <= status < 300:
            raise DeliveryError(f"callback answered HTTP {status}")
        logger.info("job %s: callback %s delivered", job.id, EVENT_TYPES[job.status])


def build_notifier(settings: Settings, storage: Storage, redis: Any) -> CallbackNotifier:
    """The webhook channel's Notifier."""
    return CallbackNotifier(settings, storage, redis)
