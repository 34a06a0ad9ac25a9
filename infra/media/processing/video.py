"""Video: validate with ffprobe, transcode to H.264/AAC MP4 at 720p, take a poster frame.

ffprobe runs first and every limit is checked on what it reports (container,
streams, size, duration) before ffmpeg decodes anything. Both run as
subprocesses that are killed at the job's deadline, with their address space
capped (`prlimit`), reading only the local temporary file: the demuxer is forced
to `mov` (the family the upload was sniffed as), protocols are limited to `file`
and external data references stay off, so a hostile file cannot make ffmpeg read
anything else. The output carries no metadata (`-map_metadata -1`: no GPS
location atom, no device names) and is checked again with ffprobe; a transcode
that comes out much shorter than its input (a truncated upload) is refused.
The poster is a frame of the output, which then goes through the image pipeline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.media.processing.image import EncodedRendition, process_image
from infra.media.processing.limits import Deadline, MediaRejected, ProcessingLimits, ProcessingUnavailable

SHORT_SIDE = 720  # "720p", whichever way round the video is held
MAX_FPS = 60
VIDEO_MAXRATE = "3M"
AUDIO_BITRATE = "128k"
POSTER_AT_SECONDS = 1.0
PROBE_SECONDS = 15.0
# A transcode shorter than this share of its input lost frames to damage.
MIN_OUTPUT_SHARE = 0.9
MAX_STREAMS = 16
STDERR_CHARS = 300


@dataclass(frozen=True)
class VideoInfo:
    width: int  # as displayed, after rotation
    height: int
    duration_s: float
    has_audio: bool


@dataclass(frozen=True)
class VideoResult:
    width: int
    height: int
    duration_ms: int
    renditions: tuple[EncodedRendition, ...]  # the MP4 first, then the poster's images
    placeholder: str


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _bounded(cmd: list[str], limits: ProcessingLimits) -> list[str]:
    prlimit = shutil.which("prlimit")
    return [prlimit, f"--as={limits.video_memory_bytes}", "--", *cmd] if prlimit else cmd


def _run(cmd: list[str], limits: ProcessingLimits, timeout: float, doing: str) -> bytes:
    if timeout <= 0:
        raise MediaRejected(f"processing ran out of time before {doing}", "processing_timeout")
    try:
        done = subprocess.run(_bounded(cmd, limits), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise MediaRejected(f"{doing} took longer than {timeout:.0f} s", "processing_timeout") from None
    except OSError as exc:
        raise ProcessingUnavailable(f"cannot run {cmd[0]}: {exc}") from exc
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        detail = err[-1][:STDERR_CHARS] if err else f"exit status {done.returncode}"
        raise MediaRejected(f"{doing} failed: {detail}", "invalid_video")
    return done.stdout


INPUT_OPTIONS = ["-f", "mov", "-protocol_whitelist", "file", "-enable_drefs", "0"]


def _ffprobe(path: Path, limits: ProcessingLimits, deadline: Deadline, doing: str) -> dict[str, Any]:
    cmd = [
        "ffprobe",
        "-v",
        "error",
        *INPUT_OPTIONS,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        str(path),
    ]
    out = _run(cmd, limits, min(PROBE_SECONDS, deadline.remaining()), doing)
    try:
        info: dict[str, Any] = json.loads(out)
    except ValueError:
        raise MediaRejected(f"{doing} gave no readable answer", "invalid_video") from None
    return info


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            try:
                return int(float(side["rotation"])) % 360
            except (TypeError, ValueError):
                return 0
    try:
        return int(stream.get("tags", {}).get("rotate", 0)) % 360
    except (TypeError, ValueError):
        return 0


def _duration(info: dict[str, Any], stream: dict[str, Any]) -> float:
    for value in (info.get("format", {}).get("duration"), stream.get("duration")):
        if value is None:
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds > 0:
            return seconds
    raise MediaRejected("video has no duration", "invalid_video")


def describe(info: dict[str, Any], limits: ProcessingLimits) -> VideoInfo:
    """What ffprobe found, if it is a video we take; MediaRejected otherwise."""
    streams = info.get("streams") or []
    if len(streams) > MAX_STREAMS:
        raise MediaRejected(f"video has {len(streams)} streams; the limit is {MAX_STREAMS}", "invalid_video")
    videos = [
        s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        raise MediaRejected("the file has no video stream", "invalid_video")
    video = videos[0]
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width < 2 or height < 2:
        raise MediaRejected("video has no picture size", "invalid_video")
    if width * height > limits.max_video_pixels:
        raise MediaRejected(
            f"video is {width}x{height}; the limit is {limits.max_video_pixels} pixels a frame", "video_too_large"
        )
    duration = _duration(info, video)
    if duration > limits.max_video_seconds:
        raise MediaRejected(
            f"video is {duration:.1f} s long; the limit is {limits.max_video_seconds:g} s", "video_too_long"
        )
    if _rotation(video) in (90, 270):
        width, height = height, width
    has_audio = any(s.get("codec_type") == "audio" for s in streams)
    return VideoInfo(width, height, duration, has_audio)


def target_size(width: int, height: int) -> tuple[int, int]:
    """The output size: the short side at most 720, both sides even (H.264 4:2:0 needs it)."""
    scale = min(1.0, SHORT_SIDE / min(width, height))

    def even(v: float) -> int:
        return max(2, round(v / 2) * 2)

    return even(width * scale), even(height * scale)


def _transcode(src: Path, dst: Path, info: VideoInfo, limits: ProcessingLimits, deadline: Deadline) -> None:
    w, h = target_size(info.width, info.height)
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-xerror",
        *INPUT_OPTIONS,
        "-i",
        str(src),
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        "-sn",
        "-dn",
        "-t",
        f"{limits.max_video_seconds:g}",
        "-vf",
        f"scale={w}:{h}:flags=bicubic,format=yuv420p",
        "-fpsmax",
        str(MAX_FPS),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-maxrate",
        VIDEO_MAXRATE,
        "-bufsize",
        "6M",
        "-profile:v",
        "high",
        "-threads",
        "2",
        "-c:a",
        "aac",
        "-b:a",
        AUDIO_BITRATE,
        "-ac",
        "2",
        "-movflags",
        "+faststart",
        "-fs",
        str(limits.max_video_output_bytes),
        "-f",
        "mp4",
        "-y",
        str(dst),
    ]
    _run(cmd, limits, deadline.remaining(), "transcoding the video")


def _poster(src: Path, at: float, limits: ProcessingLimits, deadline: Deadline) -> bytes:
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-ss",
        f"{at:.3f}",
        *INPUT_OPTIONS,
        "-i",
        str(src),
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-map_metadata",
        "-1",
        "-c:v",
        "png",
        "-f",
        "image2pipe",
        "pipe:1",
    ]
    png = _run(cmd, limits, deadline.remaining(), "taking the poster frame")
    if not png:
        raise MediaRejected("the video has no frame to show", "invalid_video")
    return png


def process_video(data: bytes, limits: ProcessingLimits, deadline: Deadline) -> VideoResult:
    """The MP4 rendition, the poster's image renditions and a placeholder; or MediaRejected."""
    if len(data) > limits.max_file_bytes:
        raise MediaRejected(f"the file is larger than {limits.max_file_bytes} bytes", "file_too_large")
    if not ffmpeg_available():
        raise ProcessingUnavailable("ffmpeg and ffprobe are needed for video (scripts/ensure-ffmpeg.sh installs them)")
    with tempfile.TemporaryDirectory(prefix="glimpse-video-") as tmp:
        src, dst = Path(tmp) / "upload", Path(tmp) / "video.mp4"
        src.write_bytes(data)
        info = describe(_ffprobe(src, limits, deadline, "reading the video"), limits)
        deadline.check("validating the video")
        _transcode(src, dst, info, limits, deadline)
        size = dst.stat().st_size if dst.exists() else 0
        if size >= limits.max_video_output_bytes:
            raise MediaRejected(
                f"the transcoded video exceeds {limits.max_video_output_bytes} bytes", "video_too_large"
            )
        out = describe(_ffprobe(dst, limits, deadline, "checking the transcoded video"), limits)
        expected = min(info.duration_s, limits.max_video_seconds)
        if out.duration_s < expected * MIN_OUTPUT_SHARE:
            raise MediaRejected(
                f"video data is truncated or corrupt: {out.duration_s:.1f} s of {info.duration_s:.1f} s decoded",
                "invalid_video",
            )
        poster_png = _poster(dst, min(POSTER_AT_SECONDS, out.duration_s / 3), limits, deadline)
        mp4 = dst.read_bytes()
    poster = process_image(poster_png, "PNG", limits, deadline)
    rendition = EncodedRendition(mp4, out.width, out.height, "mp4")
    return VideoResult(
        width=info.width,
        height=info.height,
        duration_ms=round(out.duration_s * 1000),
        renditions=(rendition, *poster.renditions),
        placeholder=poster.placeholder,
    )
