"""The Telegram channel's pure parts: caption options, file sniffing, names, URLs."""

from __future__ import annotations

import pytest

from bots.telegram.limits import file_base_url
from bots.telegram.media import looks_like_video, safe_filename
from bots.telegram.options import parse_caption
from core.errors import BadRegion, InputError
from core.settings import Settings


def test_caption_region_is_validated_and_normalised():
    assert parse_caption("please clean region=Top_Right thanks") == {"region": "top-right"}
    assert parse_caption("region=10, 20, 200, 80 please") == {"region": "10,20,200,80"}
    with pytest.raises(BadRegion):
        parse_caption("region= 10, 20")  # half a box is an error, never auto
    assert parse_caption(None) == {} and parse_caption("region=auto") == {}


def test_caption_without_options_is_not_misread():
    assert parse_caption("from https://example.com/v?id=3 look") == {}


def test_unreadable_region_and_unknown_options_are_refused():
    with pytest.raises(BadRegion):
        parse_caption("region=middle")
    with pytest.raises(InputError, match="mode="):
        parse_caption("mode=fast")


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x20ftypisom" + bytes(500),
        b"\x1a\x45\xdf\xa3" + bytes(500),
        b"RIFF\x00\x00\x00\x00AVI LIST",
        b"GIF89a" + bytes(10),
        (b"\x47" + bytes(187)) * 3,
    ],
    ids=["mp4", "mkv", "avi", "gif", "mpeg-ts"],
)
def test_video_containers_are_recognised(head: bytes):
    assert looks_like_video(head)


@pytest.mark.parametrize(
    "head", [b"", b"%PDF-1.7\n" + bytes(600), b"\x89PNG\r\n\x1a\n" + bytes(600), b"hello"]
)
def test_other_bytes_are_not_videos(head: bytes):
    assert not looks_like_video(head)


def test_file_names_lose_paths_and_odd_characters():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("my video (1).mp4") == "my_video_1_.mp4"
    assert safe_filename("..") == "video.mp4"


def test_file_base_url_follows_the_api_base_url():
    local = Settings(telegram_api_base_url="http://127.0.0.1:8081/bot")
    assert file_base_url(local) == "http://127.0.0.1:8081/file/bot"
    assert file_base_url(Settings()) == "https://api.telegram.org/file/bot"
    explicit = Settings(telegram_file_base_url="http://files.example/file/bot")
    assert file_base_url(explicit) == "http://files.example/file/bot"
