"""Real images for demo posts and stories, drawn with Pillow (no files shipped)."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

PALETTES = [
    ((255, 94, 98), (255, 195, 113)),
    ((67, 206, 162), (24, 90, 157)),
    ((142, 45, 226), (74, 0, 224)),
    ((250, 208, 196), (255, 209, 255)),
    ((17, 153, 142), (56, 239, 125)),
    ((252, 74, 26), (247, 183, 51)),
    ((0, 180, 219), (0, 131, 176)),
    ((238, 156, 167), (255, 221, 225)),
]


def demo_image(rng: random.Random, width: int = 640, height: int = 640) -> bytes:
    """A gradient sky with a sun and hills: different every call, cheap to encode."""
    top, bottom = rng.choice(PALETTES)
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    for y in range(height):
        t = y / (height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    r = rng.randint(width // 12, width // 5)
    cx, cy = rng.randint(r, width - r), rng.randint(r, height // 2)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 250, 220))
    for layer in range(3):
        base = int(height * (0.55 + 0.12 * layer))
        shade = tuple(max(0, c - 60 - 40 * layer) for c in bottom)
        points = [(0, height)]
        for x in range(0, width + 64, 64):
            points.append((x, base + rng.randint(-height // 10, height // 10)))
        points.append((width, height))
        draw.polygon(points, fill=shade)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()
