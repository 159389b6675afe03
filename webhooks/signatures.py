"""Standard Webhooks signatures (https://www.standardwebhooks.com): pure functions.

A message is signed as ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the
key inside a ``whsec_<base64>`` secret, and travels in three headers: ``webhook-id``,
``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (one or more space-separated
signatures, so a sender can rotate secrets). A receiver accepts a message when its timestamp
is within ``tolerance`` seconds of now, in either direction, and one of the signatures
matches (constant-time compare).

The intake API verifies incoming requests with these; `webhooks.callbacks` signs outbound
completion callbacks with the same secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300
#: webhook-id values longer than this are refused (they become Redis and database keys)
MAX_ID_LENGTH = 200


class SignatureError(Exception):
    """The message's signature headers are missing, stale or do not match the body."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret (a bare base64 secret works too)."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret must look like whsec_<base64>") from exc
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def _mac(key: bytes, msg_id: str, timestamp: int) -> hmac.HMAC:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode(), hashlib.sha256)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message."""
    mac = _mac(decode_secret(secret), msg_id, timestamp)
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for an outbound message."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def has_signature_headers(headers: Mapping[str, str]) -> bool:
    """Whether a request claims to be signed (any of the three headers present)."""
    return any(_header(headers, name) is not None for name in _HEADERS)


_HEADERS = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; aiohttp's CIMultiDict is not
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


@dataclass
class PendingSignature:
    """A signed message whose headers and timestamp checked out; feed it the body, then check().

    Lets a receiver verify a streamed body (a multipart upload) without holding it in memory.
    """

    msg_id: str
    timestamp: int
    signatures: list[bytes]
    _mac: hmac.HMAC = field(repr=False)

    def update(self, chunk: bytes) -> None:
        """Hash the next piece of the raw body."""
        self._mac.update(chunk)

    def check(self) -> str:
        """Return the message id if one signature matches the body fed so far, else raise."""
        expected = self._mac.digest()
        # compare against every candidate so timing does not tell which one matched
        matched = False
        for candidate in self.signatures:
            matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise SignatureError("no webhook-signature matches the body")
        return self.msg_id


def start_verify(
    secret: str,
    headers: Mapping[str, str],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_S,
) -> PendingSignature:
    """Check the headers and the timestamp window; the body is checked by the result."""
    msg_id = _header(headers, ID_HEADER)
    stamp = _header(headers, TIMESTAMP_HEADER)
    signature_header = _header(headers, SIGNATURE_HEADER)
    if not msg_id or not stamp or not signature_header:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    if len(msg_id) > MAX_ID_LENGTH or not msg_id.isprintable():
        raise SignatureError("webhook-id is too long or contains control characters")
    try:
        timestamp = int(stamp.strip())
    except ValueError:
        raise SignatureError("webhook-timestamp must be Unix seconds") from None
    if timestamp < now - tolerance:
        raise SignatureError("webhook-timestamp is too old")
    if timestamp > now + tolerance:
        raise SignatureError("webhook-timestamp is too far in the future")
    signatures = []
    for part in signature_header.split():
        version, _, encoded = part.partition(",")
        if version != "v1":
            continue  # other schemes (v1a: asymmetric) are not ours to check
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not signatures:
        raise SignatureError("webhook-signature holds no v1 signature")
    try:
        key = decode_secret(secret)
    except ValueError as exc:
        raise SignatureError(str(exc)) from None
    return PendingSignature(msg_id, timestamp, signatures, _mac(key, msg_id, timestamp))


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_S,
) -> str:
    """Verify a whole message; return its webhook-id or raise SignatureError."""
    pending = start_verify(secret, headers, now, tolerance)
    pending.update(body)
    return pending.check()
