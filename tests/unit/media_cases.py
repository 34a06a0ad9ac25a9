"""Media inputs made on the spot: oriented photos, metadata-laden files, hostile files, videos.

Hostile cases are built from their definition (a header that declares a pixel
flood, a zTXt chunk that inflates past its limit, thousands of frames), not copied
from a known sample, so the tests check the rule rather than one file.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from PIL import Image, ImageCms

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
EXIF_ORIENTATION = 0x0112
EXIF_GPS_IFD = 0x8825
# Display size of the oriented test picture and the colour of each quadrant.
SHOWN = (80, 48)
QUADRANTS = {
    "top_left": (220, 30, 30),
    "top_right": (30, 200, 30),
    "bottom_left": (30, 30, 220),
    "bottom_right": (240, 220, 30),
}
# What turns the displayed picture into the stored one, for each EXIF orientation
# (the inverse of what a viewer applies).
TO_STORED: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def quadrants(size: tuple[int, int] = SHOWN) -> Image.Image:
    """A picture whose four quadrants have four colours: any turn or flip shows."""
    w, h = size
    image = Image.new("RGB", size)
    for name, box in {
        "top_left": (0, 0, w // 2, h // 2),
        "top_right": (w // 2, 0, w, h // 2),
        "bottom_left": (0, h // 2, w // 2, h),
        "bottom_right": (w // 2, h // 2, w, h),
    }.items():
        image.paste(QUADRANTS[name], box)
    return image


def quadrant_colours(image: Image.Image) -> dict[str, tuple[int, int, int]]:
    """The colour at the centre of each quadrant of a displayed picture."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    points = {
        "top_left": (w // 4, h // 4),
        "top_right": (3 * w // 4, h // 4),
        "bottom_left": (w // 4, 3 * h // 4),
        "bottom_right": (3 * w // 4, 3 * h // 4),
    }
    return {name: rgb.getpixel(xy) for name, xy in points.items()}  # type: ignore[misc]


def close(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def gps_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Glimpse Test Camera"  # Make
    if orientation is not None:
        exif[EXIF_ORIENTATION] = orientation
    gps = exif.get_ifd(EXIF_GPS_IFD)
    gps[1] = "N"
    gps[2] = (43.0, 28.0, 2.81)
    gps[3] = "E"
    gps[4] = (11.0, 53.0, 6.45)
    return exif


def oriented(orientation: int, fmt: str = "JPEG", gps: bool = True) -> bytes:
    """The quadrant picture stored turned per `orientation`, tagged so a viewer shows it upright."""
    op = TO_STORED[orientation]
    stored = quadrants() if op is None else quadrants().transpose(op)
    exif = gps_exif(orientation) if gps else Image.Exif()
    if not gps:
        exif[EXIF_ORIENTATION] = orientation
    params: dict[str, object] = {"exif": exif.tobytes()}
    if fmt == "JPEG":
        params |= {"quality": 95, "comment": b"taken at home", "xmp": b"<x:xmpmeta>lat 43.46</x:xmpmeta>"}
    return encode(stored, fmt, **params)


def photo(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Something photo-like (gradients and texture), so encoders do real work."""
    base = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40 + seed % 20)
    mandel = Image.effect_mandelbrot(size, (-2.0, -1.2, 0.8, 1.2), 60)
    return Image.merge("RGB", (base, noise, mandel))


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # type: ignore[no-any-return]


# -- hostile and broken files -----------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_pixel_flood(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG that declares a huge size and carries one tiny compressed row."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")


def png_text_bomb(before_pixels: bool, inflated: int = 64 * 1024 * 1024) -> bytes:
    """A small PNG with a zTXt chunk of `inflated` zero bytes compressed to a few KB."""
    image = encode(Image.new("RGB", (16, 16), (90, 90, 90)), "PNG")
    bomb = _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * inflated, 9))
    marker = b"IDAT" if before_pixels else b"IEND"
    cut = image.index(marker) - 4  # chunks start with their 4-byte length
    return image[:cut] + bomb + image[cut:]


def gif_frame_flood(frames: int, size: int = 1) -> bytes:
    """A GIF of `frames` 1x1 frames, written block by block (tens of thousands cost nothing)."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", size, size, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for i in range(frames):
        out += b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # 10 ms
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, size, size, 0)
        out += b"\x02\x02" + (b"\x44\x01" if i % 2 else b"\x4c\x01") + b"\x00"
    out += b"\x3b"
    return bytes(out)


def animation(fmt: str, frames: int, size: tuple[int, int] = (40, 30), durations: int = 80) -> bytes:
    """`frames` distinct frames (encoders merge equal neighbours): a bar that grows, in a colour
    that encodes the frame number."""
    images = []
    for i in range(frames):
        frame = Image.new("RGB", size, (255, 255, 255))
        frame.paste((i % 256, (i // 256) % 256, 200), (0, 0, max(1, size[0] * (i + 1) // frames), size[1]))
        images.append(frame)
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=durations, loop=0)


def noisy_animation(fmt: str, frames: int, size: tuple[int, int] = (8, 8)) -> bytes:
    """Frames of random noise: no encoder can merge them, so the file really has `frames` frames."""
    images = [Image.effect_noise(size, 64).convert("RGB") for _ in range(frames)]
    lossless = {"lossless": True} if fmt == "WEBP" else {}
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=10, **lossless)


def truncations(data: bytes) -> list[bytes]:
    return [data[: len(data) * k // 10] for k in (3, 6, 9)] + [data[:-16]]


# -- video ---------------------------------------------------------------------------------


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def make_video(
    path: Path,
    seconds: float = 2.0,
    size: str = "320x240",
    rate: int = 15,
    audio: bool = True,
    location: bool = True,
    rotate: int | None = None,
    container: str = "mp4",
) -> bytes:
    """A short test video from ffmpeg's own `testsrc` (and a sine tone), tagged with a GPS location."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    cmd += ["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate={rate}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if location:
        cmd += ["-metadata", "location=+43.4674+011.8851/", "-metadata", "title=at home"]
    plain = path.with_suffix(f".plain.{container}")
    cmd += ["-f", "mov" if container == "mov" else "mp4", str(plain)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    if rotate is None:
        plain.rename(path)
    else:  # ffmpeg 5 writes a display matrix when remuxing with a `rotate` tag
        subprocess.run(
            [
                *("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(plain), "-c", "copy", "-map", "0"),
                *("-metadata:s:v:0", f"rotate={rotate}", str(path)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return path.read_bytes()


def ffprobe(data: bytes, tmp: Path) -> dict[str, object]:
    import json

    path = tmp / "probe.mp4"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result
