"""Serving renditions from a store without local files: single byte ranges over bytes in memory."""

from __future__ import annotations

import pytest

from query_api.media import Unsatisfiable, byte_range, ranged

HEADERS = {"ETag": '"abc"', "Cache-Control": "public, max-age=31536000, immutable"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-2", None),  # malformed: ignored, the whole body is sent
        ("bytes=0-1,5-6", None),  # several ranges: the whole body
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_byte_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 1000)


def test_ranged_answers_206_200_and_416() -> None:
    data = bytes(range(256)) * 4
    part = ranged(data, "video/mp4", HEADERS, "bytes=10-19")
    assert part.status_code == 206 and part.body == data[10:20]
    assert part.headers["content-range"] == "bytes 10-19/1024"
    assert part.headers["etag"] == '"abc"' and "immutable" in part.headers["cache-control"]
    whole = ranged(data, "video/mp4", HEADERS, None)
    assert whole.status_code == 200 and whole.body == data
    refused = ranged(data, "video/mp4", HEADERS, "bytes=2000-")
    assert refused.status_code == 416 and refused.headers["content-range"] == "bytes */1024"
