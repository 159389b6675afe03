"""`blanklogo remove` end to end on small clips made here: format, frames, audio, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from gpu.probe import ffmpeg_exe, probe_video
from tests.engine.synth import blend, panning_frames, text_mark
from tests.media import count_frames, decoded, decoded_luma, make_clip


def _audio_packets(path: Path) -> list[str]:
    """md5 of every audio packet, copied without decoding."""
    out = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a",
            "-c",
            "copy",
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # stream, dts, pts, duration, size, md5 (then side data, as MPEG-TS's packets carry)
    return [
        line.split(",")[5].strip() for line in out.splitlines() if line and not line.startswith("#")
    ]


def _leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".part")
    )


def test_remove_keeps_format_frames_and_audio_bit_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=2, size="160x120", fps=10)
    out = tmp_path / "out.mp4"
    report = tmp_path / "report.json"
    code = main(
        ["remove", str(src), "-o", str(out), "--region", "100,80,40,30", "--report", str(report)]
    )
    assert code == 0
    info = probe_video(out)
    assert (info.video_codec, info.pix_fmt, info.width, info.height, info.fps) == (
        "h264",
        "yuv420p",
        160,
        120,
        10.0,
    )
    assert count_frames(out) == count_frames(src) == 20
    assert _audio_packets(out) == _audio_packets(src) and _audio_packets(src)
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart: playable while it downloads
    facts = json.loads(report.read_text())
    assert (
        facts["frames"] == 20 and facts["audio"] == "copy" and facts["regions"][0]["box"][0] <= 100
    )
    captured = capsys.readouterr()
    assert "20 frames" in captured.out and "[#" not in captured.err  # no bar when not a terminal
    assert _leftovers(tmp_path) == []


def test_video_without_audio_and_without_mark_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_clip(
        tmp_path / "in.mp4", seconds=1.5, size="128x96", fps=10, audio=False, source="mandelbrot"
    )
    out = tmp_path / "out.mp4"
    assert main(["remove", str(src), "-o", str(out)]) == 0
    info = probe_video(out)
    assert not info.has_audio and count_frames(out) == 15
    assert "no watermark found" in capsys.readouterr().out


def test_rotation_and_odd_frame_rate_are_kept(tmp_path: Path) -> None:
    plain = make_clip(tmp_path / "plain.mp4", seconds=1, size="96x64", fps=15, audio=False)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(plain),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    out = tmp_path / "out.mp4"
    assert main(["remove", str(rotated), "-o", str(out), "--region", "0,0,20,20"]) == 0
    info = probe_video(out)
    assert info.rotation == 90.0 and (info.width, info.height, info.fps) == (96, 64, 15.0)
    assert count_frames(out) == 15


def _grey_clip(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """(T, H, W) uint8 luma frames as a near-lossless H.264 MP4 (grey chroma)."""
    t, h, w = frames.shape
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray"]
    cmd += ["-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-crf", "12"]
    subprocess.run([*cmd, "-pix_fmt", "yuv420p", str(path)], input=frames.tobytes(), check=True)
    return path


def test_a_logo_that_comes_in_is_removed_from_the_frame_it_comes_in(tmp_path: Path) -> None:
    """A logo that comes in after an intro: found over its part of the clip, and the frames
    before it (judged one by one near its coming) come out as they went in."""
    clean = panning_frames(64)
    stamp = text_mark(144, 256, 0.6, corner="top-right")
    frames = np.clip(clean + 0.5, 0, 255).astype(np.uint8)
    frames[26:] = blend(clean[26:], stamp)
    src = _grey_clip(tmp_path / "in.mp4", frames)
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    assert main(["remove", str(src), "-o", str(out), "--report", str(report)]) == 0
    (region,) = json.loads(report.read_text())["regions"]
    assert region["start_s"] == pytest.approx(2.6, abs=0.11) and region["end_s"] == 6.4
    x, y, w, h = stamp.box
    before, after = decoded_luma(src), decoded_luma(out)
    untouched = np.abs(after[:26, y : y + h, x : x + w] - before[:26, y : y + h, x : x + w])
    assert untouched.mean() < 1.5  # the re-encode's own difference
    cleaned = np.abs(after[26:, y : y + h, x : x + w] - clean[26:, y : y + h, x : x + w])
    assert cleaned.mean() < 0.5 * np.abs(frames[26:] - clean[26:])[:, y : y + h, x : x + w].mean()


def test_a_phone_portrait_video_is_judged_as_it_is_shown(tmp_path: Path) -> None:
    """A phone stores a portrait video on its side with a display rotation: the corner the
    user names, and the boxes and size in the report, are those of the picture as shown."""
    frames = panning_frames(40)  # 144×256 as stored
    stamp = text_mark(144, 256, 0.5, corner="top-right")  # shown at the bottom right
    stored = _grey_clip(tmp_path / "stored.mp4", blend(frames, stamp))
    portrait = tmp_path / "portrait.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-display_rotation", "-90", "-i", str(stored)]
        + ["-c", "copy", str(portrait)],
        check=True,
    )
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    args = ["remove", str(portrait), "-o", str(out), "--region", "bottom-right"]
    assert main([*args, "--report", str(report)]) == 0
    facts = json.loads(report.read_text())
    assert (facts["width"], facts["height"]) == (144, 256)
    assert len(facts["regions"]) == 1
    x, y, w, h = facts["regions"][0]["box"]
    sx, sy, sw, sh = stamp.box
    shown = (144 - sy - sh, sx, sh, sw)  # the stamp turned a quarter clockwise
    assert x <= shown[0] and y <= shown[1]
    assert x + w >= shown[0] + shown[2] and y + h >= shown[1] + shown[3]
    assert probe_video(out).rotation == -90.0


def test_a_browser_recording_keeps_its_frames_although_it_states_1000_fps(
    tmp_path: Path,
) -> None:
    """WebM from a browser's MediaRecorder states the rate of its millisecond clock: made
    constant at 1000 fps, 61 frames over 2 s came out as about 2000."""
    src = _ffmpeg_lavfi(
        tmp_path / "recording.webm",
        "testsrc2=size=160x120:rate=1000:duration=2",
        *("-vf", "select='not(mod(n\\,33))+eq(mod(n\\,97)\\,5)'", "-fps_mode", "vfr"),
        *("-enc_time_base", "1:1000", "-c:v", "libvpx", "-deadline", "realtime"),
    )
    assert probe_video(src).fps == 1000.0
    packets = count_frames(src)
    out = tmp_path / "out.mp4"
    assert main(["remove", str(src), "-o", str(out), "--region", "100,80,40,30"]) == 0
    assert count_frames(out) == packets
    assert probe_video(out).fps == pytest.approx(packets / 2, rel=0.05)


def test_mpeg_ts_broadcast_clip_is_read_with_its_size_and_sound(tmp_path: Path) -> None:
    """MPEG-2 video and MP2 sound in a transport stream (TV recordings, camcorders): the
    banner names the codec tags in hex (`0x0002`), which once read as a 0x2 picture."""
    plain = make_clip(tmp_path / "plain.mp4", seconds=2, size="160x120", fps=10)
    src = tmp_path / "in.ts"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(plain), "-c:v", "mpeg2video"]
        + ["-c:a", "mp2", str(src)],
        check=True,
    )
    out = tmp_path / "out.mp4"
    assert main(["remove", str(src), "-o", str(out), "--region", "100,80,40,30"]) == 0
    info = probe_video(out)
    assert (info.width, info.height, info.fps) == (160, 120, 10.0)
    assert count_frames(out) == count_frames(src) == 20
    assert _audio_packets(out) == _audio_packets(src) and _audio_packets(src)


def _truncated(tmp_path: Path) -> Path:
    src = make_clip(tmp_path / "whole.mp4", seconds=2, size="160x120")
    fast = tmp_path / "fast.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(src),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(fast),
        ],
        check=True,
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size * 2 // 3])
    return cut


def _ffmpeg_lavfi(path: Path, source: str, *args: str) -> Path:
    """A file made by ffmpeg from a lavfi source with these output options."""
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", source, *args, str(path)]
    subprocess.run(cmd, check=True)
    return path


def _no_video(tmp_path: Path) -> Path:
    return _ffmpeg_lavfi(tmp_path / "sound.m4a", "sine=d=1")


@pytest.mark.parametrize(
    ("make", "extra", "words"),
    [
        (lambda p: (p / "empty.mp4").write_bytes(b"") and None or p / "empty.mp4", [], "empty"),
        (
            lambda p: (
                (p / "notes.mp4").write_text("not a video " * 200) and None or p / "notes.mp4"
            ),
            [],
            "not a video",
        ),
        (_truncated, [], "truncated"),
        (_no_video, [], "no video"),
        (
            lambda p: _ffmpeg_lavfi(p / "photo.png", "testsrc2=size=96x64", "-frames:v", "1"),
            [],
            "still image",
        ),
        (
            lambda p: _ffmpeg_lavfi(p / "photo.jpg", "testsrc2=size=96x64", "-frames:v", "1"),
            [],
            "still image",
        ),
        (
            lambda p: make_clip(p / "big.mp4", size="320x240", audio=False),
            ["--max-size", "200"],
            "largest",
        ),
        (
            lambda p: make_clip(p / "long.mp4", seconds=3, audio=False),
            ["--max-duration", "2"],
            "longest",
        ),
    ],
    ids=[
        "zero-bytes",
        "text",
        "truncated",
        "no-video-stream",
        "png-image",
        "jpeg-image",
        "too-large",
        "too-long",
    ],
)
def test_bad_input_fails_clearly_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, extra, words: str
) -> None:
    src = make(tmp_path)
    out = tmp_path / "out.mp4"
    code = main(["remove", str(src), "-o", str(out), *extra])
    assert code == 2
    assert words in capsys.readouterr().err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_bad_region_and_missing_folder_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_clip(tmp_path / "in.mp4", audio=False)
    assert main(["remove", str(src), "-o", str(tmp_path / "o.mp4"), "--region", "middle"]) == 2
    assert "region" in capsys.readouterr().err
    assert main(["remove", str(src), "-o", str(tmp_path / "nowhere" / "o.mp4")]) == 2
    assert not (tmp_path / "o.mp4").exists()


def test_full_range_shared_clip_keeps_range_and_frame_count(
    shared_data: Path, tmp_path: Path
) -> None:
    src = shared_data / "videos" / "asl-gesture-book.mkv"
    out = tmp_path / "asl.mp4"
    assert main(["remove", str(src), "-o", str(out), "--region", "560,400,60,40"]) == 0
    info = probe_video(out)
    assert info.color.get("range") == "pc" and count_frames(out) == count_frames(src) == 109


def test_audio_that_mp4_cannot_hold_is_reencoded_to_aac_and_reported(tmp_path: Path) -> None:
    src = tmp_path / "pcm.mkv"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=10",
            "-f",
            "lavfi",
            "-i",
            "sine=d=1",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-c:a",
            "pcm_s16le",
            str(src),
        ],
        check=True,
    )
    from gpu.engine import process

    report = process(src, tmp_path / "out.mp4", {"region": "0,0,16,16"})
    assert report["audio"] == "aac" and "pcm_s16le" in report["note_audio"]
    assert probe_video(tmp_path / "out.mp4").audio_codecs == ("aac",)


@pytest.mark.parametrize("first", ["top", "bottom"])
def test_an_interlaced_recording_comes_out_interlaced_with_its_field_order(
    tmp_path: Path, first: str
) -> None:
    """A broadcast recording (interlaced H.264 in MPEG-TS, MP2 sound) came out with its
    fields woven into frames flagged progressive: players that deinterlace did not, and
    every motion showed combed."""
    order = "tff" if first == "top" else "bff"
    src = _ffmpeg_lavfi(
        tmp_path / "tv.ts",
        "testsrc2=size=320x240:rate=50",
        *("-t", "1", "-vf", f"interlace=scan={order}", "-c:v", "libx264"),
        *("-flags", "+ildct+ilme", "-x264-params", f"interlaced=1:{order}=1", "-f", "mpegts"),
    )
    assert probe_video(src).first_field == first
    out = tmp_path / "out.mp4"
    assert main(["remove", str(src), "-o", str(out), "--region", "8,8,40,24"]) == 0
    info = probe_video(out)
    assert (info.first_field, info.width, info.height) == (first, 320, 240)
    assert count_frames(out) == count_frames(src)


def test_a_progressive_clip_stays_progressive(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=1.0, size="160x120", fps=10, audio=False)
    out = tmp_path / "out.mp4"
    assert main(["remove", str(src), "-o", str(out), "--region", "8,8,40,24"]) == 0
    assert probe_video(out).first_field == ""


@pytest.mark.parametrize("codec", ["png", "libx264rgb"])
def test_rgb_video_comes_out_in_its_own_colours(tmp_path: Path, codec: str) -> None:
    """A screen recording kept in RGB (PNG in MOV, RGB H.264) is tagged full range with no
    YUV matrix; the output is the YUV the decoder made of it, tagged as such, and plays
    back in the source's colours (the encoder used to refuse the copied tags)."""
    src = _ffmpeg_lavfi(
        tmp_path / "screen.mov", "color=c=0x2050E0:size=96x64:rate=10", "-t", "1", "-c:v", codec
    )
    assert probe_video(src).color.get("space") == "gbr"
    out = tmp_path / "out.mp4"
    assert main(["remove", str(src), "-o", str(out)]) == 0
    info = probe_video(out)
    assert (info.pix_fmt, info.color.get("range"), info.color.get("space")) == (
        "yuv420p",
        "tv",
        "smpte170m",
    )
    rgb = decoded(out, "rgb24")  # its first frame's pixels come first
    centre = 3 * (32 * 96 + 48)
    assert (
        max(abs(a - b) for a, b in zip(rgb[centre : centre + 3], (0x20, 0x50, 0xE0), strict=True))
        <= 3
    )
