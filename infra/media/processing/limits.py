"""The limits every media job runs under, the clock it must beat, and how a job says no.

Every limit is checked before the work it bounds (pixel counts from headers before
decoding, frame counts before decoding frames, durations from ffprobe before
transcoding), so hostile input costs little. Work that cannot be bounded in
advance (one frame's decode, an encoder run) is bounded by the `Deadline`, checked
between steps; ffmpeg runs are killed when it passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class MediaRejected(Exception):
    """The upload cannot become media. `reason` is shown to its owner; `code` is for machines."""

    def __init__(self, reason: str, code: str = "invalid_media") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ProcessingUnavailable(RuntimeError):
    """The machine cannot process this kind of media right now (a tool is missing): retry later."""


@dataclass(frozen=True)
class ProcessingLimits:
    max_file_bytes: int = 30 * 1024 * 1024
    # Images.
    max_pixels: int = 50_000_000  # one frame, as stored
    max_frames: int = 1000  # more is a frame flood: refused, counted without decoding
    animation_pixel_factor: int = 4  # decoded pixels over all frames <= factor x max_pixels
    max_animated_pixels: int = 40_000_000  # output frames x rendition pixels kept in memory to stay animated
    max_aspect_ratio: float = 12.0  # a 1080-wide rendition must fit WebP's 16383 px
    max_jpeg_scans: int = 100  # progressive "scan bombs" decode for minutes
    # Video.
    max_video_seconds: float = 90.0
    max_video_pixels: int = 4096 * 2304  # 4K, either way round
    max_video_output_bytes: int = 64 * 1024 * 1024
    video_memory_bytes: int = 2 * 1024**3  # address space of each ffmpeg run
    # Every job.
    job_seconds: float = 60.0

    @property
    def max_animation_pixels(self) -> int:
        return self.max_pixels * self.animation_pixel_factor


class Deadline:
    """A job's time budget; `check` between steps, `remaining` for subprocess timeouts."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    def check(self, doing: str) -> None:
        if self._clock() >= self._end:
            raise MediaRejected(
                f"processing took longer than {self.seconds:g} s (while {doing})", code="processing_timeout"
            )
