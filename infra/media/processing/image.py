"""Images: decode under limits, turn upright, drop metadata, make renditions and a placeholder.

Choices made on purpose:
- Orientation: the EXIF orientation (all eight values) is applied to the pixels,
  then every piece of metadata is dropped (EXIF with GPS, XMP, IPTC/Photoshop,
  comments, text chunks): renditions are encoded from bare pixels with an empty
  `info`, so no encoder can copy anything across.
- Colour: an embedded ICC profile is converted to sRGB (then dropped); CMYK,
  palette, grey, 16-bit and other modes become RGB, or RGBA when the picture has
  real transparency. A fully opaque alpha channel is dropped.
- Alpha: WebP renditions keep it; the JPEG fallback is flattened onto white.
- Animation (GIF, WebP, APNG): kept animated (animated WebP) while its frames
  at rendition sizes fit `max_animated_pixels`; beyond that it is reduced to one
  chosen frame. The JPEG fallback is always that chosen frame, the one with the
  most detail (highest entropy), because first frames are often blank.
- Renditions: 1080, 640 and 320 px wide (never wider than the original), each in
  WebP and in JPEG. Placeholder: a 16 px WebP as a `data:` URL (LQIP).
- JPEG is decoded at a reduced scale when the largest rendition allows it
  (`draft`), which is most of the speed on phone photos.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageFile, PngImagePlugin

from events.media import RenditionFormat
from infra.media.processing.frames import declared_frames
from infra.media.processing.limits import Deadline, MediaRejected, ProcessingLimits

RENDITION_WIDTHS = (1080, 640, 320)
WEBP_QUALITY = 80
WEBP_METHOD = 2  # 4 is ~3% smaller at ~1.5x the time on photos (bench/media_bench.py)
JPEG_QUALITY = 82
PLACEHOLDER_SIZE = 16
FLATTEN_ONTO = (255, 255, 255)
MIN_FRAME_MS = 20  # browsers show shorter GIF frames for 100 ms
DEFAULT_FRAME_MS = 100
ENTROPY_SIZE = 64
EXIF_ORIENTATION = 0x0112
QUARTER_TURNS = frozenset({5, 6, 7, 8})
ORIENTATIONS: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Pillow's own guard against zlib bombs in PNG text and ICC chunks; we rely on it.
SAFE_TEXT_CHUNK = 1024 * 1024
SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class EncodedRendition:
    data: bytes
    width: int
    height: int
    format: RenditionFormat


@dataclass(frozen=True)
class ImageResult:
    width: int  # as displayed
    height: int
    renditions: tuple[EncodedRendition, ...]
    placeholder: str
    frames: int  # frames of the animated renditions; 1 for a still


def check_decoder_safety() -> None:
    """Process-wide Pillow switches someone could relax; every guarantee here needs them."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    if PngImagePlugin.MAX_TEXT_CHUNK > SAFE_TEXT_CHUNK:
        raise RuntimeError("PngImagePlugin.MAX_TEXT_CHUNK was raised; PNG zlib bombs would get through")


def _unreadable(exc: Exception, pillow_format: str, decoding: bool = False) -> MediaRejected:
    """A reason for a decoder error. Once the header parsed, any failure is damaged data."""
    text = str(exc) or type(exc).__name__
    if "decompressed data too large" in text.lower() or "too much memory used in text chunks" in text.lower():
        return MediaRejected(
            "a compressed metadata chunk inflates beyond its limit (possible zlib bomb)", "metadata_too_large"
        )
    if decoding or "truncated" in text or "broken data stream" in text or isinstance(exc, EOFError):
        return MediaRejected(f"image data is truncated or corrupt: {text}", "invalid_image")
    return MediaRejected(f"image cannot be read as {pillow_format}: {text}", "invalid_image")


def open_checked(data: bytes, pillow_format: str, max_pixels: int) -> Image.Image:
    """Parse only the header of `data` and check its declared size; no pixel is decoded.

    Pillow's process-wide `Image.MAX_IMAGE_PIXELS` is left alone (changing it from
    threads would race); its bomb error, raised above twice its limit, is a backstop.
    """
    check_decoder_safety()
    try:
        image = Image.open(io.BytesIO(data), formats=[pillow_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected("image has too many pixels (possible decompression bomb)", "image_too_large") from None
    except Exception as exc:
        raise _unreadable(exc, pillow_format) from None
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise MediaRejected("image has no pixels")
    if width * height > max_pixels:
        image.close()
        raise MediaRejected(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}", "image_too_large"
        )
    return image


def orientation_of(image: Image.Image) -> int:
    try:
        value = image.getexif().get(EXIF_ORIENTATION)
    except Exception:  # broken EXIF is not worth refusing the picture for
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def displayed_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in QUARTER_TURNS else (width, height)


def orient(image: Image.Image, orientation: int) -> Image.Image:
    op = ORIENTATIONS.get(orientation)
    return image.transpose(op) if op is not None else image


def rendition_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """Rendition sizes, largest first: the standard widths, never wider than the original."""
    sizes: list[tuple[int, int]] = []
    for target in RENDITION_WIDTHS:
        w = min(target, width)
        if sizes and sizes[-1][0] == w:
            continue
        sizes.append((w, max(1, round(height * w / width))))
    return sizes


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


def _to_srgb(image: Image.Image, icc: bytes, alpha: bool) -> Image.Image | None:
    """`image` converted from its embedded profile to sRGB, or None if the profile is unusable."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode not in ("RGB", "RGBA", "CMYK", "L"):
            return None
        out_mode = "RGBA" if alpha and image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, SRGB, outputMode=out_mode)
    except Exception:  # broken or exotic profiles: fall back to a plain conversion
        return None
    return converted


def normalize(image: Image.Image) -> Image.Image:
    """A new RGB or RGBA image of the same pixels in sRGB, with no metadata at all."""
    alpha = _has_transparency(image)
    icc = image.info.get("icc_profile")
    out: Image.Image | None = _to_srgb(image, icc, alpha) if icc else None
    if out is None:
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            # 16-bit grey: scale to 8 bits rather than clip everything above 255 to white.
            image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
        elif image.mode == "F":
            image = image.convert("L")
        out = image.convert("RGBA" if alpha else "RGB")
    if out.mode == "RGBA" and out.getchannel("A").getextrema()[0] == 255:
        out = out.convert("RGB")  # an alpha channel that hides nothing only costs bytes
    clean = out if out is not image else out.copy()
    clean.info = {}
    return clean


def flatten(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image
    ground = Image.new("RGB", image.size, FLATTEN_ONTO)
    ground.paste(image, mask=image.getchannel("A"))
    return ground


def _resized(source: Image.Image, sizes: Sequence[tuple[int, int]]) -> list[Image.Image]:
    """`source` at each size, each made from the previous (larger) one."""
    out: list[Image.Image] = []
    current = source
    for size in sizes:
        if current.size != size:
            current = current.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        out.append(current)
    return out


def _webp(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return buf.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    flatten(image).save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return buf.getvalue()


def _animated_webp(frames: Sequence[Image.Image], durations: Sequence[int], loop: int) -> bytes:
    buf = io.BytesIO()
    frames[0].save(
        buf,
        "WEBP",
        save_all=True,
        append_images=list(frames[1:]),
        duration=list(durations),
        loop=loop,
        quality=WEBP_QUALITY,
        method=WEBP_METHOD,
    )
    return buf.getvalue()


def placeholder_of(image: Image.Image) -> str:
    """A tiny blurred stand-in (LQIP): at most 16 px, as a `data:` URL of a few hundred bytes."""
    thumb = image.copy()
    thumb.thumbnail((PLACEHOLDER_SIZE, PLACEHOLDER_SIZE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, "WEBP", quality=40, method=WEBP_METHOD)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode()


def _load(image: Image.Image, pillow_format: str) -> None:
    try:
        image.load()
    except Exception as exc:
        raise _unreadable(exc, pillow_format, decoding=True) from None


def _detail(frame: Image.Image) -> float:
    small = flatten(frame).convert("L")
    small.thumbnail((ENTROPY_SIZE, ENTROPY_SIZE))
    return float(small.entropy())


def _frame_ms(image: Image.Image) -> int:
    value = image.info.get("duration", DEFAULT_FRAME_MS)
    ms = int(value) if isinstance(value, int | float) else DEFAULT_FRAME_MS
    return ms if ms >= MIN_FRAME_MS else DEFAULT_FRAME_MS


def _still_renditions(
    frame: Image.Image, sizes: Sequence[tuple[int, int]], deadline: Deadline
) -> list[EncodedRendition]:
    out: list[EncodedRendition] = []
    for image in _resized(frame, sizes):
        deadline.check("encoding renditions")
        out.append(EncodedRendition(_webp(image), image.width, image.height, "webp"))
        out.append(EncodedRendition(_jpeg(image), image.width, image.height, "jpeg"))
    return out


def _check_jpeg_scans(data: bytes, limits: ProcessingLimits) -> None:
    # 0xFF 0xDA is a start-of-scan marker; entropy-coded data never contains it (0xFF is stuffed).
    scans = data.count(b"\xff\xda")
    if scans > limits.max_jpeg_scans:
        raise MediaRejected(f"JPEG has {scans} scans; the limit is {limits.max_jpeg_scans}", "too_many_scans")


def _still(
    image: Image.Image, orientation: int, sizes: list[tuple[int, int]], deadline: Deadline
) -> tuple[list[EncodedRendition], Image.Image]:
    if image.format in ("JPEG", "MPO"):
        # Decode straight at the smallest scale (1/2, 1/4, 1/8) that still covers the largest rendition.
        shown_w, _ = displayed_size(*image.size, orientation)
        scale = sizes[0][0] / shown_w
        image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
    deadline.check("decoding")
    _load(image, image.format or "image")
    deadline.check("decoding")
    frame = orient(normalize(image), orientation)
    return _still_renditions(frame, sizes, deadline), frame


def _animated(
    image: Image.Image,
    frames: int,
    orientation: int,
    sizes: list[tuple[int, int]],
    limits: ProcessingLimits,
    deadline: Deadline,
) -> tuple[list[EncodedRendition], Image.Image, int]:
    pixels_per_frame = sum(w * h for w, h in sizes)
    keep_animated = frames * pixels_per_frame <= limits.max_animated_pixels
    by_size: list[list[Image.Image]] = [[] for _ in sizes]
    durations: list[int] = []
    loop = int(image.info.get("loop", 0) or 0)
    best: Image.Image | None = None
    best_detail = -1.0
    fmt = image.format or "image"
    for index in range(frames):
        deadline.check(f"decoding frame {index + 1} of {frames}")
        try:
            image.seek(index)
        except EOFError:
            raise MediaRejected(f"animation is truncated: frame {index + 1} of {frames} is missing") from None
        except Exception as exc:
            raise _unreadable(exc, fmt, decoding=True) from None
        _load(image, fmt)
        frame = orient(normalize(image), orientation)
        if frame.mode != "RGBA":
            frame = frame.convert("RGBA")  # every frame of one animation in one mode
        detail = _detail(frame)
        if detail > best_detail:
            best, best_detail = frame, detail
        if keep_animated:
            durations.append(_frame_ms(image))
            for kept, resized in zip(by_size, _resized(frame, sizes), strict=True):
                kept.append(resized)
    assert best is not None
    still = normalize(best)  # drops an alpha channel that turned out opaque
    renditions: list[EncodedRendition] = []
    if keep_animated:
        for kept, still_at_size in zip(by_size, _resized(still, sizes), strict=True):
            deadline.check("encoding the animation")
            w, h = kept[0].size
            renditions.append(EncodedRendition(_animated_webp(kept, durations, loop), w, h, "webp"))
            renditions.append(EncodedRendition(_jpeg(still_at_size), w, h, "jpeg"))
        return renditions, still, frames
    return _still_renditions(still, sizes, deadline), still, 1


def process_image(data: bytes, pillow_format: str, limits: ProcessingLimits, deadline: Deadline) -> ImageResult:
    """Renditions of an image upload, or MediaRejected with a reason. Bytes in, bytes out."""
    if len(data) > limits.max_file_bytes:
        raise MediaRejected(f"the file is larger than {limits.max_file_bytes} bytes", "file_too_large")
    if pillow_format == "JPEG":
        _check_jpeg_scans(data, limits)
    with open_checked(data, pillow_format, limits.max_pixels) as image:
        orientation = orientation_of(image)
        width, height = displayed_size(*image.size, orientation)
        if max(width / height, height / width) > limits.max_aspect_ratio:
            raise MediaRejected(
                f"image is {width}x{height}; sides may differ by at most {limits.max_aspect_ratio:g} times",
                "extreme_aspect_ratio",
            )
        frames = declared_frames(image, data, limits.max_frames)
        if frames > limits.max_frames:
            raise MediaRejected(f"animation has more than {limits.max_frames} frames", "too_many_frames")
        if frames * image.width * image.height > limits.max_animation_pixels:
            raise MediaRejected(
                f"animation has {frames} frames of {image.width}x{image.height}: more than "
                f"{limits.max_animation_pixels} pixels to decode",
                "too_many_frames",
            )
        sizes = rendition_sizes(width, height)
        if frames == 1:
            renditions, still = _still(image, orientation, sizes, deadline)
            kept_frames = 1
        else:
            renditions, still, kept_frames = _animated(image, frames, orientation, sizes, limits, deadline)
    return ImageResult(width, height, tuple(renditions), placeholder_of(still), kept_frames)
