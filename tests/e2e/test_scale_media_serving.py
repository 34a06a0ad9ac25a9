"""Through the scale processes: the media worker stores renditions in S3, the query service
answers with URLs on the S3 server itself (presigned, the default without a public base
URL), and S3 serves them with the cache headers, ETag/304 and ranges, without the API."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ScaleStack
from tests.e2e.test_scale_services import _signed_up
from tests.unit import media_cases as mc

IMMUTABLE = "public, max-age=31536000, immutable"


def _ready(
    command: httpx.Client, query: httpx.Client, owner: dict[str, str], token: str, data: bytes, name: str
) -> Any:
    r = command.post("/v1/media", headers=owner | {"X-Glimpse-Consistency": token}, files={"file": (name, data)})
    assert r.status_code == 202, r.text
    media_id, written = r.json()["id"], r.headers["X-Glimpse-Consistency"]
    deadline = time.monotonic() + 60
    while True:
        shown = query.get(f"/v1/media/{media_id}", headers=owner | {"X-Glimpse-Consistency": written}).json()
        if shown["status"] != "processing":
            return shown
        assert time.monotonic() < deadline, "media never left processing"
        time.sleep(0.2)


@pytest.mark.skipif(not mc.have_ffmpeg(), reason="ffmpeg is not installed (scripts/ensure-ffmpeg.sh)")
def test_renditions_are_served_by_s3_at_the_urls_the_query_service_gives(
    scale_stack: ScaleStack, tmp_path: Path
) -> None:
    command = httpx.Client(base_url=scale_stack.command, timeout=30)
    query = httpx.Client(base_url=scale_stack.query, timeout=30)
    owner, token = _signed_up(command, "svc_direct")
    clip = mc.make_video(tmp_path / "clip.mp4", seconds=2, size="320x180")
    media = _ready(command, query, owner, token, clip, "clip.mp4")
    assert media["status"] == "ready", media
    endpoint = os.environ["GLIMPSE_S3_ENDPOINT"]
    for rendition in media["renditions"]:
        url = rendition["url"]
        assert url.startswith(endpoint + "/") and "/renditions/" in url and "X-Amz-Signature=" in url, url
        r = httpx.get(url, timeout=10)  # straight from S3: no API, no credentials
        assert r.status_code == 200, r.text
        name = url.split("?", 1)[0].rsplit("/", 1)[1]
        assert name.split(".", 1)[0] == hashlib.sha256(r.content).hexdigest()  # content-addressed
        expected_type = {"mp4": "video/mp4", "webp": "image/webp", "jpeg": "image/jpeg"}[rendition["format"]]
        assert r.headers["content-type"] == expected_type and r.headers["cache-control"] == IMMUTABLE
        assert httpx.get(url, headers={"If-None-Match": r.headers["etag"]}, timeout=10).status_code == 304
    video = next(r for r in media["renditions"] if r["format"] == "mp4")
    part = httpx.get(video["url"], headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["content-range"].startswith("bytes 0-99/")
    # The API's byte route remains, as a redirect to the same URL.
    name = video["url"].split("?", 1)[0].rsplit("/", 1)[1]
    moved = query.get(f"/media/{name}", follow_redirects=False)
    assert moved.status_code == 302 and moved.headers["location"] == video["url"]
