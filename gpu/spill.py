"""One decode of a short clip, kept on disk beside the output.

The engine needs the clip twice: sampled frames from across all of it to find the marks,
then every frame in order to remove them. A decode of its own for each costs a second
decode of the clip, which on a CPU is about as much as everything else the engine adds to
a plain re-encode. Where the decoded clip fits in a bounded amount of disk, the decoder
writes it once to a YUV4MPEG file: the samples are read from it, and then every frame, on
its way to the encoder. Longer clips (or too little room, or a decode that does not
end cleanly) are decoded twice, as before: `None` here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import NotAVideo
from gpu.probe import VideoInfo
from gpu.sampling import MAX_SAMPLES, Samples, pick_by_pictures, sample_cap
from gpu.video_io import (
    FRAME_LINE,
    FrameFormat,
    decode_command,
    looks_truncated,
    parse_header,
)

#: the most disk one decoded clip may take (2 GiB: 25 s of 1080p, 50 s of 720p at 30 fps)
SPILL_MAX_BYTES = 2 << 30
#: and at most this share of the free space where it is written
SPILL_FREE_SHARE = 0.5
#: and at most this share of the memory free for the page cache: beyond it the kernel
#: starts writing the file out to the disk (its default dirty_background_ratio), work for a
#: file that lives seconds (a worker with 2 GB of memory keeps 200 MB: 5 s of 720p)
SPILL_MEMORY_SHARE = 0.1
#: filesystems kept in memory: a file there is memory, which the stream keeps flat
_IN_MEMORY = frozenset({"tmpfs", "ramfs"})
#: the filter that logs each frame's kind (keyframe or not, I, P or B) as it is decoded
_SHOW_PICTURES = "showinfo=checksum=0"
_PICTURE = re.compile(r"\[Parsed_showinfo[^\]]*\] n: *\d+ .* iskey:(\d) type:(\w+)")


@dataclass
class Spill:
    """A clip's frames, decoded once to `path` (YUV4MPEG: a header, then FRAME lines)."""

    path: Path
    fmt: FrameFormat
    frames: int
    #: each frame's kind (keyframe, picture type "I", "P", "B"...): empty where unknown
    pictures: list[tuple[bool, str]] = field(default_factory=list)

    def offset(self, index: int) -> int:
        """Where frame `index`'s FRAME line starts in the file."""
        return len(self.fmt.header) + index * (len(FRAME_LINE) + self.fmt.frame_bytes)

    def samples(self, max_samples: int = MAX_SAMPLES) -> Samples | None:
        """About `max_samples` frames spread over the clip, the ones `sample_frames` picks
        (None where a frame is not where it should be: the file is not as `decode_command`
        writes it). Detection and matting were built on those, and other picks are not as
        good: 48 evenly spaced frames of a 64-frame clip hid a logo's coming over a pan (the
        samples so close that nothing moved between them), and the B-frames' coarser coding
        cost a faint logo's matte 4 dB; all but the B-frames found 13 of the benchmark's 25
        marks, not 17."""
        cap = sample_cap(self.fmt.frame_bytes, max_samples)
        indices = pick_by_pictures(self.pictures, self.frames, cap)
        frames = np.empty((indices.size, self.fmt.frame_bytes), np.uint8)
        marker = bytearray(len(FRAME_LINE))
        with open(self.path, "rb", buffering=0) as f:
            for row, index in enumerate(indices):
                offset = self.offset(int(index))
                got = os.preadv(f.fileno(), [marker, frames[row].data], offset)
                if marker != FRAME_LINE or got != len(marker) + self.fmt.frame_bytes:
                    return None
        return Samples(frames=frames, indices=indices, fmt=self.fmt, clip_frames=self.frames)

    def batches(self, batch: int) -> Iterator[tuple[int, np.ndarray]]:
        """Every frame in order, a batch at a time: (the first one's number, a (n,
        frame_bytes) batch). One buffer serves every batch: copy what you keep."""
        row = len(FRAME_LINE) + self.fmt.frame_bytes
        buffer = np.empty((batch, row), np.uint8)
        with open(self.path, "rb", buffering=0) as f:
            for first in range(0, self.frames, batch):
                n = min(batch, self.frames - first)
                if os.preadv(f.fileno(), [buffer[:n].data], self.offset(first)) != n * row:
                    raise NotAVideo("the decoded frames ended early")
                yield first, buffer[:n, len(FRAME_LINE) :]

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def decode_once(
    path: str | os.PathLike[str],
    info: VideoInfo,
    spill_path: Path,
    *,
    video_filter: str | None = None,
    output_args: Sequence[str] = (),
) -> Spill | None:
    """The clip decoded to `spill_path` (the same frames a FrameReader with these options
    gives), or None where it would not fit or the decode did not end cleanly (a broken
    file is then decoded, and reported, the usual way; nothing is left at `spill_path`)."""
    row = len(FRAME_LINE) + info.width * info.height * 3 // 2  # a FRAME line and its frame
    limit = room_for_spill(spill_path.parent)
    expected = max(info.frames, round(info.duration_s * info.fps))
    if limit <= 0 or expected * row > limit:
        return None
    # -fs stops the decoder past the limit: a clip longer than its header says is cut
    # there, and decoded twice instead
    cmd = decode_command(
        path,
        output=str(spill_path),
        video_filter=",".join(filter(None, (video_filter, _SHOW_PICTURES))),
        output_args=(*output_args, "-fs", str(limit)),
        loglevel="info",
    )
    spill: Spill | None = None
    try:
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        log = done.stderr.decode("utf-8", "replace")
        size = spill_path.stat().st_size if done.returncode == 0 else 0
        if 0 < size < limit and not looks_truncated(log):
            with open(spill_path, "rb") as f:
                fmt = parse_header(f.readline(4096))
            count, rest = divmod(size - len(fmt.header), len(FRAME_LINE) + fmt.frame_bytes)
            if count > 0 and rest == 0:
                pictures = [(key == "1", kind) for key, kind in _PICTURE.findall(log)]
                spill = Spill(spill_path, fmt, count, pictures)
    except (OSError, ValueError, NotAVideo):
        spill = None
    finally:
        if spill is None:
            spill_path.unlink(missing_ok=True)
    return spill


def room_for_spill(directory: Path) -> int:
    """How many bytes of decoded frames may be written to `directory`: none on a filesystem
    kept in memory (/tmp is tmpfs in many containers), else the least of SPILL_MAX_BYTES, a
    share of the free disk and a share of the free memory."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return 0
    if _filesystem(directory) in _IN_MEMORY:
        return 0
    room = min(SPILL_MAX_BYTES, free * SPILL_FREE_SHARE)
    memory = _free_memory()
    if memory is not None:
        room = min(room, memory * SPILL_MEMORY_SHARE)
    return int(room)


def _filesystem(directory: Path) -> str:
    """The type of the filesystem `directory` is on, by /proc/self/mounts ("" unknown)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    path = os.path.realpath(directory)
    longest, kind = "", ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(longest):  # a later mount hides an earlier one
            longest, kind = point, fields[2]
    return kind


#: (limit, usage) files of this process's memory cgroup: v2, then v1
_CGROUP_MEMORY = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _free_memory() -> int | None:
    """Bytes of memory free for use: the system's MemAvailable, or less where the memory
    cgroup allows less; None where neither can be read."""
    free: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in _CGROUP_MEMORY:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max", or v1's near-2**63: none
            free.append(max(0, int(limit) - usage))
        break
    return min(free) if free else None
