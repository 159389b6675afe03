"""The removal engine: one video in, the same video without its watermark out.

    probe → limits → sample frames → find the marks (or take the user's region)
          → estimate each mark's matte → stream: decode → remove → encode (+ audio copy)

A short clip is decoded once, to a file beside the output (`gpu.spill`): the samples are
read from it, and then every frame, cleaned on its way to the encoder.
A longer one is sampled by a cheaper decode of its own, and the streaming decoder starts
as soon as the samples are in, so that it works ahead (a bounded number of frames) while
the marks are being found; then its frames pass through here to the encoder.

The output is written beside its final path and renamed into place only when complete,
so a failure never leaves half a file behind.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import BlankLogoError, EngineError, NotAVideo, VideoTooLarge
from gpu.probe import VideoInfo, probe_video, with_counted_frames, with_real_rate
from gpu.regions import CORNERS, Box, display_quarters, parse_region, region_box, shown_size
from gpu.sampling import Samples, sample_frames
from gpu.spill import Spill, decode_once
from gpu.video_io import (
    EncoderSettings,
    FrameFormat,
    FrameReader,
    FrameWriter,
    decoder_threads,
    temp_path_beside,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]
#: pixels of context kept around a mark's box for matting and filling
MARGIN = 8


@dataclass(frozen=True)
class Limits:
    """The largest video the engine accepts (the long side is checked against max_width)."""

    max_width: int = 4096
    max_height: int = 4096
    max_duration_s: float = 600.0


def check_limits(info: VideoInfo, limits: Limits) -> None:
    """Raise VideoTooLarge when the video is bigger or longer than the limits allow."""
    long_side, short_side = max(info.width, info.height), min(info.width, info.height)
    max_long, max_short = (
        max(limits.max_width, limits.max_height),
        min(limits.max_width, limits.max_height),
    )
    if long_side > max_long or short_side > max_short:
        raise VideoTooLarge(
            f"the video is {info.width}x{info.height}; the largest accepted is "
            f"{limits.max_width}x{limits.max_height}"
        )
    if info.duration_s > limits.max_duration_s:
        raise VideoTooLarge(
            f"the video lasts {info.duration_s:.0f} s; the longest accepted is {limits.max_duration_s:.0f} s"
        )
    if info.fps > 0 and info.frames > limits.max_duration_s * max(info.fps, 1) * 1.05 + 10:
        raise VideoTooLarge(
            "the video declares more frames than the longest accepted duration holds"
        )


def _picture_length(path: str | os.PathLike[str], info: VideoInfo, limits: Limits) -> VideoInfo:
    """The probe's info, with the picture's own length where the container's is over the
    limit only because of its sound: a container lasts as long as its longest stream, and
    a 5-minute video with 12 minutes of audio is a 5-minute job."""
    if not info.has_audio or info.duration_s <= limits.max_duration_s or info.fps <= 0:
        return info
    return with_counted_frames(path, info)


def process(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    options: Mapping[str, Any],
    progress: ProgressCallback | None = None,
    *,
    device: str = "auto",
    limits: Limits | None = None,
) -> dict[str, Any]:
    """Remove the watermark from `input_path` into `output_path`; return the report."""
    from gpu.device import batch_size_for, cpu_threads, prefer_sleeping_threads, resolve_device

    sleeping = prefer_sleeping_threads()  # before torch is imported
    import torch

    import gpu.plan  # noqa: F401 - imported here so that the timings leave the import out
    from gpu.removal import PreparedMatte

    started = time.monotonic()
    timings: dict[str, float] = {}
    report_progress = progress or (lambda _value, _step: None)
    output = Path(output_path)
    limits = limits or Limits()

    report_progress(0.0, "reading the video")
    info = _picture_length(input_path, with_real_rate(input_path, probe_video(input_path)), limits)
    check_limits(info, limits)
    spec = parse_region(str(options.get("region") or "auto"))
    crf = options.get("crf")
    encoder = EncoderSettings(
        preset=str(options.get("preset") or EncoderSettings.preset),
        crf=EncoderSettings.crf if crf is None else int(crf),  # 0 (lossless) is a real value
    )
    torch_device = resolve_device(device)
    torch.set_grad_enabled(False)
    on_cpu = torch_device.type == "cpu"
    if on_cpu:
        torch.set_num_threads(cpu_threads(streaming=False, sleeping=sleeping))
    timings["probe_s"] = time.monotonic() - started

    t0 = time.monotonic()
    report_progress(0.02, "finding the watermark")
    temp = temp_path_beside(output)
    spill = None
    mattes: list[Any] = []
    prepared: list[Any] = []
    try:
        samples, spill = _sampled(input_path, info, temp.with_suffix(".y4m"))
        if samples.frames.shape[0] == 0:
            raise NotAVideo("the video has no frames that can be decoded")
        fmt = samples.fmt
        expected = max(samples.clip_frames or info.frames, 1)
        pending = [samples]  # freed once the marks are found
        del samples

        def found() -> list[Any]:
            """The marks found, ready to be removed (the detection's time is taken)."""
            mattes.extend(_find_marks(pending.pop(), info, spec, torch_device))
            if on_cpu:
                torch.set_num_threads(cpu_threads(streaming=True, sleeping=sleeping))
            timings["detect_s"] = time.monotonic() - t0
            report_progress(0.1, "removing the watermark")
            prepared.extend(PreparedMatte(m, torch_device, (0.0, 255.0)) for m in mattes)
            return prepared

        def encoded(done: int) -> None:
            report_progress(0.1 + 0.88 * min(1.0, done / expected), "removing the watermark")

        target = _Target(
            input_path,
            temp,
            info,
            fmt,
            encoder,
            # sized for the largest region (the whole frame): the marks are not known yet
            batch_size_for(torch_device, fmt.width * fmt.height, fmt.width * fmt.height),
            encoded,
        )
        if spill is not None:
            frames, work_s, audio_mode = _removed_in_file(spill, target, found)
        else:
            frames, work_s, audio_mode = _removed_streaming(target, found)
        os.replace(temp, output)
    except BlankLogoError:
        _discard(temp)
        raise
    except Exception as exc:
        _discard(temp)
        raise EngineError(f"the engine failed: {exc.__class__.__name__}: {exc}") from exc
    finally:
        if spill is not None:
            spill.discard()
    timings["remove_s"] = work_s
    timings["stream_s"] = time.monotonic() - t0 - timings["detect_s"]
    timings["total_s"] = time.monotonic() - started
    if frames == 0:
        _discard(output)
        raise NotAVideo("the video has no frames that can be decoded")
    report_progress(1.0, "done")
    fps = fmt.fps or info.fps
    quarters, shown_w, shown_h = _as_shown(info, fmt)
    report: dict[str, Any] = {
        "regions": [
            {
                "box": m.reported_box.turned(quarters, fmt.width, fmt.height).as_list(),
                "opacity": round(float(m.opacity), 3),
                **_removed_span(pm, frames, fps),
                "method": m.method,
            }
            for m, pm in zip(mattes, prepared, strict=True)
        ],
        "frames": frames,
        "fps": round(fps, 4),
        "width": shown_w,
        "height": shown_h,
        "duration_s": round(frames / fps, 3) if fps else info.duration_s,
        "device": str(torch_device.type),
        "audio": audio_mode,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    if (fmt.width, fmt.height) != (info.width, info.height):
        report["note"] = "odd picture size: the last row/column was dropped for H.264 4:2:0"
    if audio_mode == "aac":
        report["note_audio"] = (
            f"audio codec {','.join(info.audio_codecs)} cannot go into MP4; re-encoded to AAC"
        )
    log.info(
        "removed %d mark(s) from %d frames in %.1fs (%s)",
        len(mattes),
        frames,
        timings["total_s"],
        torch_device.type,
    )
    return report


def _removed_span(pm: Any, frames: int, fps: float) -> dict[str, float]:
    """When a mark was removed: from its first to its last frame cleaned (frames near a
    time range's ends are judged one by one); the plan's range where none was."""
    if pm.cleaned is not None and fps:
        start, end = pm.cleaned[0] / fps, (pm.cleaned[1] + 1) / fps
    else:
        m = pm.matte
        start = m.start_s
        end = m.end_s if m.end_s is not None else frames / fps if fps else 0.0
    return {"start_s": round(start, 3), "end_s": round(end, 3)}


def _sampled(
    path: str | os.PathLike[str], info: VideoInfo, spill_path: Path
) -> tuple[Samples, Spill | None]:
    """The samples, and the clip's one decode where it is kept (`gpu.spill`)."""
    spill = decode_once(path, info, spill_path, **_evenly_spaced(info.forced_rate))
    samples = spill.samples() if spill is not None else None
    if samples is not None:
        return samples, spill
    if spill is not None:
        spill.discard()
    return sample_frames(path, info), None


@dataclass(frozen=True)
class _Target:
    """The clip, where and how its cleaned frames are encoded, and who hears of the
    progress."""

    source: str | os.PathLike[str]
    path: Path
    info: VideoInfo
    fmt: FrameFormat
    encoder: EncoderSettings
    batch: int
    encoded: Callable[[int], None]

    def writer(self) -> FrameWriter:
        return FrameWriter(
            self.path,
            self.fmt,
            self.info,
            audio_from=self.source if self.info.has_audio else None,
            encoder=self.encoder,
        )


def _removed_in_file(
    spill: Spill, target: _Target, found: Callable[[], list[Any]]
) -> tuple[int, float, str]:
    """The marks removed from the clip's one decode, read back a batch at a time, and the
    batches streamed to the encoder: (frames, seconds of removal, the audio's handling)."""
    prepared = found()
    with target.writer() as writer:
        frames, work_s = _cleaned(spill.batches(target.batch), writer, target, prepared)
        writer.finish()
    return frames, work_s, writer.audio_mode


def _removed_streaming(target: _Target, found: Callable[[], list[Any]]) -> tuple[int, float, str]:
    """The marks removed from a second decode of the clip, streamed to the encoder: the
    decoder starts first, and decodes ahead while the marks are found."""
    from gpu.device import read_ahead

    fmt = target.fmt
    with (
        FrameReader(
            target.source, threads=decoder_threads(), **_evenly_spaced(target.info.forced_rate)
        ) as reader,
        target.writer() as writer,
    ):
        if (reader.format.width, reader.format.height) != (fmt.width, fmt.height):
            raise EngineError("the decoder changed the picture size between passes")
        stream = reader.batches(target.batch, ahead=read_ahead(target.batch, fmt.frame_bytes))
        prepared = found()
        frames, work_s = _cleaned(_numbered(stream), writer, target, prepared)
        reader.finish()
        writer.finish()
    return frames, work_s, writer.audio_mode


def _cleaned(
    batches: Iterable[tuple[int, np.ndarray]],
    writer: FrameWriter,
    target: _Target,
    prepared: list[Any],
) -> tuple[int, float]:
    """Each (first frame's number, batch) cleaned of the `prepared` marks and written to the
    encoder: (frames written, seconds of removal)."""
    frames = 0
    work_s = 0.0
    for first, chunk in batches:
        w0 = time.monotonic()
        if prepared:
            _remove(chunk, first, target.fmt, prepared)
        work_s += time.monotonic() - w0
        writer.write_batch(chunk)
        frames = first + chunk.shape[0]
        target.encoded(frames)
    return frames, work_s


def _numbered(batches: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    """Each batch with the number of its first frame."""
    first = 0
    for chunk in batches:
        yield first, chunk
        first += chunk.shape[0]


def _evenly_spaced(rate: str) -> dict[str, Any]:
    """FrameReader options that give every decoded frame once, evenly spaced at `rate`
    (none for ""): each frame is stamped on its own slot, so the constant-rate output
    neither repeats nor drops one."""
    if not rate:
        return {}
    return {"video_filter": f"setpts=N/({rate})/TB", "output_args": ("-r", rate)}


def _as_shown(info: VideoInfo, fmt: Any) -> tuple[int, int, int]:
    """The quarter turns from the decoded picture to the picture as it is shown (a phone's
    portrait video is stored on its side), and its size as shown: reports and the user's
    regions are in that picture."""
    quarters = display_quarters(info.rotation)
    return (quarters, *shown_size(fmt.width, fmt.height, quarters))


def _find_marks(samples: Any, info: VideoInfo, spec: Any, device: Any) -> list[Any]:
    """The marks to remove, each with its matte: found, or in the user's region."""
    from gpu.plan import plan_marks

    fmt = samples.fmt
    explicit: Box | None = None
    corner: Box | None = None
    if spec is not None:
        # the user names the place in the picture as it is shown; the frames are as stored
        quarters, shown_w, shown_h = _as_shown(info, fmt)
        box = region_box(spec, shown_w, shown_h).turned(-quarters, shown_w, shown_h)
        if spec in CORNERS:
            corner = box
        else:
            explicit = box
    try:
        return plan_marks(samples, info, explicit=explicit, search=corner, device=device)
    except BlankLogoError:
        raise
    except Exception as exc:  # a bug or an odd clip in the maths: temporary, reported plainly
        raise EngineError(f"finding the watermark failed: {exc.__class__.__name__}: {exc}") from exc


def _remove(chunk: np.ndarray, first: int, fmt: Any, prepared: list[Any]) -> None:
    y, u, v = fmt.planes(chunk)
    for pm in prepared:
        span = pm.matte.active(first, chunk.shape[0])
        if span is None:
            continue
        lo, hi = span
        b = pm.matte.box
        luma = (slice(b.y, b.y + b.h), slice(b.x, b.x + b.w))
        chroma = (slice(b.y // 2, (b.y + b.h) // 2), slice(b.x // 2, (b.x + b.w) // 2))
        frames = np.arange(lo, hi)
        unsure = pm.matte.unsure_in(first, lo, hi)
        if unsure.any():  # near its coming and going: only the frames that show the mark
            shows = pm.present(y[frames[unsure], luma[0], luma[1]])
            frames = np.concatenate([frames[~unsure], frames[unsure][shows]])
        crops = [
            np.ascontiguousarray(y[frames, luma[0], luma[1]]),
            np.ascontiguousarray(u[frames, chroma[0], chroma[1]]),
            np.ascontiguousarray(v[frames, chroma[0], chroma[1]]),
        ]
        pm.apply(crops)
        if frames.size:
            pm.note_cleaned(first + int(frames.min()), first + int(frames.max()))
        for plane, crop, (rows, cols) in zip((y, u, v), crops, (luma, chroma, chroma), strict=True):
            plane[frames, rows, cols] = crop


def _discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
