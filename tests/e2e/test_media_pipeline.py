"""The media pipeline end to end over HTTP: upload -> 202 processing -> the worker -> ready ->
renditions served with cache headers, ETags and ranges; posts that use media still processing."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from infra.container import Container
from infra.media import worker as worker_module
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import follow, upload, wait_for_media
from tests.unit import media_cases as mc

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    client, container = make_client(tmp_path / "data", media_poll_seconds=0.05)
    with client:
        yield client, container
    container.close()


@pytest.fixture
def client(app: tuple[TestClient, Container]) -> TestClient:
    return app[0]


def processed(user: User, data: bytes, name: str = "upload.bin") -> dict[str, Any]:
    r = upload(user, data, filename=name, content_type="application/octet-stream")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "processing"
    return wait_for_media(user, r.json()["id"])


def check_served(client: TestClient, url: str, content_type: str) -> bytes:
    r = client.get(url)
    assert r.status_code == 200, url
    assert r.headers["content-type"] == content_type
    assert r.headers["cache-control"] == IMMUTABLE
    assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["x-content-type-options"] == "nosniff"
    again = client.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == r.headers["etag"] and int(head.headers["content-length"]) == len(r.content)
    return r.content


def test_a_phone_photo_becomes_upright_metadata_free_renditions(client: TestClient) -> None:
    alice = User(client)
    shown = (2400, 1600)
    stored = mc.quadrants(shown).transpose(mc.TO_STORED[6])  # held sideways, EXIF says turn it
    data = mc.encode(stored, "JPEG", quality=92, exif=mc.gps_exif(6).tobytes(), comment=b"taken at home")
    media = processed(alice, data, "IMG_0001.JPG")
    assert (media["status"], media["kind"], media["width"], media["height"]) == ("ready", "image", 2400, 1600)
    sizes = [(r["width"], r["height"], r["format"]) for r in media["renditions"]]
    assert sizes == [(w, round(w * 2 / 3), f) for w in (1080, 640, 320) for f in ("webp", "jpeg")]
    assert media["placeholder"].startswith("data:image/webp;base64,")
    for rendition in media["renditions"]:
        body = check_served(client, rendition["url"], {"webp": "image/webp", "jpeg": "image/jpeg"}[rendition["format"]])
        image = Image.open(io.BytesIO(body))
        assert image.size == (rendition["width"], rendition["height"])
        assert mc.EXIF_GPS_IFD not in image.getexif() and not image.getexif()
        assert b"GPS" not in body and b"taken at home" not in body
        colours = mc.quadrant_colours(image)
        assert all(mc.close(colours[q], mc.QUADRANTS[q]) for q in colours), colours


def test_the_real_gps_photo_is_served_without_its_location(client: TestClient) -> None:
    alice = User(client)
    media = processed(alice, mc.fixture("DSCN0010.jpg"))
    for rendition in media["renditions"]:
        body = client.get(rendition["url"]).content
        assert mc.EXIF_GPS_IFD not in Image.open(io.BytesIO(body)).getexif()


@pytest.mark.skipif(not mc.have_ffmpeg(), reason="ffmpeg is not installed (scripts/ensure-ffmpeg.sh)")
def test_a_video_gets_an_mp4_and_a_poster_and_is_served_in_ranges(client: TestClient, tmp_path: Path) -> None:
    alice = User(client)
    data = mc.make_video(tmp_path / "clip.mp4", seconds=2, size="480x270")
    media = processed(alice, data, "clip.mp4")
    assert (media["status"], media["kind"], media["width"], media["height"]) == ("ready", "video", 480, 270)
    assert abs(media["duration_ms"] - 2000) < 150
    video, *posters = media["renditions"]
    assert (video["format"], video["width"], video["height"]) == ("mp4", 480, 270)
    assert [(p["format"], p["width"]) for p in posters] == [("webp", 480), ("jpeg", 480), ("webp", 320), ("jpeg", 320)]
    for poster in posters:
        check_served(client, poster["url"], {"webp": "image/webp", "jpeg": "image/jpeg"}[poster["format"]])
    body = check_served(client, video["url"], "video/mp4")
    info = mc.ffprobe(body, tmp_path)
    assert "location" not in str(info["format"]) and "at home" not in str(info["format"])
    size, etag = len(body), client.get(video["url"]).headers["etag"]

    part = client.get(video["url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == body[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    assert part.headers["cache-control"] == IMMUTABLE and part.headers["etag"] == etag
    tail = client.get(video["url"], headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == body[-50:]
    rest = client.get(video["url"], headers={"Range": f"bytes={size - 10}-"})
    assert rest.status_code == 206 and rest.content == body[-10:]
    beyond = client.get(video["url"], headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    same = client.get(video["url"], headers={"Range": "bytes=10-19", "If-Range": etag})
    assert same.status_code == 206 and same.content == body[10:20]
    changed = client.get(video["url"], headers={"Range": "bytes=10-19", "If-Range": '"something-else"'})
    assert changed.status_code == 200 and changed.content == body


class Gate:
    """Holds the media worker before it processes anything, so a test sees `processing` for sure."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.real = worker_module.process_media

    def __call__(self, *args: Any, **kw: Any) -> Any:
        assert self.open.wait(30), "the test never opened the gate"
        return self.real(*args, **kw)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate()
    monkeypatch.setattr(worker_module, "process_media", g)
    yield g
    g.open.set()


def test_a_post_may_use_media_still_processing_and_shows_it_when_ready(client: TestClient, gate: Gate) -> None:
    alice, bob = User(client), User(client)
    follow(bob, alice)
    r = upload(alice, mc.encode(mc.photo((800, 600)), "JPEG"))
    mid = r.json()["id"]
    assert alice.get(f"/v1/media/{mid}").json()["status"] == "processing"
    r = alice.post("/v1/posts", json={"caption": "soon", "media_ids": [mid], "audience": "public"})
    assert r.status_code == 201, r.text
    post = r.json()
    assert [(m["id"], m["status"], m["renditions"]) for m in post["media"]] == [(mid, "processing", [])]

    # Others see the post, but not its picture while it is being made.
    assert bob.get(f"/v1/posts/{post['id']}").json()["media"] == []
    [item] = bob.get("/v1/feed").json()["items"]
    assert item["id"] == post["id"] and item["media"] == []
    assert bob.get(f"/v1/media/{mid}").status_code == 404
    assert client.get(f"/v1/users/{alice.username}/posts").json()["items"][0]["media"] == []
    assert [m["status"] for m in alice.get(f"/v1/posts/{post['id']}").json()["media"]] == ["processing"]

    gate.open.set()
    media = wait_for_media(alice, mid)
    assert media["status"] == "ready"
    shown = bob.get(f"/v1/posts/{post['id']}").json()["media"]
    assert shown == [media]
    assert bob.get("/v1/feed").json()["items"][0]["media"] == [media]
    assert bob.get(f"/v1/media/{mid}").json() == media


def test_failed_media_cannot_be_posted_but_processing_media_can_be_a_story(client: TestClient, gate: Gate) -> None:
    alice = User(client)
    waiting = upload(alice, mc.encode(mc.photo((64, 64)), "PNG")).json()["id"]
    story = alice.post("/v1/stories", json={"media_id": waiting, "audience": "followers"})
    assert story.status_code == 201, story.text
    assert story.json()["media"]["status"] == "processing"
    broken = upload(alice, mc.fixture("truncated_jpeg.jpg")).json()["id"]
    gate.open.set()
    assert wait_for_media(alice, broken)["status"] == "failed"
    r = alice.post("/v1/posts", json={"caption": "", "media_ids": [broken], "audience": "public"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "media_failed"
    assert "truncated" in r.json()["error"]["message"]
    r = alice.post("/v1/stories", json={"media_id": broken, "audience": "followers"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "media_failed"
    assert wait_for_media(alice, waiting)["status"] == "ready"
    assert alice.get(f"/v1/stories/{story.json()['id']}").json()["media"]["status"] == "ready"


def test_uploads_left_processing_are_finished_after_a_restart(tmp_path: Path, gate: Gate) -> None:
    data_dir = tmp_path / "data"
    client, container = make_client(data_dir, media_poll_seconds=0.05)
    with client:
        alice = User(client, "restarted")
        mid = upload(alice, mc.encode(mc.photo((100, 80)), "PNG")).json()["id"]
    container.close()  # stops with the job held at the gate: nothing recorded
    gate.open.set()
    client, container = make_client(data_dir, media_poll_seconds=0.05)
    with client:
        r = client.post("/v1/sessions", json={"username": "restarted", "password": "correct horse 1"})
        alice.client, alice.headers = client, {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert wait_for_media(alice, mid)["status"] == "ready"
    container.close()
