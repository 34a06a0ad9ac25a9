"""What the upload route checks before storing an original: cheap, bounded, no decoding.

`probe` is CPU work on bytes only (no container, no I/O), so routes run it in a
thread pool. It sniffs the type from the bytes and, for images, parses only the
header: a decompression bomb (a pixel flood declared in the header) and a file
that is not what its magic bytes claim are refused here with a 4xx, before
anything is stored. Everything that needs the pixels (truncation, frame floods,
zlib bombs after the image data, the renditions) is the media worker's job, whose
verdict is the media's `failed` status with a reason.
"""

from __future__ import annotations

import hashlib

from commands.errors import Invalid
from commands.media import ProbedMedia, sniff
from infra.media.processing import MediaRejected
from infra.media.processing.image import displayed_size, open_checked, orientation_of


def probe(data: bytes, max_pixels: int) -> ProbedMedia:
    sniffed = sniff(data)
    width = height = 0  # a video's size is known once the worker has probed it
    if sniffed.pillow_format is not None:
        try:
            with open_checked(data, sniffed.pillow_format, max_pixels) as image:
                width, height = displayed_size(*image.size, orientation_of(image))
        except MediaRejected as rejected:
            raise Invalid(rejected.reason, code=rejected.code) from None
    return ProbedMedia(
        content_type=sniffed.content_type,
        kind=sniffed.kind,
        width=width,
        height=height,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
