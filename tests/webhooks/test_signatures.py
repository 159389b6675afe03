"""Standard Webhooks signatures: pure functions, no fixtures."""

from __future__ import annotations

import base64

import pytest

from webhooks.signatures import (
    SignatureError,
    decode_secret,
    sign,
    signed_headers,
    start_verify,
    verify,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NOW = 1_700_000_000
BODY = b'{"video_url": "https://example.com/v.mp4"}'


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # the example of the Standard Webhooks spec / svix libraries
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_valid_signature_returns_the_message_id() -> None:
    headers = signed_headers(SECRET, "msg_1", NOW, BODY)
    assert verify(SECRET, headers, BODY, now=NOW) == "msg_1"


def test_header_names_are_case_insensitive_in_plain_dicts() -> None:
    headers = {k.upper(): v for k, v in signed_headers(SECRET, "msg_1", NOW, BODY).items()}
    assert verify(SECRET, headers, BODY, now=NOW) == "msg_1"


def test_changed_body_is_refused() -> None:
    headers = signed_headers(SECRET, "msg_1", NOW, BODY)
    with pytest.raises(SignatureError, match="matches"):
        verify(SECRET, headers, BODY + b" ", now=NOW)


def test_signature_with_another_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(b"another secret entirely").decode()
    with pytest.raises(SignatureError):
        verify(SECRET, signed_headers(other, "msg_1", NOW, BODY), BODY, now=NOW)


def test_changed_message_id_is_refused() -> None:
    headers = signed_headers(SECRET, "msg_1", NOW, BODY)
    headers["webhook-id"] = "msg_2"
    with pytest.raises(SignatureError):
        verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, -10_000, 10_000])
def test_timestamps_outside_five_minutes_are_refused(skew: int) -> None:
    headers = signed_headers(SECRET, "msg_1", NOW + skew, BODY)
    with pytest.raises(SignatureError, match="too"):
        verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("skew", [-300, -299, 0, 299, 300])
def test_timestamps_within_five_minutes_are_accepted(skew: int) -> None:
    headers = signed_headers(SECRET, "msg_1", NOW + skew, BODY)
    assert verify(SECRET, headers, BODY, now=NOW) == "msg_1"


def test_one_matching_signature_among_several_is_enough() -> None:
    good = sign(SECRET, "msg_1", NOW, BODY)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": f"v1,bm90IHRoZSBzaWduYXR1cmU= v1a,ignored {good} garbage",
    }
    assert verify(SECRET, headers, BODY, now=NOW) == "msg_1"


def test_only_non_v1_signatures_are_refused() -> None:
    good = sign(SECRET, "msg_1", NOW, BODY).removeprefix("v1,")
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": f"v2,{good}",
    }
    with pytest.raises(SignatureError, match="no v1"):
        verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_refused(missing: str) -> None:
    headers = signed_headers(SECRET, "msg_1", NOW, BODY)
    del headers[missing]
    with pytest.raises(SignatureError, match="required"):
        verify(SECRET, headers, BODY, now=NOW)


def test_non_numeric_timestamp_is_refused() -> None:
    headers = signed_headers(SECRET, "msg_1", NOW, BODY)
    headers["webhook-timestamp"] = "yesterday"
    with pytest.raises(SignatureError, match="Unix"):
        verify(SECRET, headers, BODY, now=NOW)


def test_streamed_body_verifies_like_a_whole_one() -> None:
    headers = signed_headers(SECRET, "msg_1", NOW, BODY)
    pending = start_verify(SECRET, headers, now=NOW)
    for start in range(0, len(BODY), 7):
        pending.update(BODY[start : start + 7])
    assert pending.check() == "msg_1"


def test_secret_must_be_base64() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        decode_secret("whsec_not base64!!")
    assert decode_secret(SECRET) == b"0123456789abcdef0123456789abcdef"
