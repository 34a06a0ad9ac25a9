"""HTTP: POST /v1/media (the upload route's own checks), GET /v1/media/{id}, GET /media/<sha256>.<ext>.

The media worker's side (rendition rules, hostile files that fail later, video,
ranges) is in test_media_pipeline*.py.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from infra.container import Container
from projections.media import storage_key_for, storage_key_of_name
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import (
    block,
    fixture,
    follow,
    make_post,
    make_private,
    media_id,
    png,
    upload,
    wait_for_media,
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    client, container = make_client(tmp_path / "data")
    with client:
        yield client, container
    container.close()


@pytest.fixture
def client(app: tuple[TestClient, Container]) -> TestClient:
    return app[0]


def error_code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def test_upload_answers_202_processing_then_the_media_is_ready(client: TestClient) -> None:
    alice = User(client)
    data = png(40, 30)
    r = upload(alice, data)
    assert r.status_code == 202, r.text
    assert r.json() == {"id": r.json()["id"], "status": "processing"}
    assert r.headers["X-Glimpse-Consistency"]
    mid = r.json()["id"]
    assert isinstance(mid, str) and mid.isdigit()
    r = alice.get(f"/v1/media/{mid}", headers={"X-Glimpse-Consistency": r.headers["X-Glimpse-Consistency"]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("processing", "ready")
    media = wait_for_media(alice, mid)
    [webp, jpeg] = media.pop("renditions")
    placeholder = media.pop("placeholder")
    assert media == {"id": mid, "status": "ready", "kind": "image", "width": 40, "height": 30, "duration_ms": None}
    assert placeholder.startswith("data:image/webp;base64,")
    for rendition, fmt, ext in ((webp, "webp", "webp"), (jpeg, "jpeg", "jpg")):
        assert (rendition["width"], rendition["height"], rendition["format"]) == (40, 30, fmt)
        body = client.get(rendition["url"]).content
        assert rendition["url"] == f"/media/{hashlib.sha256(body).hexdigest()}.{ext}"  # content-addressed


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("transparent.png", (200, 150)),
        ("chi.gif", (320, 240)),
        ("flower.webp", (480, 360)),
        ("Landscape_6.jpg", (1800, 1200)),
        ("DSCN0010.jpg", (640, 480)),
    ],
)
def test_real_images_become_renditions_served_with_immutable_headers(
    client: TestClient, name: str, size: tuple[int, int]
) -> None:
    alice = User(client)
    data = fixture(name)
    mid = media_id(alice, data)
    media = alice.get(f"/v1/media/{mid}").json()
    assert (media["width"], media["height"]) == size
    assert {r["format"] for r in media["renditions"]} == {"webp", "jpeg"}
    for rendition in media["renditions"]:
        r = client.get(rendition["url"])  # no token needed: the URL itself is the capability
        assert r.status_code == 200
        assert r.content != data  # never the original: it still carries its metadata
        assert r.headers["content-type"] == {"webp": "image/webp", "jpeg": "image/jpeg"}[rendition["format"]]
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
        assert r.headers["x-content-type-options"] == "nosniff"
    original = hashlib.sha256(data).hexdigest()
    for ext in ("jpg", "png", "gif", "webp"):
        assert client.get(f"/media/{original}.{ext}").status_code == 404  # originals have no URL


def test_etag_revalidation_answers_304(client: TestClient) -> None:
    alice = User(client)
    mid = media_id(alice)
    url = alice.get(f"/v1/media/{mid}").json()["renditions"][0]["url"]
    etag = client.get(url).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = client.get(url, headers={"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b""
        assert r.headers["etag"] == etag
        assert "immutable" in r.headers["cache-control"]
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_type_comes_from_the_bytes_not_the_name_or_header(client: TestClient) -> None:
    alice = User(client)
    data = png(24, 12)
    r = upload(alice, data, filename="holiday.jpg", content_type="image/jpeg")
    assert r.status_code == 202
    media = wait_for_media(alice, r.json()["id"])
    assert (media["status"], media["kind"], media["width"], media["height"]) == ("ready", "image", 24, 12)
    r = upload(alice, png(24, 12), filename="clip.mp4", content_type="video/mp4")
    assert wait_for_media(alice, r.json()["id"])["kind"] == "image"


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 422, "empty_file"),
        (b"just some text, honest", 415, "unsupported_media_type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415, "unsupported_media_type"),
        (b"%PDF-1.4 not a picture", 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 422, "invalid_image"),
        (b"GIF89a-not-really", 422, "invalid_image"),
    ],
)
def test_bad_files_are_refused_with_a_reason(client: TestClient, data: bytes, status: int, code: str) -> None:
    alice = User(client)
    r = upload(alice, data, filename="x.jpg", content_type="image/jpeg")
    assert r.status_code == status, r.text
    assert error_code(r) == code
    assert r.json()["error"]["message"]


def test_a_truncated_jpeg_is_accepted_then_fails_with_a_reason(client: TestClient) -> None:
    """The header parses, so the upload route takes it; the worker's full decode refuses it."""
    alice = User(client)
    r = upload(alice, fixture("truncated_jpeg.jpg"), "t.jpg", "image/jpeg")
    assert r.status_code == 202, r.text
    media = wait_for_media(alice, r.json()["id"])
    assert media["status"] == "failed" and "truncated" in media["reason"]
    assert media["renditions"] == [] and media["placeholder"] is None


def test_decompression_bomb_is_a_422(client: TestClient) -> None:
    r = upload(User(client), fixture("decompression_bomb.gif"), "bomb.gif", "image/gif")
    assert r.status_code == 422, r.text
    assert error_code(r) == "image_too_large"


def test_pixel_limit_comes_from_settings(tmp_path: Path) -> None:
    client, container = make_client(tmp_path / "data", max_image_pixels=1_000_000)
    with client:
        alice = User(client)
        out = io.BytesIO()
        Image.new("1", (2000, 1000)).save(out, "PNG")  # a few KB, 2 megapixels
        r = upload(alice, out.getvalue())
        assert r.status_code == 422, r.text
        assert error_code(r) == "image_too_large"
        assert wait_for_media(alice, media_id(alice, png(1000, 1000)))["status"] == "ready"
    container.close()


def test_too_large_is_a_413(tmp_path: Path) -> None:
    client, container = make_client(tmp_path / "data", max_upload_bytes=5_000)
    with client:
        alice = User(client)
        small = png(10, 10)
        assert upload(alice, small).status_code == 202
        big = small + b"\x00" * 5_000  # the size check comes before any decoding
        r = upload(alice, big)
        assert r.status_code == 413, r.text
        assert error_code(r) == "file_too_large"
        huge = b"\x00" * 200_000  # beyond the multipart allowance: refused from Content-Length
        r = upload(alice, huge)
        assert r.status_code == 413
    container.close()


def test_a_body_without_content_length_is_bounded_while_it_arrives(tmp_path: Path) -> None:
    client, container = make_client(tmp_path / "data", max_upload_bytes=5_000)
    with client:
        alice = User(client)

        def chunks() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
            for _ in range(20):
                yield b"\x00" * 10_000

        r = alice.post("/v1/media", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413, r.text
    container.close()


def test_the_request_must_be_multipart_with_a_file_part(client: TestClient) -> None:
    alice = User(client)
    r = alice.post("/v1/media", content=png(), headers={"Content-Type": "image/png"})
    assert r.status_code == 415
    assert error_code(r) == "multipart_required"
    r = alice.post("/v1/media", data={"caption": "no file"}, files={"other": ("x.png", png(), "image/png")})
    assert r.status_code == 422
    assert error_code(r) == "file_required"
    r = alice.post("/v1/media", content=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 422
    assert error_code(r) == "invalid_multipart"


def test_upload_needs_a_signed_in_user(client: TestClient) -> None:
    r = client.post("/v1/media", files={"file": ("x.png", png(), "image/png")})
    assert r.status_code == 401
    assert error_code(r) == "unauthenticated"


def test_a_video_is_accepted_by_magic_bytes_and_judged_by_the_worker(client: TestClient) -> None:
    alice = User(client)
    fake = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 256
    r = upload(alice, fake, "clip.mp4", "video/mp4")
    assert r.status_code == 202
    media = wait_for_media(alice, r.json()["id"])
    assert (media["kind"], media["status"], media["width"], media["height"]) == ("video", "failed", 0, 0)
    assert media["reason"]


def test_idempotent_upload(client: TestClient) -> None:
    alice = User(client)
    data = png()
    first = upload(alice, data, headers={"Idempotency-Key": "up-1"})
    again = upload(alice, data, headers={"Idempotency-Key": "up-1"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = upload(alice, png(), headers={"Idempotency-Key": "up-1"})
    assert other.status_code == 422
    assert error_code(other) == "idempotency_key_reused"


def test_the_same_bytes_share_one_blob_but_are_two_media(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice, bob = User(client), User(client)
    data = png()
    a, b = media_id(alice, data), media_id(bob, data)
    assert a != b
    urls_a = [r["url"] for r in alice.get(f"/v1/media/{a}").json()["renditions"]]
    urls_b = [r["url"] for r in bob.get(f"/v1/media/{b}").json()["renditions"]]
    assert urls_a == urls_b  # renditions are deterministic, so content addressing shares them too
    assert container.media.exists(storage_key_for(hashlib.sha256(data).hexdigest(), "image/png"))


def test_media_metadata_is_private_until_posted_and_then_follows_the_post(client: TestClient) -> None:
    alice, bob, carol = User(client), User(client), User(client)
    mid = media_id(alice)
    assert alice.get(f"/v1/media/{mid}").status_code == 200
    assert bob.get(f"/v1/media/{mid}").status_code == 404
    assert client.get(f"/v1/media/{mid}").status_code == 404
    r = alice.post("/v1/posts", json={"caption": "", "media_ids": [mid], "audience": "followers"})
    assert r.status_code == 201
    assert bob.get(f"/v1/media/{mid}").status_code == 404  # followers only, bob does not follow
    follow(bob, alice)
    assert bob.get(f"/v1/media/{mid}").status_code == 200
    block(alice, bob)
    assert bob.get(f"/v1/media/{mid}").status_code == 404
    public = make_post(alice)
    public_media = public["media"][0]["id"]
    assert client.get(f"/v1/media/{public_media}").status_code == 200
    assert carol.get(f"/v1/media/{public_media}").status_code == 200
    make_private(alice)
    assert carol.get(f"/v1/media/{public_media}").status_code == 404


@pytest.mark.parametrize("bad", ["abc", "-1", "1" * 25, "00x"])
def test_malformed_ids_and_names_are_404(client: TestClient, bad: str) -> None:
    alice = User(client)
    assert alice.get(f"/v1/media/{bad}").status_code == 404
    assert client.get(f"/media/{bad}.webp").status_code == 404
    assert client.get("/media/" + "0" * 64 + ".webp").status_code == 404  # well-formed, never made
    assert client.get("/media/" + "0" * 64 + ".exe").status_code == 404


def test_erasing_an_account_stops_serving_and_deletes_unshared_blobs(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice, bob = User(client), User(client)
    # Colours far apart: near colours can give byte-equal (so shared) renditions.
    own, shared = png(color=(250, 20, 20)), png(color=(20, 20, 250))
    own_id, shared_id = media_id(alice, own), media_id(alice, shared)
    media_id(bob, shared)
    own_urls = [r["url"] for r in alice.get(f"/v1/media/{own_id}").json()["renditions"]]
    shared_urls = [r["url"] for r in alice.get(f"/v1/media/{shared_id}").json()["renditions"]]
    assert all(container.media.exists(storage_key_of_name(u.rsplit("/", 1)[1])) for u in own_urls)
    assert alice.delete("/v1/me").status_code == 204
    for url in own_urls:
        assert client.get(url).status_code == 404
        assert not container.media.exists(storage_key_of_name(url.rsplit("/", 1)[1]))
    assert not container.media.exists(storage_key_for(hashlib.sha256(own).hexdigest(), "image/png"))
    for url in shared_urls:
        assert client.get(url).status_code == 200  # bob uploaded the same bytes
    assert bob.get(f"/v1/media/{own_id}").status_code == 404
