"""Streaming decode and encode through ffmpeg pipes (YUV4MPEG, 4:2:0).

Frames travel as planar 8-bit 4:2:0 in the video's own colour range, so pixels the
engine does not touch reach the encoder exactly as the decoder produced them. The
YUV4MPEG header carries the exact frame rate (e.g. 179/6) and the colour range from the
decoder to the encoder. Memory stays flat: a bounded number of batches is held at a time
(the one being worked on, and those a read-ahead thread has decoded in advance).
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import subprocess
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import EngineError, NotAVideo
from gpu.probe import VideoInfo, ffmpeg_exe

log = logging.getLogger(__name__)

#: audio codecs an MP4 can carry as they are (anything else is re-encoded to AAC)
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac", "mp2"})
_FRAME = b"FRAME"
FRAME_LINE = b"FRAME\n"
#: the pipes between the ffmpegs and us hold this much (Linux caps it at pipe-max-size,
#: 1 MiB by default): fewer wake-ups of each side than the 64 KiB default
PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def grow_pipe(fd: int, size: int = PIPE_BYTES) -> None:
    """Ask for a larger pipe buffer; keep the default where the system refuses."""
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
    except OSError:
        pass


@dataclass(frozen=True)
class EncoderSettings:
    """x264 settings; the plain re-encode anchor uses the same ones."""

    preset: str = "veryfast"
    crf: int = 18


@dataclass(frozen=True)
class FrameFormat:
    """Geometry of one planar 4:2:0 frame as it travels through the pipes."""

    width: int
    height: int
    header: bytes  # the YUV4MPEG stream header line, newline included
    full_range: bool

    @property
    def chroma_shape(self) -> tuple[int, int]:
        return ((self.height + 1) // 2, (self.width + 1) // 2)

    @property
    def frame_bytes(self) -> int:
        ch, cw = self.chroma_shape
        return self.width * self.height + 2 * ch * cw

    @property
    def fps(self) -> float:
        for token in self.header.split():
            if token.startswith(b"F") and b":" in token:
                num, den = token[1:].split(b":")
                return int(num) / max(int(den), 1)
        return 0.0

    def planes(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views (Y, U, V) of a (n, frame_bytes) uint8 batch; writing to them edits the batch."""
        n = frames.shape[0]
        ysz = self.width * self.height
        ch, cw = self.chroma_shape
        y = frames[:, :ysz].reshape(n, self.height, self.width)
        u = frames[:, ysz : ysz + ch * cw].reshape(n, ch, cw)
        v = frames[:, ysz + ch * cw :].reshape(n, ch, cw)
        return y, u, v


class _StderrTail:
    """Drains a process's stderr in a thread, keeping the last lines (no pipe deadlock)."""

    def __init__(self, stream: object) -> None:
        self.lines: deque[str] = deque(maxlen=40)
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "\n".join(self.lines)


def decode_command(
    path: str | os.PathLike[str],
    *,
    output: str = "pipe:1",
    video_filter: str | None = None,
    keyframes_only: bool = False,
    input_args: Sequence[str] = (),
    output_args: Sequence[str] = (),
    threads: int = 0,
    loglevel: str = "error",
) -> list[str]:
    """The ffmpeg command that decodes `path`'s first video stream to planar 4:2:0 frames
    in YUV4MPEG at `output` (the pipe to us, or a file)."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-v", loglevel, "-noautorotate"]
    if threads > 0:
        cmd += ["-threads", str(threads)]
    if keyframes_only:
        cmd += ["-skip_frame", "nokey"]
    cmd += [*input_args, "-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn"]
    # x264 needs even dimensions in 4:2:0; an odd last row/column is dropped
    vf = "crop=trunc(iw/2)*2:trunc(ih/2)*2"
    if video_filter:
        vf = f"{video_filter},{vf}"
    cmd += ["-vf", vf, *output_args, "-pix_fmt", "yuv420p", "-strict", "-1"]
    return [*cmd, "-f", "yuv4mpegpipe", output]


class FrameReader:
    """Decodes a video into batches of planar 4:2:0 frames (CFR at the stream's exact rate)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        video_filter: str | None = None,
        keyframes_only: bool = False,
        input_args: Sequence[str] = (),
        output_args: Sequence[str] = (),
        threads: int = 0,
    ) -> None:
        cmd = decode_command(
            path,
            video_filter=video_filter,
            keyframes_only=keyframes_only,
            input_args=input_args,
            output_args=output_args,
            threads=threads,
        )
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        self._stderr = _StderrTail(self.proc.stderr)
        self.frames_read = 0
        self._stdout = self.proc.stdout
        self._ahead: _ReadAhead | None = None
        self._null: int | None = None
        self._marker = bytearray(6)
        assert self._stdout is not None
        grow_pipe(self._stdout.fileno())
        header = self._read_line()
        if not header.startswith(b"YUV4MPEG2"):
            self.close()
            raise NotAVideo(
                "the video could not be decoded (truncated, corrupt or an unsupported codec)"
                + self._why()
            )
        self.format = parse_header(header)

    def _read_line(self) -> bytes:
        buf = bytearray()
        assert self._stdout is not None
        while len(buf) < 4096:
            ch = self._stdout.read(1)
            if not ch:
                break
            buf += ch
            if ch == b"\n":
                break
        return bytes(buf)

    def _read_exact(self, view: memoryview) -> int:
        assert self._stdout is not None
        got = 0
        while got < len(view):
            n = self._stdout.readinto(view[got:])  # type: ignore[attr-defined]
            if not n:
                break
            got += n
        return got

    def _frame_line(self) -> bool:
        """Consume the next FRAME line; False at the end of the stream."""
        marker = self._marker
        got = self._read_exact(memoryview(marker))
        if got == 0:
            return False
        if got < 6 or not marker.startswith(_FRAME):
            raise NotAVideo("the video's frame data is broken" + self._why())
        if marker[5:6] != b"\n":  # FRAME with parameters: skip to the newline
            self._read_line()
        return True

    def read_frame(self, out: np.ndarray) -> bool:
        """Read the next frame into `out` (frame_bytes uint8); False at the end."""
        if not self._frame_line() or self._read_exact(out.data) < out.shape[0]:
            return False  # the end, or the decoder stopped mid-frame
        self.frames_read += 1
        return True

    def skip_frame(self) -> bool:
        """Pass over the next frame without copying it here; False at the end."""
        if not self._frame_line():
            return False
        assert self._stdout is not None
        left = self.format.frame_bytes
        try:
            if self._null is None:
                self._null = os.open(os.devnull, os.O_WRONLY)
            while left > 0:  # the kernel drops the bytes: no copy into this process
                moved = os.splice(self._stdout.fileno(), self._null, left)
                if not moved:
                    return False
                left -= moved
        except (AttributeError, OSError):  # no splice here: read into a scratch frame
            scratch = np.empty(left, np.uint8)
            if self._read_exact(scratch.data) < left:
                return False
        self.frames_read += 1
        return True

    def read_batch(self, max_frames: int, out: np.ndarray | None = None) -> np.ndarray:
        """Up to `max_frames` frames as a (n, frame_bytes) uint8 array; empty at the end."""
        size = self.format.frame_bytes
        if out is None or out.shape[0] < max_frames or out.shape[1] != size:
            out = np.empty((max_frames, size), dtype=np.uint8)
        n = 0
        while n < max_frames and self.read_frame(out[n]):
            n += 1
        return out[:n]

    def batches(self, batch_size: int, *, ahead: int = 0) -> Iterator[np.ndarray]:
        """Every frame, in batches (each batch reuses a buffer: copy what you keep).

        With `ahead` > 0 a thread starts decoding now and keeps up to that many batches
        ready, so the decoder works while the caller is busy elsewhere (memory stays
        bounded: `ahead` + 1 batches at most)."""
        if ahead <= 0:
            return self._batches(batch_size)
        self._ahead = _ReadAhead(self, batch_size, ahead)
        return iter(self._ahead)

    def _batches(self, batch_size: int) -> Iterator[np.ndarray]:
        buf: np.ndarray | None = None
        while True:
            batch = self.read_batch(batch_size, buf)
            if batch.shape[0] == 0:
                return
            buf = batch.base if batch.base is not None else batch
            yield batch

    def _why(self) -> str:
        if self.proc.poll() is None:
            return ""
        tail = self._stderr.text().strip().splitlines()
        return f" ({tail[-1][:200]})" if tail else ""

    def finish(self) -> None:
        """Wait for the decoder; raise NotAVideo when it failed or stopped on broken data."""
        assert self._stdout is not None
        if self._ahead is not None:
            self._ahead.join()
        rest = self._stdout.read(1)
        rc = self.proc.wait(timeout=30)
        errors = self._stderr.text()
        if rc != 0 or rest:
            raise NotAVideo(
                "the video could not be decoded to the end (truncated or corrupt)" + _last(errors)
            )
        if looks_truncated(errors):
            raise NotAVideo("the video file is truncated or corrupt" + _last(errors))

    def close(self) -> None:
        """Stop the decoder (and the read-ahead thread) if they still run."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
            if self._ahead is not None:
                self._ahead.stop()
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            if self._null is not None:
                os.close(self._null)
                self._null = None

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ReadAhead:
    """A thread that reads batches from a FrameReader ahead of their consumer."""

    def __init__(self, reader: FrameReader, batch_size: int, depth: int) -> None:
        size = reader.format.frame_bytes
        self._free: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        for _ in range(depth):
            self._free.put(np.empty((batch_size, size), dtype=np.uint8))
        self._ready: queue.SimpleQueue[np.ndarray | BaseException | None] = queue.SimpleQueue()
        self._reader = reader
        self._batch = batch_size
        self._thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while (buf := self._free.get()) is not None:
                batch = self._reader.read_batch(self._batch, buf)
                if batch.shape[0] == 0:
                    break
                self._ready.put(batch)
        except BaseException as exc:  # raised again in the consumer's thread
            self._ready.put(exc)
            return
        self._ready.put(None)

    def __iter__(self) -> Iterator[np.ndarray]:
        while (item := self._ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
            self._free.put(item.base if item.base is not None else item)

    def join(self) -> None:
        self._thread.join(timeout=30)

    def stop(self) -> None:
        """End the thread (its decoder is already stopped, so a blocked read returns)."""
        self._free.put(None)
        self._thread.join(timeout=10)


def _last(errors: str) -> str:
    lines = [line for line in errors.splitlines() if line.strip()]
    return f": {lines[-1][:200]}" if lines else ""


_TRUNCATION_SIGNS = ("partial file", "truncat", "invalid nal", "error while decoding", "corrupt")


def looks_truncated(errors: str) -> bool:
    lowered = errors.lower()
    return any(sign in lowered for sign in _TRUNCATION_SIGNS)


def parse_header(header: bytes) -> FrameFormat:
    width = height = 0
    full = False
    for token in header.split():
        if token.startswith(b"W"):
            width = int(token[1:])
        elif token.startswith(b"H"):
            height = int(token[1:])
        elif token == b"XCOLORRANGE=FULL":
            full = True
    if width <= 0 or height <= 0:
        raise NotAVideo("the decoder produced no picture size")
    return FrameFormat(width=width, height=height, header=header, full_range=full)


class FrameWriter:
    """Encodes planar 4:2:0 frames to an H.264 MP4, muxing the source's audio untouched."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fmt: FrameFormat,
        info: VideoInfo,
        *,
        audio_from: str | os.PathLike[str] | None,
        encoder: EncoderSettings = EncoderSettings(),  # noqa: B008 - frozen dataclass
    ) -> None:
        self.fmt = fmt
        self.audio_mode = "none"
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y"]
        cmd += ["-f", "yuv4mpegpipe"]
        if info.rotation:
            cmd += ["-noautorotate", "-display_rotation", f"{info.rotation:g}"]
        cmd += ["-i", "pipe:0"]
        if audio_from is not None and info.has_audio:
            cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a?"]
            if all(codec in MP4_AUDIO_CODECS for codec in info.audio_codecs):
                cmd += ["-c:a", "copy"]
                self.audio_mode = "copy"
            else:
                cmd += ["-c:a", "aac", "-b:a", "192k"]
                self.audio_mode = "aac"
        else:
            cmd += ["-map", "0:v:0"]
        cmd += ["-c:v", "libx264", "-preset", encoder.preset, "-crf", str(encoder.crf)]
        cmd += [*interlace_args(info), "-pix_fmt", "yuv420p", *color_args(info, fmt.full_range)]
        cmd += ["-movflags", "+faststart", "-f", "mp4", str(path)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, bufsize=0
        )
        self._stderr = _StderrTail(self.proc.stderr)
        self.frames_written = 0
        assert self.proc.stdin is not None
        grow_pipe(self.proc.stdin.fileno())
        self._write(fmt.header)

    def _write(self, data: bytes | memoryview) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, OSError) as exc:
            raise EngineError("the encoder stopped" + _last(self._stderr.text())) from exc

    def write_batch(self, frames: np.ndarray) -> None:
        """Append a (n, frame_bytes) uint8 batch."""
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        line = memoryview(FRAME_LINE)
        try:
            for frame in frames:
                _write_all(fd, [line, np.ascontiguousarray(frame).data])
        except OSError as exc:  # BrokenPipeError included: the encoder is gone
            raise EngineError("the encoder stopped" + _last(self._stderr.text())) from exc
        self.frames_written += frames.shape[0]

    def finish(self) -> None:
        """Close the pipe and wait; raise EngineError when the encoder failed."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        rc = self.proc.wait()
        if rc != 0:
            raise EngineError("the encoder failed" + _last(self._stderr.text()))

    def close(self) -> None:
        """Stop the encoder if it still runs (after an error)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, parts: list[memoryview]) -> None:
    """Write every byte of `parts` to `fd`, one system call per frame when the pipe allows."""
    while parts:
        sent = os.writev(fd, parts)
        while parts and sent >= len(parts[0]):
            sent -= len(parts[0])
            parts.pop(0)
        if parts and sent:
            parts[0] = parts[0][sent:]


def decoder_threads() -> int:
    """Threads for the streaming decoder: it keeps well ahead of x264 on one, and every
    core it leaves free goes to the encoder (auto would start cores + 1)."""
    return max(1, (os.cpu_count() or 2) // 4)


#: pixel formats of RGB pictures (and paletted ones, whose palette is RGB)
_RGB_FORMATS = ("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "x2rgb", "x2bgr", "pal")


def color_args(info: VideoInfo, full_range: bool) -> list[str]:
    """ffmpeg output options that keep the source's colour tags.

    An RGB source (PNG or QuickTime Animation screen recordings, GIFs, RGB H.264) reaches
    the encoder as the decoder converted it: YUV by the BT.601 matrix, in limited range
    unless the frames say otherwise, whatever its own tags say (`pc`, `gbr`: the latter
    is no YUV matrix at all, and x264 refused it)."""
    rgb = info.color.get("space") == "gbr" or info.pix_fmt.startswith(_RGB_FORMATS)
    source_full = info.color.get("range") == "pc" and not rgb
    args = ["-color_range", "pc" if full_range or source_full else "tv"]
    tags = {**info.color, "space": "smpte170m"} if rgb else info.color
    names = {"space": "-colorspace", "primaries": "-color_primaries", "trc": "-color_trc"}
    for key, flag in names.items():
        value = tags.get(key)
        if value and value not in ("unknown", "gbr") and value.replace("-", "").isalnum():
            args += [flag, value]
    return args


def interlace_args(info: VideoInfo) -> list[str]:
    """x264 options that keep an interlaced source's fields as fields, flagged with the one
    shown first, so that players that deinterlace do (encoded as progressive frames, the
    woven fields showed combed on every motion)."""
    if not info.first_field:
        return []
    first = "tff" if info.first_field == "top" else "bff"
    return ["-flags", "+ildct+ilme", "-x264-params", f"interlaced=1:{first}=1"]


def plain_reencode_command(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    info: VideoInfo,
    encoder: EncoderSettings,
) -> list[str]:
    """The plain ffmpeg re-encode with our encoder settings (the speed and quality floor)."""
    cmd = [
        ffmpeg_exe(),
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-i",
        str(src),
        "-map",
        "0:v:0",
        "-map",
        "0:a?",
    ]
    cmd += [
        "-c:v",
        "libx264",
        "-preset",
        encoder.preset,
        "-crf",
        str(encoder.crf),
        *interlace_args(info),
        "-pix_fmt",
        "yuv420p",
    ]
    cmd += ["-c:a", "copy", "-movflags", "+faststart", "-f", "mp4", str(dst)]
    return cmd


def temp_path_beside(path: Path) -> Path:
    """A hidden temporary name in the same directory (so the final rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident() % 100000}.part")
