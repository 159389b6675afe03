"""The pure parts of the Slack bot: what counts as a video, options, the bot's words."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta

import pytest

from bots.slack import messages, redaction
from bots.slack.download import looks_like_html, may_send_token, sniff_container
from bots.slack.files import is_video, safe_filename, video_files
from bots.slack.options import parse_options
from core.errors import BadRegion
from core.jobs import JobState, NewJob, Source

API = "https://slack.com/api/"


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00", "mp4"),
        (b"\x00\x00\x00\x08wide\x00\x10\x00\x00mdat", "mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "matroska"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", "avi"),
        (b"FLV\x01\x05\x00\x00\x00\x09", "flv"),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00", "mpeg"),
        (b"\x47" + b"\x00" * 187 + b"\x47", "mpegts"),
        (b"GIF89a\x01\x00", "gif"),
    ],
)
def test_video_containers_are_recognised_by_their_first_bytes(head: bytes, container: str) -> None:
    assert sniff_container(head) == container


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><html>",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"%PDF-1.7\n",
        b'{"ok":false,"error":"file_not_found"}',
        b"",
    ],
)
def test_anything_else_is_not_a_video(head: bytes) -> None:
    assert sniff_container(head) is None


def test_html_is_told_apart_from_other_non_video_bytes() -> None:
    assert looks_like_html(b"\xef\xbb\xbf\n  <!doctype html>")
    assert looks_like_html(b"<html><body>Sign in to Slack</body></html>")
    assert not looks_like_html(b"%PDF-1.7")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/download/clip.mp4", True),
        ("https://slack.com/files-pri/T1-F1/clip.mp4", True),
        ("http://files.slack.com/files-pri/T1-F1/clip.mp4", False),
        ("https://files.slack.com.evil.example/clip.mp4", False),
        ("https://evilslack.com/clip.mp4", False),
        ("https://example.com/clip.mp4", False),
        ("", False),
    ],
)
def test_the_bot_token_only_goes_to_slack(url: str, allowed: bool) -> None:
    assert may_send_token(url, API) is allowed


def test_the_bot_token_also_goes_to_the_configured_api_origin_only() -> None:
    proxy = "http://127.0.0.1:8765/api/"
    assert may_send_token("http://127.0.0.1:8765/files-pri/T-F/x.mp4", proxy)
    assert not may_send_token("http://127.0.0.1:9999/files-pri/T-F/x.mp4", proxy)


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("", {}),
        ("please clean this", {}),
        ("region=bottom-right", {"region": "bottom-right"}),
        ("<@UBOT> Region = Top_Left thanks", {"region": "top-left"}),
        ("region=1700,950,200,100", {"region": "1700,950,200,100"}),
        ("region=*bottom-left*", {"region": "bottom-left"}),
        ("region=auto", {}),
        ("subregion=whatever", {}),
    ],
)
def test_options_come_from_the_message_text(text: str, options: dict[str, str]) -> None:
    assert parse_options(text) == options


@pytest.mark.parametrize(
    "text", ["region=middle", "region=10,10", "region=1,2,0,0", "region=a region=b"]
)
def test_a_region_that_does_not_parse_is_a_bad_region(text: str) -> None:
    with pytest.raises(BadRegion):
        parse_options(text)


def test_videos_are_known_by_mimetype_or_filetype_and_unavailable_files_are_skipped() -> None:
    mp4 = {"id": "F1", "mimetype": "video/mp4", "filetype": "mp4", "url_private_download": "u"}
    mov = {
        "id": "F2",
        "mimetype": "application/octet-stream",
        "filetype": "mov",
        "url_private_download": "u",
    }
    png = {"id": "F3", "mimetype": "image/png", "filetype": "png", "url_private_download": "u"}
    gone = {"id": "F4", "mimetype": "video/mp4", "mode": "tombstone"}
    stub = {"id": "F5", "file_access": "check_file_info"}
    assert is_video(mp4) and is_video(mov) and not is_video(png) and not is_video(gone)
    assert [f["id"] for f in video_files([mp4, png, gone, stub, mov])] == ["F1", "F5", "F2"]


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("promo clip.mp4", "promo_clip.mp4"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\vidéo été.mov", "video_ete.mov"),
        ("....", "video.mp4"),
        (None, "video.mp4"),
    ],
)
def test_file_names_are_made_safe_for_storage(name: str | None, safe: str) -> None:
    assert safe_filename(name) == safe


def _job(**changes: object):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = NewJob(source=Source.SLACK, requester="U1", reply_to={}, input_filename="a.mp4")
    return job.to_job(now, timedelta(days=7)).replace(**changes)


def test_the_summary_says_what_was_removed_and_how_long_it_took() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    job = _job(
        status=JobState.COMPLETED,
        processing_time_ms=12_300,
        completed_at=created + timedelta(seconds=40),
        report={
            "frames": 300,
            "regions": [
                {"box": [1700, 950, 200, 100], "start_s": 0, "end_s": 5},
                {"box": [20, 20, 180, 60]},
            ],
        },
    )
    text = messages.done(job)
    assert "Removed 2 watermarks (200×100 px at 1700,950, 0.0–5.0 s, 180×60 px at 20,20)" in text
    assert "across 300 frames" in text
    assert "Took 12.3 s (40 s from upload to result)" in text


def test_the_summary_says_so_when_no_watermark_was_found_and_how_to_point_at_one() -> None:
    text = messages.done(_job(report={"regions": [], "frames": 10}))
    assert "no watermark" in text and "region=bottom-right" in text


def test_a_failure_is_said_in_plain_words_with_the_job_id() -> None:
    job = _job(status=JobState.FAILED, error_message="the video is longer than 10 minutes.")
    assert messages.failed(job) == (
        f":x: Sorry, I couldn't clean `a.mp4`: the video is longer than 10 minutes. Job `{job.id}`."
    )


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        (
            "url='wss://wss-primary.slack.com/link/?ticket=1f2e-3d4c&app_id=A0B' failed",
            "url='wss://wss-primary.slack.com/link/?[redacted]' failed",
        ),
        ("WS://127.0.0.1:9/socket?ticket=abc next", "WS://127.0.0.1:9/socket?[redacted] next"),
        ("{'ticket=abc&x': 1}", "{'ticket=[redacted]&x': 1}"),
        (
            "token xoxb-123-456-AbC and xapp-1-A0B-99-ff",
            "token xoxb-[redacted] and xapp-[redacted]",
        ),
        (
            "https://slack.com/api/?x=1 and ws://host/socket stay",
            "https://slack.com/api/?x=1 and ws://host/socket stay",
        ),
    ],
)
def test_secrets_are_masked_in_log_text(text: str, clean: str) -> None:
    assert redaction.redact(text) == clean


def test_the_log_filter_masks_the_message_its_arguments_and_the_traceback() -> None:
    url = "wss://wss.slack.com/link/?ticket=SEKRIT-1&app_id=A1"
    try:
        raise ConnectionError(f"handshake failed: {url}")
    except ConnectionError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "to %s with %s", (url, "xapp-1-A-2"), exc_info
    )

    assert redaction.RedactSlackSecrets().filter(record)

    assert record.getMessage() == "to wss://wss.slack.com/link/?[redacted] with xapp-[redacted]"
    assert record.exc_info is None and record.exc_text is not None
    assert (
        "ConnectionError: handshake failed: wss://wss.slack.com/link/?[redacted]" in record.exc_text
    )
    assert "SEKRIT" not in logging.Formatter().format(record)


def test_a_record_without_secrets_keeps_its_arguments_and_exception() -> None:
    try:
        raise ValueError("nothing secret")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "try %d", (3,), exc_info)

    assert redaction.RedactSlackSecrets().filter(record)

    assert (record.msg, record.args, record.exc_info) == ("try %d", (3,), exc_info)
