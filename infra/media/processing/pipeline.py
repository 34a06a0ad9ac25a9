"""One entry point: the bytes of an upload in, its renditions out (or MediaRejected)."""

from __future__ import annotations

from dataclasses import dataclass

from commands.errors import Unsupported
from commands.media import sniff
from infra.media.processing.image import EncodedRendition, process_image
from infra.media.processing.limits import Deadline, MediaRejected, ProcessingLimits
from infra.media.processing.video import process_video


@dataclass(frozen=True)
class ProcessedMedia:
    width: int  # as displayed
    height: int
    renditions: tuple[EncodedRendition, ...]
    placeholder: str
    duration_ms: int | None = None


def process_media(data: bytes, limits: ProcessingLimits, deadline: Deadline | None = None) -> ProcessedMedia:
    """Pure apart from the clock and ffmpeg's temporary files: nothing is stored here.

    The type is sniffed again from the bytes: the worker trusts nothing the upload
    route decided, so the same function is safe on objects from any store.
    """
    deadline = deadline or Deadline(limits.job_seconds)
    if not data:
        raise MediaRejected("the file is empty", "empty_file")
    try:
        sniffed = sniff(data)
    except Unsupported as exc:
        raise MediaRejected(exc.message, exc.code) from None
    if sniffed.pillow_format is None:
        video = process_video(data, limits, deadline)
        return ProcessedMedia(video.width, video.height, video.renditions, video.placeholder, video.duration_ms)
    image = process_image(data, sniffed.pillow_format, limits, deadline)
    return ProcessedMedia(image.width, image.height, image.renditions, image.placeholder)
