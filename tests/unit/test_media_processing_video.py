"""Video processing with the real ffprobe/ffmpeg on videos made by ffmpeg's `testsrc`."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from infra.media.processing import Deadline, MediaRejected, ProcessingLimits, process_media
from infra.media.processing.video import describe, target_size
from tests.unit import media_cases as mc

pytestmark = pytest.mark.skipif(not mc.have_ffmpeg(), reason="ffmpeg is not installed (scripts/ensure-ffmpeg.sh)")

LIMITS = ProcessingLimits()


def streams(info: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in info["streams"] if s["codec_type"] == kind]


def test_an_mp4_becomes_h264_aac_with_a_poster_and_no_location(tmp_path: Path) -> None:
    data = mc.make_video(tmp_path / "in.mp4", seconds=2, size="320x240")
    assert "location" in str(mc.ffprobe(data, tmp_path)["format"])
    result = process_media(data, LIMITS)
    assert (result.width, result.height) == (320, 240)
    assert result.duration_ms is not None and abs(result.duration_ms - 2000) < 150
    video, *posters = result.renditions
    assert (video.format, video.width, video.height) == ("mp4", 320, 240)
    info = mc.ffprobe(video.data, tmp_path)
    assert [s["codec_name"] for s in streams(info, "video")] == ["h264"]
    assert [s["codec_name"] for s in streams(info, "audio")] == ["aac"]
    assert streams(info, "video")[0]["pix_fmt"] == "yuv420p"
    tags = str(info["format"].get("tags", {})) + str([s.get("tags") for s in info["streams"]])  # type: ignore[attr-defined]
    assert "location" not in tags and "43.46" not in tags and "at home" not in tags
    assert [(p.format, p.width) for p in posters] == [("webp", 320), ("jpeg", 320)]
    poster = Image.open(io.BytesIO(posters[0].data))
    assert poster.size == (320, 240) and not poster.getexif()
    assert result.placeholder.startswith("data:image/webp;base64,")


def test_video_larger_than_720p_is_scaled_to_a_720_short_side(tmp_path: Path) -> None:
    data = mc.make_video(tmp_path / "in.mp4", seconds=1, size="1280x960", rate=10, audio=False)
    result = process_media(data, LIMITS)
    video = result.renditions[0]
    assert (result.width, result.height) == (1280, 960)  # the media's own size, as displayed
    assert (video.width, video.height) == (960, 720)
    assert [(r.format, r.width) for r in result.renditions[1:]] == [
        ("webp", 960),
        ("jpeg", 960),
        ("webp", 640),
        ("jpeg", 640),
        ("webp", 320),
        ("jpeg", 320),
    ]
    assert not streams(mc.ffprobe(video.data, tmp_path), "audio")


def test_a_rotated_phone_video_is_reported_and_transcoded_upright(tmp_path: Path) -> None:
    data = mc.make_video(tmp_path / "in.mp4", seconds=1, size="320x240", rotate=90)
    result = process_media(data, LIMITS)
    assert (result.width, result.height) == (240, 320)
    assert (result.renditions[0].width, result.renditions[0].height) == (240, 320)
    info = mc.ffprobe(result.renditions[0].data, tmp_path)
    assert (streams(info, "video")[0]["width"], streams(info, "video")[0]["height"]) == (240, 320)
    assert Image.open(io.BytesIO(result.renditions[1].data)).size == (240, 320)


def test_quicktime_input_comes_out_as_mp4(tmp_path: Path) -> None:
    data = mc.make_video(tmp_path / "in.mov", seconds=1, container="mov")
    assert data[4:12] == b"ftypqt  "
    result = process_media(data, LIMITS)
    assert result.renditions[0].format == "mp4"
    assert "mp4" in str(mc.ffprobe(result.renditions[0].data, tmp_path)["format"])


def test_too_long_is_refused_before_transcoding(tmp_path: Path) -> None:
    data = mc.make_video(tmp_path / "in.mp4", seconds=3)
    started = time.monotonic()
    with pytest.raises(MediaRejected) as err:
        process_media(data, ProcessingLimits(max_video_seconds=2))
    assert err.value.code == "video_too_long" and "limit is 2 s" in err.value.reason
    assert time.monotonic() - started < 5


def test_too_many_pixels_is_refused(tmp_path: Path) -> None:
    data = mc.make_video(tmp_path / "in.mp4", seconds=1, size="640x480", audio=False)
    with pytest.raises(MediaRejected) as err:
        process_media(data, ProcessingLimits(max_video_pixels=640 * 480 - 1))
    assert err.value.code == "video_too_large"


@pytest.mark.parametrize("share", [0.3, 0.6, 0.9])
def test_truncated_videos_are_refused(tmp_path: Path, share: float) -> None:
    data = mc.make_video(tmp_path / "in.mp4", seconds=2)
    with pytest.raises(MediaRejected) as err:
        process_media(data[: int(len(data) * share)], LIMITS)
    assert err.value.code == "invalid_video" and err.value.reason


def test_a_truncated_faststart_video_is_refused_not_shortened(tmp_path: Path) -> None:
    """moov first: ffprobe reads it fine, the frames are missing; the output must not be a stub."""
    data = mc.make_video(tmp_path / "in.mp4", seconds=3, size="320x240")
    fast = process_media(data, LIMITS).renditions[0].data  # our own output is faststart
    with pytest.raises(MediaRejected) as err:
        process_media(fast[: len(fast) // 2], LIMITS)
    assert err.value.code == "invalid_video"


def test_mp4_magic_with_garbage_and_audio_only_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaRejected) as err:
        process_media(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 500, LIMITS)
    assert err.value.code == "invalid_video"
    audio = tmp_path / "a.mp4"
    import subprocess

    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio)],
        check=True,
        timeout=60,
    )
    with pytest.raises(MediaRejected) as err:
        process_media(audio.read_bytes(), LIMITS)
    assert "no video stream" in err.value.reason


def test_ffmpeg_is_killed_at_the_deadline(tmp_path: Path) -> None:
    data = mc.make_video(tmp_path / "in.mp4", seconds=4, size="1280x720", rate=30)
    started = time.monotonic()
    with pytest.raises(MediaRejected) as err:
        process_media(data, LIMITS, Deadline(0.3))
    assert err.value.code == "processing_timeout"
    assert time.monotonic() - started < 3


# -- what ffprobe reports, judged without running it ---------------------------------------


def probe_info(**video: Any) -> dict[str, Any]:
    stream = {"codec_type": "video", "width": 1920, "height": 1080} | video
    return {"format": {"duration": "12.5"}, "streams": [stream, {"codec_type": "audio"}]}


def test_describe_reads_size_rotation_duration_and_audio() -> None:
    info = describe(probe_info(), LIMITS)
    assert (info.width, info.height, info.duration_s, info.has_audio) == (1920, 1080, 12.5, True)
    rotated = describe(probe_info(side_data_list=[{"rotation": -90}]), LIMITS)
    assert (rotated.width, rotated.height) == (1080, 1920)
    tagged = describe(probe_info(tags={"rotate": "270"}), LIMITS)
    assert (tagged.width, tagged.height) == (1080, 1920)


@pytest.mark.parametrize(
    ("info", "code"),
    [
        ({"format": {"duration": "1"}, "streams": [{"codec_type": "audio"}]}, "invalid_video"),
        (
            {
                "format": {"duration": "1"},
                "streams": [{"codec_type": "video", "width": 64, "height": 64, "disposition": {"attached_pic": 1}}],
            },
            "invalid_video",
        ),
        ({"format": {}, "streams": [{"codec_type": "video", "width": 64, "height": 64}]}, "invalid_video"),
        ({"format": {"duration": "1"}, "streams": [{"codec_type": "video", "width": 0, "height": 0}]}, "invalid_video"),
        ({"format": {"duration": "1"}, "streams": [{"codec_type": "data"}] * 17}, "invalid_video"),
        (
            {"format": {"duration": "91"}, "streams": [{"codec_type": "video", "width": 64, "height": 64}]},
            "video_too_long",
        ),
        (
            {"format": {"duration": "1"}, "streams": [{"codec_type": "video", "width": 8192, "height": 4320}]},
            "video_too_large",
        ),
    ],
)
def test_describe_refuses(info: dict[str, Any], code: str) -> None:
    with pytest.raises(MediaRejected) as err:
        describe(info, LIMITS)
    assert err.value.code == code


def test_target_size_keeps_the_short_side_at_most_720_and_even() -> None:
    assert target_size(1920, 1080) == (1280, 720)
    assert target_size(1080, 1920) == (720, 1280)
    assert target_size(640, 480) == (640, 480)
    assert target_size(3840, 2160) == (1280, 720)
    assert target_size(321, 241) == (320, 240)
    assert all(v % 2 == 0 for v in target_size(1001, 777))
