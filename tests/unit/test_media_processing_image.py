"""Image processing: orientation, metadata, colour, alpha, animation, renditions, limits, hostile input."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable

import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat, PngImagePlugin

from infra.media.processing import Deadline, MediaRejected, ProcessedMedia, ProcessingLimits, process_media
from infra.media.processing.frames import count_gif_frames
from infra.media.processing.image import RENDITION_WIDTHS, rendition_sizes
from tests.unit import media_cases as mc

LIMITS = ProcessingLimits()


def run(data: bytes, limits: ProcessingLimits = LIMITS) -> ProcessedMedia:
    return process_media(data, limits)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def rejected(data: bytes, limits: ProcessingLimits = LIMITS) -> MediaRejected:
    with pytest.raises(MediaRejected) as err:
        process_media(data, limits)
    assert err.value.reason
    return err.value


# -- orientation ------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_every_exif_orientation_comes_out_upright(orientation: int, fmt: str) -> None:
    result = run(mc.oriented(orientation, fmt))
    assert (result.width, result.height) == mc.SHOWN
    for rendition in result.renditions:
        image = opened(rendition.data)
        assert image.size == mc.SHOWN, (orientation, rendition.format)
        colours = mc.quadrant_colours(image)
        for quadrant, expected in mc.QUADRANTS.items():
            assert mc.close(colours[quadrant], expected), (orientation, rendition.format, quadrant, colours)


def test_a_real_orientation_6_photo_comes_out_upright() -> None:
    data = mc.fixture("Landscape_6.jpg")  # stored 1200x1800, shown 1800x1200
    result = run(data)
    assert (result.width, result.height) == (1800, 1200)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    for rendition in result.renditions:
        out = opened(rendition.data).convert("RGB")
        assert out.width > out.height
        reference = upright.resize(out.size)
        sideways = Image.open(io.BytesIO(data)).convert("RGB").transpose(Image.Transpose.ROTATE_90).resize(out.size)
        right = sum(ImageStat.Stat(ImageChops.difference(out, reference)).mean)
        wrong = sum(ImageStat.Stat(ImageChops.difference(out, sideways)).mean)
        assert right < 15 and wrong > 3 * right, (rendition.width, rendition.format, right, wrong)


# -- metadata -----------------------------------------------------------------------------

TRACES = [b"Exif\x00\x00", b"GPS", b"Photoshop 3.0", b"8BIM", b"http://ns.adobe.com/xap", b"xmpmeta", b"taken at home"]


def assert_no_metadata(data: bytes) -> None:
    image = opened(data)
    assert not image.getexif(), "EXIF survived"
    assert mc.EXIF_GPS_IFD not in image.getexif()
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "photoshop", "comment", "icc_profile", "adobe", "Comment"):
        assert key not in image.info, key
    for trace in TRACES:
        assert trace not in data, trace


@pytest.mark.parametrize(
    "name", ["DSCN0010.jpg", "pil_sample_cmyk.jpg", "app13-multiple.jpg", "flower.webp", "Landscape_6.jpg", "chi.gif"]
)
def test_real_files_lose_all_metadata(name: str) -> None:
    source = opened(mc.fixture(name))
    assert source.info or source.getexif()  # there was something to drop
    for rendition in run(mc.fixture(name)).renditions:
        assert_no_metadata(rendition.data)


def test_a_stored_rendition_carries_no_gps_tag() -> None:
    data = mc.fixture("DSCN0010.jpg")
    assert mc.EXIF_GPS_IFD in Image.open(io.BytesIO(data)).getexif()
    result = run(data)
    assert [r.width for r in result.renditions] == [640, 640, 320, 320]
    for rendition in result.renditions:
        exif = opened(rendition.data).getexif()
        assert mc.EXIF_GPS_IFD not in exif and not exif.get_ifd(mc.EXIF_GPS_IFD)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_generated_gps_xmp_and_comments_are_dropped(fmt: str) -> None:
    data = mc.oriented(6, fmt)
    assert mc.EXIF_GPS_IFD in Image.open(io.BytesIO(data)).getexif()
    for rendition in run(data).renditions:
        assert_no_metadata(rendition.data)


def test_png_text_chunks_and_gif_comments_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at home")
    info.add_text("GPS", "43.46,11.88", zip=True)
    png = mc.encode(mc.photo((64, 48)), "PNG", pnginfo=info)
    gif = mc.encode(mc.photo((64, 48)).convert("P"), "GIF", comment=b"taken at home")
    for data in (png, gif):
        for rendition in run(data).renditions:
            assert_no_metadata(rendition.data)


def test_an_embedded_icc_profile_is_applied_then_dropped() -> None:
    image = mc.quadrants()
    result = run(mc.encode(image, "PNG", icc_profile=mc.srgb_icc()))
    for rendition in result.renditions:
        out = opened(rendition.data)
        assert "icc_profile" not in out.info
        colours = mc.quadrant_colours(out)
        assert all(mc.close(colours[q], mc.QUADRANTS[q]) for q in colours)


# -- colour and alpha ---------------------------------------------------------------------------


def test_cmyk_becomes_rgb_with_the_right_colours() -> None:
    result = run(mc.fixture("pil_sample_cmyk.jpg"))  # red "RED" on black
    for rendition in result.renditions:
        out = opened(rendition.data)
        assert out.mode == "RGB"
        colours = out.getcolors(out.width * out.height)
        assert colours is not None
        red = sum(n for n, (r, g, b) in colours if r > 180 and g < 90 and b < 90)
        cyan = sum(n for n, (r, g, b) in colours if r < 90 and g > 150 and b > 150)
        dark = sum(n for n, (r, g, b) in colours if r + g + b < 120)
        assert red > 300 and dark > 3000 and cyan == 0, (red, dark, cyan)


def test_generated_cmyk_red_stays_red() -> None:
    data = mc.encode(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG", quality=95)
    for rendition in run(data).renditions:
        assert mc.close(opened(rendition.data).convert("RGB").getpixel((20, 20)), (255, 0, 0), 30)  # type: ignore[arg-type]


def test_palette_without_transparency_becomes_rgb() -> None:
    data = mc.encode(mc.quadrants().convert("P", palette=Image.Palette.ADAPTIVE), "PNG")
    for rendition in run(data).renditions:
        out = opened(rendition.data)
        assert out.mode == "RGB"
        assert all(mc.close(c, mc.QUADRANTS[q]) for q, c in mc.quadrant_colours(out).items())


def test_alpha_is_kept_in_webp_and_flattened_onto_white_in_jpeg() -> None:
    result = run(mc.fixture("transparent.png"))
    webp = next(opened(r.data) for r in result.renditions if r.format == "webp")
    jpeg = next(opened(r.data) for r in result.renditions if r.format == "jpeg")
    assert webp.mode == "RGBA"
    alpha = webp.getchannel("A")
    assert alpha.getextrema() == (0, 255)
    assert jpeg.mode == "RGB"
    # Where the WebP is fully transparent, the JPEG shows white.
    clear = [xy for xy in ((x, y) for x in range(0, 200, 7) for y in range(0, 150, 7)) if alpha.getpixel(xy) == 0]
    assert len(clear) > 100
    assert all(min(jpeg.getpixel(xy)) > 235 for xy in clear)  # type: ignore[type-var]


def test_palette_transparency_is_kept_and_an_opaque_alpha_is_dropped() -> None:
    p = Image.new("P", (30, 20), 0)
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.paste(1, (0, 0, 15, 20))
    transparent = mc.encode(p, "PNG", transparency=0)
    webp = opened(run(transparent).renditions[0].data)
    assert webp.mode == "RGBA" and webp.getpixel((25, 10))[3] == 0  # type: ignore[index]
    opaque = mc.encode(Image.new("RGBA", (30, 20), (10, 200, 10, 255)), "PNG")
    assert opened(run(opaque).renditions[0].data).mode == "RGB"


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    ramp = Image.linear_gradient("L").resize((256, 64)).point(lambda v: v * 257, "I").convert("I;16")
    data = mc.encode(ramp, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = opened(run(data).renditions[0].data).convert("L")
    low, high = out.getextrema()  # type: ignore[misc]
    assert low < 30 and high > 220
    assert 90 < ImageStat.Stat(out).mean[0] < 165


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGB", "RGBA", "P", "I;16", "CMYK", "YCbCr"])
def test_every_mode_ends_as_rgb_or_rgba(mode: str) -> None:
    image = mc.photo((48, 32)).convert(mode)
    fmt = "JPEG" if mode in ("CMYK", "YCbCr") else "PNG"
    for rendition in run(mc.encode(image, fmt)).renditions:
        assert opened(rendition.data).mode in ("RGB", "RGBA")


# -- renditions and placeholder ------------------------------------------------------------------


def test_rendition_sizes_never_upscale() -> None:
    assert rendition_sizes(4000, 3000) == [(1080, 810), (640, 480), (320, 240)]
    assert rendition_sizes(3000, 4000) == [(1080, 1440), (640, 853), (320, 427)]
    assert rendition_sizes(500, 100) == [(500, 100), (320, 64)]
    assert rendition_sizes(320, 10) == [(320, 10)]
    assert rendition_sizes(1, 1) == [(1, 1)]


def test_a_large_photo_gets_three_widths_in_webp_and_jpeg() -> None:
    data = mc.encode(mc.photo((2400, 1600)), "JPEG", quality=90)
    result = run(data)
    assert (result.width, result.height) == (2400, 1600)
    shape = [(r.width, r.height, r.format) for r in result.renditions]
    assert shape == [(w, round(w * 2 / 3), f) for w in RENDITION_WIDTHS for f in ("webp", "jpeg")]
    for rendition in result.renditions:
        out = opened(rendition.data)
        assert out.size == (rendition.width, rendition.height)
        assert out.format == {"webp": "WEBP", "jpeg": "JPEG"}[rendition.format]


def test_the_placeholder_is_a_tiny_inline_image() -> None:
    result = run(mc.encode(mc.photo((900, 600)), "JPEG"))
    prefix = "data:image/webp;base64,"
    assert result.placeholder.startswith(prefix) and len(result.placeholder) < 1000
    thumb = opened(base64.b64decode(result.placeholder[len(prefix) :]))
    assert max(thumb.size) <= 16 and thumb.size[0] > thumb.size[1]


def test_processing_is_deterministic_so_keys_are_stable_under_redelivery() -> None:
    data = mc.fixture("flower.webp")
    assert [r.data for r in run(data).renditions] == [r.data for r in run(data).renditions]


# -- animation ------------------------------------------------------------------------------------


def frames_and_duration(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    total = 0
    for i in range(getattr(image, "n_frames", 1)):
        image.seek(i)
        image.load()
        total += int(image.info.get("duration", 0))
    return getattr(image, "n_frames", 1), total


def test_an_animated_gif_stays_animated_and_its_fallback_is_the_most_detailed_frame() -> None:
    data = mc.fixture("chi.gif")  # 31 frames of 100 ms; the first is almost blank
    result = run(data)
    webp = [r for r in result.renditions if r.format == "webp"]
    assert [r.width for r in webp] == [320]
    frames, duration = frames_and_duration(webp[0].data)
    assert frames > 1 and duration == 3100
    still = opened(next(r.data for r in result.renditions if r.format == "jpeg")).convert("L")
    first = Image.open(io.BytesIO(data)).convert("RGBA")
    first_flat = Image.new("RGB", first.size, (255, 255, 255))
    first_flat.paste(first, mask=first.getchannel("A"))
    assert still.entropy() > first_flat.convert("L").entropy() + 0.5


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_of_each_format_keep_their_frames(fmt: str) -> None:
    result = run(mc.animation(fmt, 12, (60, 40), durations=70))
    frames, duration = frames_and_duration(result.renditions[0].data)
    assert result.renditions[0].format == "webp"
    assert frames == 12 and duration == 12 * 70


def test_an_animation_too_big_to_keep_is_reduced_to_one_chosen_frame() -> None:
    frames = [Image.new("RGB", (400, 300), (255, 255, 255)) for _ in range(20)]
    frames[13] = mc.photo((400, 300))  # the one frame with something in it
    data = mc.encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(io.BytesIO(data)).n_frames == 3  # GIF merges the equal blank neighbours
    result = run(data, ProcessingLimits(max_animated_pixels=500_000))  # 3 x (400x300 + 320x240) > 500k
    assert [r.format for r in result.renditions] == ["webp", "jpeg", "webp", "jpeg"]
    for rendition in result.renditions:
        assert frames_and_duration(rendition.data)[0] == 1
        still = opened(rendition.data).convert("L")
        assert ImageStat.Stat(still).stddev[0] > 20  # the detailed frame, not a blank one


# -- limits and hostile input ----------------------------------------------------------------------


def bounded(fn: Callable[[], object], seconds: float = 3.0) -> None:
    started = time.monotonic()
    fn()
    assert time.monotonic() - started < seconds


def test_pixel_floods_declared_in_headers_are_refused_before_decoding() -> None:
    for data in (mc.png_pixel_flood(), mc.fixture("decompression_bomb.gif"), mc.png_pixel_flood(60_000, 1_000)):
        bounded(lambda data=data: rejected(data))  # type: ignore[misc]
        assert rejected(data).code == "image_too_large"


def test_our_pixel_limit_applies_below_pillows() -> None:
    data = mc.encode(Image.new("1", (2000, 1000)), "PNG")  # a few KB, 2 megapixels
    assert run(data, ProcessingLimits(max_pixels=2_000_000)).width == 2000
    assert rejected(data, ProcessingLimits(max_pixels=1_999_999)).code == "image_too_large"


def test_file_size_limit() -> None:
    data = mc.encode(mc.photo((64, 64)), "PNG")
    assert rejected(data, ProcessingLimits(max_file_bytes=len(data) - 1)).code == "file_too_large"


def test_zlib_bomb_in_a_png_text_chunk_before_the_pixels_is_refused() -> None:
    data = mc.png_text_bomb(before_pixels=True)
    assert len(data) < 200_000
    bounded(lambda: rejected(data))
    assert rejected(data).code == "metadata_too_large"


def test_zlib_bomb_after_the_pixels_costs_nothing_and_leaves_no_trace() -> None:
    data = mc.png_text_bomb(before_pixels=False)
    started = time.monotonic()
    try:
        result = run(data)
    except MediaRejected as err:
        assert err.code in ("metadata_too_large", "invalid_image")
    else:
        for rendition in result.renditions:
            assert_no_metadata(rendition.data)
    assert time.monotonic() - started < 3


def test_safety_switches_of_pillow_must_stay_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError):
        run(mc.encode(mc.photo((8, 8)), "PNG"))
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", 1 << 30)
    with pytest.raises(RuntimeError):
        run(mc.encode(mc.photo((8, 8)), "PNG"))


def test_gif_frames_are_counted_without_decoding() -> None:
    assert count_gif_frames(mc.gif_frame_flood(7), cap=1000) == 7
    assert count_gif_frames(mc.gif_frame_flood(50_000), cap=1000) == 1001
    assert count_gif_frames(mc.fixture("chi.gif"), cap=1000) == 31
    assert count_gif_frames(b"GIF89a", cap=10) == 0
    assert Image.open(io.BytesIO(mc.gif_frame_flood(7))).n_frames == 7  # the generator makes real GIFs


@pytest.mark.parametrize(
    "make",
    [
        lambda: mc.gif_frame_flood(50_000),
        lambda: mc.animation("PNG", 1001, (4, 4)),
        lambda: mc.noisy_animation("WEBP", 1001),
    ],
    ids=["gif-50000", "apng-1001", "webp-1001"],
)
def test_frame_floods_are_refused_quickly(make: Callable[[], bytes]) -> None:
    data = make()
    started = time.monotonic()
    assert rejected(data).code == "too_many_frames"
    assert time.monotonic() - started < 1.0


def test_animation_decoded_pixel_budget() -> None:
    data = mc.animation("GIF", 5, (100, 100))
    assert run(data, ProcessingLimits(max_pixels=20_000)).width == 100  # 50k pixels <= 4 x 20k
    assert rejected(data, ProcessingLimits(max_pixels=12_000)).code == "too_many_frames"  # 50k > 48k


def test_extreme_aspect_ratios_are_refused() -> None:
    assert rejected(mc.encode(Image.new("RGB", (10, 200)), "PNG")).code == "extreme_aspect_ratio"
    assert run(mc.encode(Image.new("RGB", (12, 144)), "PNG")).height == 144


def test_jpeg_scan_bombs_are_refused_before_decoding() -> None:
    data = mc.encode(mc.photo((32, 32)), "JPEG", progressive=True)
    cut = data.rindex(b"\xff\xd9")
    bomb = data[:cut] + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 500 + data[cut:]
    assert rejected(bomb).code == "too_many_scans"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_truncated_files_of_every_format_are_refused_or_whole(fmt: str) -> None:
    """Nothing half-made: a cut into the pixels is refused with a reason; a cut that only
    loses a trailer (a PNG's IEND) may decode, but then to exactly the whole picture."""
    data = mc.encode(mc.photo((300, 200)), fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    whole = [r.data for r in run(data).renditions]
    for cut in mc.truncations(data):
        try:
            result = run(cut)
        except MediaRejected as err:
            assert err.code in ("invalid_image", "unsupported_media_type"), (fmt, len(cut), err.reason)
            assert err.reason
        else:
            assert len(data) - len(cut) <= 16 and [r.data for r in result.renditions] == whole, (fmt, len(cut))
    err = rejected(data[: len(data) // 2])
    assert "truncated" in err.reason or "cannot be read" in err.reason


def test_the_truncated_fixture_is_refused_as_truncated() -> None:
    err = rejected(mc.fixture("truncated_jpeg.jpg"))
    assert err.code == "invalid_image" and "truncated" in err.reason


def test_truncated_animations_are_refused() -> None:
    data = mc.animation("GIF", 10, (60, 40))
    assert rejected(data[: len(data) * 2 // 3]).code == "invalid_image"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"plain text, honest", "unsupported_media_type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "invalid_image"),
        (b"GIF89a-not-really", "invalid_image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 32, "invalid_image"),
    ],
)
def test_wrong_and_broken_content_is_refused(data: bytes, code: str) -> None:
    assert rejected(data).code == code


def test_the_deadline_is_checked_between_steps() -> None:
    ticks = iter([0.0, 0.0, 100.0, 100.0, 100.0, 100.0, 100.0])
    deadline = Deadline(10.0, clock=lambda: next(ticks, 100.0))
    with pytest.raises(MediaRejected) as err:
        process_media(mc.encode(mc.photo((64, 64)), "PNG"), LIMITS, deadline)
    assert err.value.code == "processing_timeout"
