"""Who is calling the intake API: an API key, a Standard Webhooks signature, or (dev only) nobody.

Rules, in order:

1. ``Authorization: Bearer <key>`` with a key from ``API_KEYS`` → requester ``key:<fingerprint>``
   (the first 12 hex digits of the key's SHA-256, so logs and rows never hold the key).
   A bad key is refused even if the request is also signed.
2. ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` signed with ``WEBHOOK_SECRET``
   → requester ``webhook``. Headers and the ±5 min window are checked here; the body is
   checked by the handler once read (a multipart upload is hashed while it streams).
3. Neither ``API_KEYS`` nor ``WEBHOOK_SECRET`` configured: the API is closed (401), except in
   dev/test mode (``ALLOW_LOOPBACK_URLS=true``) for requests from a loopback address, which
   are let in as requester ``anonymous``. A server reachable from outside is never open.

Missing or bad credentials answer 401 before anything is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass

from aiohttp import web

from core.settings import Settings
from webhooks.errors import http_error
from webhooks.signatures import (
    PendingSignature,
    SignatureError,
    has_signature_headers,
    start_verify,
)

ANONYMOUS = "anonymous"
SIGNED = "webhook"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="blanklogo"'}


@dataclass
class Client:
    """An authenticated caller; `requester` is what its jobs are filed under."""

    requester: str
    via: str  # "bearer" | "signature" | "open"
    pending: PendingSignature | None = None

    @property
    def msg_id(self) -> str | None:
        return self.pending.msg_id if self.pending else None

    def verify_body(self, body: bytes) -> None:
        """For a signed request, check the signature against the whole body (401 if wrong)."""
        if self.pending is None:
            return
        self.pending.update(body)
        self.check_signature()

    def check_signature(self) -> None:
        """For a signed request whose body was fed to `pending`, check it (401 if wrong)."""
        if self.pending is None:
            return
        try:
            self.pending.check()
        except SignatureError as exc:
            raise unauthorized(str(exc)) from None


def unauthorized(message: str) -> web.HTTPException:
    """The 401 every auth failure answers."""
    return http_error(web.HTTPUnauthorized, "unauthorized", message, dict(_CHALLENGE))


def key_fingerprint(key: str) -> str:
    """A short, stable, non-secret name for an API key."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _match_key(settings: Settings, presented: str) -> str | None:
    digest = hashlib.sha256(presented.encode()).digest()
    found = None
    for secret in settings.api_keys:
        key = secret.get_secret_value()
        # compare digests: constant time, and no length leak
        if hmac.compare_digest(digest, hashlib.sha256(key.encode()).digest()) and found is None:
            found = key
    return found


def is_open(settings: Settings) -> bool:
    """Whether the API has no credentials configured at all."""
    return not settings.api_keys and settings.webhook_secret is None


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


def authenticate(request: web.Request, settings: Settings, now: float | None = None) -> Client:
    """Identify the caller from the headers, or raise 401."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Authorization must be 'Bearer <api key>'")
        key = _match_key(settings, token.strip())
        if key is None:
            raise unauthorized("the API key is not valid")
        return Client(requester=f"key:{key_fingerprint(key)}", via="bearer")
    if has_signature_headers(request.headers):
        if settings.webhook_secret is None:
            raise unauthorized("signed requests are not accepted: no webhook secret is configured")
        try:
            pending = start_verify(
                settings.webhook_secret.get_secret_value(),
                request.headers,
                time.time() if now is None else now,
            )
        except SignatureError as exc:
            raise unauthorized(str(exc)) from None
        return Client(requester=SIGNED, via="signature", pending=pending)
    if is_open(settings) and settings.allow_loopback_urls and _is_loopback(request.remote):
        return Client(requester=ANONYMOUS, via="open")
    if is_open(settings):
        raise unauthorized("the intake API is closed: set API_KEYS or WEBHOOK_SECRET")
    raise unauthorized("send 'Authorization: Bearer <api key>' or a Standard Webhooks signature")
