"""Renditions served straight from the real S3 server (versitygw), at the URLs the API answers with.

The app is the embedded one with its media store swapped for S3MediaStore: uploads go
through the API, the in-process media worker stores renditions in the bucket, and the
HTTP layer links them the way the scale stack does (public-read URLs under a base, or
time-windowed presigned GETs). Each rendition URL taken from an answer is then fetched
with plain HTTP from S3, bypassing the API: bytes, Content-Type, Cache-Control, ETag,
If-None-Match (304) and, for video, Range (206). tests/e2e/test_scale_media_serving.py
does the same through the scale processes (command service, media worker, query service).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from infra import bootstrap
from infra.app import create_app
from infra.media.s3_store import IMMUTABLE, S3MediaStore
from infra.settings import Settings
from projections.media import storage_key_for
from tests.apphelpers import User
from tests.e2e.posts_support import fixture, follow, png, upload, wait_for_media
from tests.unit import media_cases as mc

pytestmark = pytest.mark.integration

REQUIRED = ("GLIMPSE_S3_ENDPOINT", "GLIMPSE_S3_ACCESS_KEY", "GLIMPSE_S3_SECRET_KEY")
TYPES = {"webp": "image/webp", "jpeg": "image/jpeg", "mp4": "video/mp4"}


@dataclass
class Served:
    client: TestClient
    store: S3MediaStore
    settings: Settings
    form: str

    @property
    def bucket_url(self) -> str:
        return f"{self.settings.s3_endpoint}/{self.store.bucket}"


@pytest.fixture(params=["public", "presigned"])
def served(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    missing = [k for k in REQUIRED if not os.environ.get(k)]
    if missing:
        pytest.skip(f"no S3 server: {', '.join(missing)} not set (make test or infra.servers.stack sets them)")
    bucket = f"glimpse-serve-{uuid.uuid4().hex[:12]}"
    public = request.param == "public"
    settings = Settings(
        data_dir=tmp_path / "data",
        jwt_secret="test-secret-of-enough-length-for-hs256",
        login_attempts_per_minute=1000,
        writes_per_minute=100_000,
        media_poll_seconds=0.05,
        s3_bucket=bucket,
        media_public_base_url=f"{os.environ['GLIMPSE_S3_ENDPOINT']}/{bucket}" if public else "",
        media_public_read_policy=public,
    )
    store = S3MediaStore(settings)
    store.ensure_bucket()
    monkeypatch.setattr(bootstrap, "LocalDiskMediaStore", lambda root: store)
    container = bootstrap.build_embedded(settings)
    try:
        with TestClient(create_app(container)) as client:
            yield Served(client, store, settings, request.param)
    finally:
        container.close()
        store.delete_bucket()
        store.close()


def direct(url: str, served: Served) -> None:
    """A URL clients fetch from S3 itself, in the configured form."""
    assert url.startswith(f"{served.bucket_url}/renditions/"), url
    signed = "X-Amz-Signature=" in url
    assert signed == (served.form == "presigned"), url


def check_object(url: str, fmt: str) -> tuple[bytes, str]:
    """GET a rendition from S3 over plain HTTP (no credentials, not through the API)."""
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, (url, r.text)
    name = url.split("?", 1)[0].rsplit("/", 1)[1]
    assert name == f"{hashlib.sha256(r.content).hexdigest()}.{ {'jpeg': 'jpg'}.get(fmt, fmt) }"  # content-addressed
    assert r.headers["content-type"] == TYPES[fmt]
    assert r.headers["cache-control"] == IMMUTABLE
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert r.headers["accept-ranges"] == "bytes"
    again = httpx.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    if "X-Amz-Signature=" not in url:  # a presigned URL signs its method: GET only, as on AWS
        head = httpx.head(url, timeout=10)
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(r.content)
        assert head.headers["etag"] == etag and head.headers["cache-control"] == IMMUTABLE
    return r.content, etag


def test_image_renditions_are_fetched_from_s3_at_the_urls_the_api_gives(served: Served) -> None:
    alice = User(served.client)
    data = fixture("Landscape_6.jpg")
    r = upload(alice, data, filename="IMG.jpg", content_type="image/jpeg")
    assert r.status_code == 202, r.text
    media = wait_for_media(alice, r.json()["id"])
    assert media["status"] == "ready" and len(media["renditions"]) >= 6
    for rendition in media["renditions"]:
        direct(rendition["url"], served)
        check_object(rendition["url"], rendition["format"])
    # The view is the same wherever media is embedded: a post (the command's answer and the query).
    r = alice.post("/v1/posts", json={"caption": "direct", "media_ids": [media["id"]], "audience": "public"})
    assert r.status_code == 201, r.text
    assert r.json()["media"][0]["renditions"] == media["renditions"]
    anon = served.client.get(f"/v1/posts/{r.json()['id']}").json()
    assert anon["media"][0]["renditions"] == media["renditions"]
    # Originals never get a URL, and S3 does not serve them without credentials.
    original = f"{served.bucket_url}/{storage_key_for(hashlib.sha256(data).hexdigest(), 'image/jpeg')}"
    assert served.store.exists(original.split(f"{served.store.bucket}/", 1)[1])
    assert httpx.get(original, timeout=10).status_code == 403
    assert "originals/" not in served.client.get(f"/v1/media/{media['id']}", headers=alice.headers).text


def test_the_api_byte_route_redirects_to_the_direct_url(served: Served) -> None:
    alice = User(served.client)
    mid = upload(alice, png(40, 30)).json()["id"]
    url = wait_for_media(alice, mid)["renditions"][0]["url"]
    name = url.split("?", 1)[0].rsplit("/", 1)[1]
    r = served.client.get(f"/media/{name}", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == url
    assert served.client.get(f"/media/{'f' * 64}.webp", follow_redirects=False).status_code == 404


def test_feed_and_story_answers_link_direct_urls_and_follow_privacy(served: Served) -> None:
    author, follower, stranger = User(served.client), User(served.client), User(served.client)
    assert author.patch("/v1/me", json={"private": True}).status_code == 200
    follow(follower, author)
    mid = upload(author, png(48, 32)).json()["id"]
    ready = wait_for_media(author, mid)
    post = author.post("/v1/posts", json={"caption": "", "media_ids": [mid], "audience": "followers"}).json()
    story = author.post("/v1/stories", json={"media_id": mid, "audience": "followers"}).json()
    feed = follower.get("/v1/feed").json()["items"]
    assert [p["id"] for p in feed] == [post["id"]]
    assert feed[0]["media"][0]["renditions"] == ready["renditions"]
    shown = follower.get(f"/v1/stories/{story['id']}").json()
    assert shown["media"]["renditions"] == ready["renditions"]
    for rendition in ready["renditions"]:
        direct(rendition["url"], served)
    # Not listed to someone the account does not let in (the URL itself is a capability: docs).
    assert stranger.get(f"/v1/posts/{post['id']}").status_code == 404
    assert stranger.get(f"/v1/media/{mid}").status_code == 404


@pytest.mark.skipif(not mc.have_ffmpeg(), reason="ffmpeg is not installed (scripts/ensure-ffmpeg.sh)")
def test_a_video_rendition_is_served_in_ranges_by_s3(served: Served, tmp_path: Path) -> None:
    alice = User(served.client)
    data = mc.make_video(tmp_path / "clip.mp4", seconds=2, size="320x180")
    media = wait_for_media(alice, upload(alice, data, "clip.mp4", "video/mp4").json()["id"], seconds=60)
    assert media["status"] == "ready", media
    video = next(r for r in media["renditions"] if r["format"] == "mp4")
    direct(video["url"], served)
    body, etag = check_object(video["url"], "mp4")
    size = len(body)
    part = httpx.get(video["url"], headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206 and part.content == body[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    assert part.headers["content-type"] == "video/mp4" and part.headers["etag"] == etag
    assert part.headers["cache-control"] == IMMUTABLE
    rest = httpx.get(video["url"], headers={"Range": f"bytes={size - 10}-"}, timeout=10)
    assert rest.status_code == 206 and rest.content == body[-10:]
