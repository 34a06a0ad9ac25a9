"""Checks an upload's bytes and describes them: the adapter between Pillow and commands.

`probe` is CPU work on bytes only (no container, no I/O), so routes run it in a
thread pool. Hostile input must end as a 4xx with a reason, never a 500, so every
failure of the decoder is caught and explained:

- decompression bombs: the pixel count in the header is checked against our own
  limit before any pixel is decoded. Pillow's process-wide `Image.MAX_IMAGE_PIXELS`
  is left alone (changing it from threads would race); its own bomb error, raised in
  `Image.open` above twice that limit, is caught as a backstop.
- truncated or corrupt files: every frame is fully decoded (`load()`), which raises
  on missing data because `ImageFile.LOAD_TRUNCATED_IMAGES` stays False.
- frame floods: animations are decoded frame by frame within a frame count and a
  total pixel budget.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageFile

from commands.errors import Invalid
from commands.media import ProbedMedia, sniff

MAX_FRAMES = 1000
# Decoded pixels over all frames, as a multiple of the single-image limit.
FRAME_PIXEL_BUDGET_FACTOR = 4
# EXIF orientations that turn the picture a quarter: its shown width is its stored height.
QUARTER_TURNS = frozenset({5, 6, 7, 8})
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed, after the EXIF orientation
    height: int
    frames: int


def _reject(reason: str, code: str = "invalid_image") -> Invalid:
    return Invalid(reason, code=code)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(EXIF_ORIENTATION)
    except Exception:  # broken EXIF is not worth refusing the picture for
        return 1
    return value if isinstance(value, int) else 1


def inspect_image(data: bytes, pillow_format: str, max_pixels: int) -> ImageInfo:
    """Decode every frame of `data` as `pillow_format` within the limits, or raise Invalid."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone relaxed it process-wide; we rely on it
        raise RuntimeError("ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    try:
        # Between 1x and 2x its limit Pillow only warns (our own check below decides);
        # the warning is caught too in case warnings are turned into errors.
        image = Image.open(io.BytesIO(data), formats=[pillow_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _reject("image has too many pixels (possible decompression bomb)", "image_too_large") from None
    except Exception as exc:
        raise _reject(f"image cannot be read as {pillow_format}: {exc}") from None
    with image:
        width, height = image.size
        pixels = width * height
        if width < 1 or height < 1:
            raise _reject("image has no pixels")
        if pixels > max_pixels:
            raise _reject(f"image is {width}x{height} = {pixels} pixels; the limit is {max_pixels}", "image_too_large")
        budget = max_pixels * FRAME_PIXEL_BUDGET_FACTOR
        frames = 0
        try:
            while True:
                image.load()
                frames += 1
                if frames > MAX_FRAMES or frames * pixels > budget:
                    raise _reject(
                        f"animation has too many frames (limit {MAX_FRAMES}, {budget} pixels in all)", "too_many_frames"
                    )
                try:
                    image.seek(image.tell() + 1)
                except EOFError:
                    break
        except Invalid:
            raise
        except Exception as exc:
            raise _reject(f"image data is truncated or corrupt: {exc}") from None
        if _orientation(image) in QUARTER_TURNS:
            width, height = height, width
    return ImageInfo(width, height, frames)


def probe(data: bytes, max_pixels: int) -> ProbedMedia:
    """Everything an upload must pass besides its size: type from the bytes, full decode."""
    sniffed = sniff(data)
    width = height = 0  # video is stored as-is; its size is not read in the embedded mode
    if sniffed.pillow_format is not None:
        info = inspect_image(data, sniffed.pillow_format, max_pixels)
        width, height = info.width, info.height
    return ProbedMedia(
        content_type=sniffed.content_type,
        kind=sniffed.kind,
        width=width,
        height=height,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
