"""Probing files with the ffmpeg banner: facts about real clips, clear errors for the rest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.errors import NotAVideo
from gpu.probe import ffmpeg_exe, parse_banner, probe_video
from tests.media import make_clip


def test_probe_reads_size_rate_duration_and_audio(tmp_path: Path) -> None:
    info = probe_video(make_clip(tmp_path / "a.mp4", seconds=2, size="160x120", fps=10))
    assert (info.width, info.height, info.fps) == (160, 120, 10.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert info.frames == 20 and info.has_audio and info.audio_codecs == ("aac",)


def test_probe_reads_display_rotation(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "a.mp4", audio=False)
    rotated = tmp_path / "r.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(src),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    assert probe_video(rotated).rotation == 90.0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"hello, this is text" * 50, "not a video"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, ""),
    ],
)
def test_non_videos_raise_not_a_video(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(NotAVideo) as info:
        probe_video(path)
    assert words in str(info.value)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    audio = tmp_path / "a.m4a"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=d=1", str(audio)], check=True
    )
    with pytest.raises(NotAVideo, match="no video"):
        probe_video(audio)


def test_banner_colour_tags_are_parsed() -> None:
    text = (
        "Input #0, mov,mp4, from 'x.mp4':\n  Duration: 00:00:02.00, start: 0.000000, bitrate: 1 kb/s\n"
        "  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709/bt709/bt709, "
        "progressive), 1920x1080 [SAR 1:1 DAR 16:9], 1 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)\n"
    )
    info = parse_banner(text)
    assert (info.width, info.height, info.fps, info.pix_fmt) == (1920, 1080, 29.97, "yuv420p")
    assert info.color == {"range": "tv", "space": "bt709", "primaries": "bt709", "trc": "bt709"}
    assert not info.has_audio


@pytest.mark.parametrize(
    ("words", "first"),
    [
        ("yuv420p(tv, top first)", "top"),
        ("yuv420p(tv, bt470bg, bottom first)", "bottom"),
        ("yuv422p(top coded first (swapped))", "bottom"),
        ("yuv420p(tv, bt709, progressive)", ""),
        ("yuv420p", ""),
    ],
)
def test_banner_field_order_is_parsed(words: str, first: str) -> None:
    text = (
        "Input #0, mpegts, from 'x.ts':\n  Duration: 00:00:02.00, start: 1.4, bitrate: 1 kb/s\n"
        f"  Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), {words}, 720x576 "
        "[SAR 16:15 DAR 4:3], 25 fps, 50 tbr, 90k tbn\n"
    )
    info = parse_banner(text)
    assert (info.width, info.first_field, info.pix_fmt) == (720, first, words.split("(")[0])


@pytest.mark.parametrize(
    "tags",
    ["mpeg2video (Main) ([2][0][0][0] / 0x0002)", "hevc (Main 10) ([36][0][0][0] / 0x0024)"],
)
def test_hex_codec_tags_are_not_read_as_the_picture_size(tags: str) -> None:
    text = (
        "Input #0, mpegts, from 'x.ts':\n  Duration: 00:00:03.03, start: 1.4, bitrate: 1 kb/s\n"
        f"  Stream #0:0[0x100]: Video: {tags}, yuv420p(tv, top first), 1280x720 [SAR 1:1 "
        "DAR 16:9], 25 fps, 25 tbr, 90k tbn\n"
    )
    info = parse_banner(text)
    assert (info.width, info.height, info.fps) == (1280, 720, 25.0)


def test_shared_clips_probe_as_documented(shared_data: Path) -> None:
    info = probe_video(shared_data / "videos" / "asl-gesture-book.mkv")
    assert (info.width, info.height, info.pix_fmt, info.color.get("range")) == (
        640,
        480,
        "yuvj420p",
        "pc",
    )
    car = probe_video(shared_data / "videos" / "car-detection.mp4")
    assert car.has_audio and car.color.get("space") == "smpte170m"
