"""Counting an animation's frames without decoding them, so frame floods cost nothing.

Pillow learns a GIF's frame count by walking every frame, which for a file of
tens of thousands of tiny frames is the flood itself. GIF blocks are easy to walk:
this counts image descriptors and stops as soon as the count passes the cap.
WebP and APNG declare their frame count in a header, which Pillow exposes as
`n_frames` without decoding.
"""

from __future__ import annotations

from PIL import Image

GIF_IMAGE, GIF_EXTENSION, GIF_TRAILER = 0x2C, 0x21, 0x3B


def _skip_sub_blocks(data: bytes, pos: int) -> int | None:
    """Position after a chain of data sub-blocks (length-prefixed, ended by a 0), or None."""
    end = len(data)
    while pos < end:
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    return None


def count_gif_frames(data: bytes, cap: int) -> int:
    """Image descriptors in a GIF, counting at most `cap + 1` (more is "too many" anyway).

    A truncated or malformed file counts the frames found before the damage: the
    decoder will refuse the damage itself.
    """
    if len(data) < 13 or not data.startswith((b"GIF87a", b"GIF89a")):
        return 0
    flags = data[10]
    pos = 13 + (3 << ((flags & 0x07) + 1) if flags & 0x80 else 0)
    frames = 0
    while pos < len(data) and frames <= cap:
        block = data[pos]
        if block == GIF_IMAGE:
            if pos + 10 > len(data):
                break
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 0x07) + 1) if local & 0x80 else 0)
            pos += 1  # LZW minimum code size
            frames += 1
        elif block == GIF_EXTENSION:
            pos += 2  # introducer and label
        elif block == GIF_TRAILER:
            break
        else:
            break
        after = _skip_sub_blocks(data, pos)
        if after is None:
            break
        pos = after
    return frames


def declared_frames(image: Image.Image, data: bytes, cap: int) -> int:
    """How many frames `image` has, without decoding any (capped at `cap + 1` for GIF)."""
    if image.format == "GIF":
        return max(1, count_gif_frames(data, cap))
    if image.format == "MPO":
        return 1  # a JPEG with extra pictures (depth maps, previews): the first one is the photo
    return max(1, int(getattr(image, "n_frames", 1)))
