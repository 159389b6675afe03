"""What a video file holds, read from the `ffmpeg -i` banner (no ffprobe, no torch).

The `imageio-ffmpeg` wheel ships only the ffmpeg binary, so this parses the stream
summary ffmpeg prints for an input. Anything ffmpeg cannot open as a video with a
picture stream raises `NotAVideo` with words the sender understands.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

import imageio_ffmpeg

from core.errors import NotAVideo

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 30

_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(
    r"^\s*Stream #\d+:\d+(?:\[\w+\])?(?:\(\w+\))?: (Video|Audio|Subtitle|Data): (.*)$"
)
#: a picture size; a width never starts with 0, which keeps out codec tags written in hex
#: such as MPEG-TS's `[2][0][0][0] / 0x0002` (MPEG-2) or `0x0024` (HEVC)
_SIZE = re.compile(r"(?<![\w.])([1-9]\d{0,5})x(\d{1,6})(?![\w.])")
_FPS = re.compile(r"([\d.]+)(k?) (fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
#: the demuxer ffmpeg chose: image demuxers are `image2` and `<codec>_pipe`
_CONTAINER = re.compile(r"^Input #0, ([\w,]+), from ", re.MULTILINE)


@dataclass(frozen=True)
class VideoInfo:
    """The facts about one video that the engine and the intake need."""

    width: int
    height: int
    fps: float
    frames: int  # estimated from duration × fps; the engine counts the real number
    duration_s: float
    has_audio: bool
    rotation: float = 0.0  # display rotation in degrees, as ffmpeg prints it
    video_codec: str = ""
    pix_fmt: str = ""
    audio_codecs: tuple[str, ...] = ()
    color: dict[str, str] = field(default_factory=dict)  # range/space/primaries/trc when tagged
    #: `frames` was counted by demuxing the video stream (count_video_frames), not estimated
    frames_counted: bool = False
    #: the rate the decoded picture is made constant at, as ffmpeg's `-r` takes it, when
    #: the stream's stated rate is not its real one (with_real_rate); "" = the stated rate
    forced_rate: str = ""
    #: an interlaced source's field shown first, "top" or "bottom" ("": progressive, or
    #: not said)
    first_field: str = ""


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def count_video_frames(path: str | os.PathLike[str]) -> int | None:
    """The frames of the first video stream, counted by demuxing it (no decoding, a small
    fraction of a decode); None when ffmpeg cannot tell. The container's duration, which
    VideoInfo.frames is estimated from, is the longest stream's: often the audio's."""
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0"]
    cmd += ["-c", "copy", "-f", "null", "-", "-progress", "pipe:1"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    counts = re.findall(r"^frame=(\d+)$", out.stdout, re.MULTILINE)
    return int(counts[-1]) if counts and int(counts[-1]) > 0 else None


def with_counted_frames(path: str | os.PathLike[str], info: VideoInfo) -> VideoInfo:
    """`info` with the video stream's frames counted (count_video_frames; a count already
    made is reused) and, where the frame rate is known, the picture's own duration;
    unchanged when ffmpeg cannot tell."""
    counted = info.frames if info.frames_counted else count_video_frames(path)
    if not counted:
        return info
    duration = min(info.duration_s, counted / info.fps) if info.fps > 0 else info.duration_s
    return replace(info, frames=counted, frames_counted=True, duration_s=duration)


#: a stated rate above this is checked against the frames the stream really holds
CHECKED_RATE = 65.0
#: the usual rates, as `-r` takes them: a real average within 1.5 % of one is taken as it
_USUAL_RATES = ("24000/1001", "24", "25", "30000/1001", "30", "50", "60000/1001", "60")


def with_real_rate(path: str | os.PathLike[str], info: VideoInfo) -> VideoInfo:
    """`info` at the rate its frames really average when the stated rate is far above it.

    Browser recordings (WebM from MediaRecorder, screen and call recorders) state the
    rate of their timestamps' clock, 1000 fps: made constant at that rate, 121 frames over
    3 s became 2991 (a 25× longer encode and a 1000 fps file). Such a stream is made
    constant at its real average rate instead (frames counted by demuxing / duration),
    snapped to a usual rate when it is within 1.5 % of one."""
    if info.fps <= CHECKED_RATE or info.duration_s <= 0:
        return info
    counted = count_video_frames(path)
    if not counted or counted / info.duration_s > info.fps / 2:
        return info
    average = counted / info.duration_s
    near = [rate for rate in _USUAL_RATES if abs(average / _rate_value(rate) - 1) <= 0.015]
    rate = near[0] if near else f"{average:.3f}"
    return replace(
        info, fps=_rate_value(rate), frames=counted, frames_counted=True, forced_rate=rate
    )


def _rate_value(rate: str) -> float:
    """Frames per second of a rate as `-r` takes it ("30000/1001", "25", "40.741")."""
    num, _, den = rate.partition("/")
    return float(num) / float(den or 1)


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read the first video stream's size, rate, duration, audio and rotation; raise NotAVideo."""
    path = Path(path)
    if not path.is_file():
        raise NotAVideo("the file is missing")
    if path.stat().st_size == 0:
        raise NotAVideo("the file is empty (0 bytes), not a video")
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise NotAVideo("reading the file's header took too long; it looks broken") from exc
    return parse_banner(proc.stderr.decode("utf-8", "replace"))


def parse_banner(text: str) -> VideoInfo:
    """Turn the text `ffmpeg -i FILE` prints into a VideoInfo; raise NotAVideo."""
    lowered = text.lower()
    if "invalid data found" in lowered or "moov atom not found" in lowered:
        raise NotAVideo(
            "this file is not a video ffmpeg can read (truncated, corrupt or another kind of file)"
        )
    if "input #0" not in lowered:
        raise NotAVideo("this file is not a video ffmpeg can read")
    container = _CONTAINER.search(text)
    if container and (container.group(1) == "image2" or container.group(1).endswith("_pipe")):
        # one picture (PNG, JPEG, WebP, BMP...): there is no clip to find a mark in
        raise NotAVideo("this file is a still image, not a video")
    video: str | None = None
    video_side: list[str] = []
    audio_codecs: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _STREAM.match(line)
        if not match:
            continue
        kind, rest = match.groups()
        if kind == "Video" and video is None and "attached pic" not in rest:
            video = rest
            video_side = _side_lines(lines, index + 1)
        elif kind == "Audio":
            audio_codecs.append(rest.split()[0].strip(","))
    if video is None:
        raise NotAVideo(
            "this file is not a video: it has no video picture in it (audio only or another kind of file)"
        )
    size = _SIZE.search(video)
    if not size:
        raise NotAVideo("the video stream has no picture size; the file looks broken")
    width, height = int(size.group(1)), int(size.group(2))
    if width <= 0 or height <= 0:
        raise NotAVideo("the video stream has an empty picture")
    fps = _parse_fps(video)
    duration_match = _DURATION.search(text)
    duration = 0.0
    if duration_match:
        h, m, s = duration_match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    rotation = 0.0
    for side in video_side:
        rot = _ROTATION.search(side)
        if rot:
            rotation = float(rot.group(1))
    codec = video.split()[0].strip(",")
    pix_fmt, color, first_field = _parse_pix_fmt(video, codec)
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frames=int(round(duration * fps)) if fps > 0 else 0,
        duration_s=duration,
        has_audio=bool(audio_codecs),
        rotation=rotation,
        video_codec=codec,
        pix_fmt=pix_fmt,
        audio_codecs=tuple(audio_codecs),
        color=color,
        first_field=first_field,
    )


def _side_lines(lines: list[str], start: int) -> list[str]:
    """Indented metadata/side-data lines that follow a stream line."""
    out = []
    for line in lines[start:]:
        if _STREAM.match(line) or not line.startswith("    "):
            break
        out.append(line)
    return out


def _parse_fps(video: str) -> float:
    values: dict[str, float] = {}
    for number, kilo, unit in _FPS.findall(video):
        values.setdefault(unit, float(number) * (1000 if kilo else 1))
    return values.get("fps") or values.get("tbr") or 0.0


_RANGE_WORDS = {"tv": "tv", "pc": "pc"}
_KNOWN_SPACES = {
    "bt709",
    "smpte170m",
    "bt470bg",
    "bt2020nc",
    "bt2020c",
    "smpte240m",
    "fcc",
    "gbr",
    "ycgco",
}


#: ffmpeg's words for an interlaced stream's field order -> the field shown first ("top
#: coded first (swapped)": the bottom field is shown first)
_FIELD_ORDERS = {
    "top first": "top",
    "bottom first": "bottom",
    "top coded first (swapped)": "bottom",
    "bottom coded first (swapped)": "top",
}


def _parse_pix_fmt(video: str, codec: str) -> tuple[str, dict[str, str], str]:
    """Pixel format, colour tags and the field shown first (interlaced) from e.g.
    'yuv420p(tv, bt709/bt709/iec61937, progressive)' or 'yuv420p(top first)'."""
    parts = [p.strip() for p in re.split(r",(?![^()]*\))", video)]
    for part in parts[1:]:
        match = re.match(r"^([a-z0-9_]+)(?:\((.*)\))?$", part)
        if not match or not re.match(
            r"^(yuv|yuvj|gray|rgb|bgr|gbr|nv|p0|pal|argb|rgba|bgra|abgr|x)", match.group(1)
        ):
            continue
        pix_fmt = match.group(1)
        color: dict[str, str] = {}
        first_field = ""
        for token in (match.group(2) or "").split(","):
            token = token.strip()
            if token in _FIELD_ORDERS:
                first_field = _FIELD_ORDERS[token]
            elif token in _RANGE_WORDS:
                color["range"] = token
            elif "/" in token:
                space, primaries, trc = (token.split("/") + ["", ""])[:3]
                color.update(space=space, primaries=primaries, trc=trc)
            elif token in _KNOWN_SPACES:
                color.update(space=token, primaries=token, trc=token)
        if pix_fmt.startswith("yuvj"):
            color.setdefault("range", "pc")
        return pix_fmt, color, first_field
    return "", {}, ""
