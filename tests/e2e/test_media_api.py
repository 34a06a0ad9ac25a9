"""HTTP: POST /v1/media, GET /v1/media/{id}, GET /media/<sha256>.<ext>."""

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
from projections.media import storage_key_for
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import block, fixture, follow, make_post, make_private, media_id, png, upload


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
    assert r.json()["status"] == "processing"
    assert r.headers["X-Glimpse-Consistency"]
    mid = r.json()["id"]
    assert isinstance(mid, str) and mid.isdigit()
    r = alice.get(f"/v1/media/{mid}", headers={"X-Glimpse-Consistency": r.headers["X-Glimpse-Consistency"]})
    assert r.status_code == 200, r.text
    sha = hashlib.sha256(data).hexdigest()
    assert r.json() == {
        "id": mid,
        "status": "ready",
        "kind": "image",
        "width": 40,
        "height": 30,
        "renditions": [{"url": f"/media/{sha}.png", "width": 40, "height": 30, "format": "png"}],
    }


@pytest.mark.parametrize(
    ("name", "fmt", "ext", "size"),
    [
        ("transparent.png", "png", "png", (200, 150)),
        ("chi.gif", "gif", "gif", (320, 240)),
        ("flower.webp", "webp", "webp", (480, 360)),
        ("Landscape_6.jpg", "jpeg", "jpg", (1800, 1200)),
    ],
)
def test_real_images_are_accepted_and_served_byte_for_byte(
    client: TestClient, name: str, fmt: str, ext: str, size: tuple[int, int]
) -> None:
    alice = User(client)
    data = fixture(name)
    mid = media_id(alice, data)
    media = alice.get(f"/v1/media/{mid}").json()
    [rendition] = media["renditions"]
    assert (media["width"], media["height"]) == size
    assert rendition["format"] == fmt
    assert rendition["url"].endswith(f".{ext}")
    r = client.get(rendition["url"])  # no token needed: the URL itself is the capability
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == f"image/{fmt}"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert r.headers["x-content-type-options"] == "nosniff"


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
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_type_comes_from_the_bytes_not_the_name_or_header(client: TestClient) -> None:
    alice = User(client)
    data = png()
    r = upload(alice, data, filename="holiday.jpg", content_type="image/jpeg")
    assert r.status_code == 202
    media = alice.get(f"/v1/media/{r.json()['id']}").json()
    assert media["renditions"][0]["format"] == "png"
    assert client.get(media["renditions"][0]["url"]).headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 422, "empty_file"),
        (b"just some text, honest", 415, "unsupported_media_type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415, "unsupported_media_type"),
        (b"%PDF-1.4 not a picture", 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 422, "invalid_image"),
    ],
)
def test_bad_files_are_refused_with_a_reason(client: TestClient, data: bytes, status: int, code: str) -> None:
    alice = User(client)
    r = upload(alice, data, filename="x.jpg", content_type="image/jpeg")
    assert r.status_code == status, r.text
    assert error_code(r) == code
    assert r.json()["error"]["message"]


def test_truncated_jpeg_is_a_422_not_a_500(client: TestClient) -> None:
    r = upload(User(client), fixture("truncated_jpeg.jpg"), "t.jpg", "image/jpeg")
    assert r.status_code == 422, r.text
    assert error_code(r) == "invalid_image"
    assert "truncated" in r.json()["error"]["message"]


def test_truncated_generated_images_are_refused(client: TestClient) -> None:
    alice = User(client)
    for fmt in ("PNG", "JPEG", "WEBP"):
        out = io.BytesIO()
        Image.new("RGB", (120, 80), (10, 200, 10)).save(out, fmt)
        data = out.getvalue()
        r = upload(alice, data[: len(data) * 2 // 3])
        assert r.status_code == 422, (fmt, r.text)


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
        assert upload(alice, png(1000, 1000)).status_code == 202
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


def test_video_is_accepted_by_magic_bytes(client: TestClient) -> None:
    alice = User(client)
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 256
    mid = media_id(alice, mp4)
    media = alice.get(f"/v1/media/{mid}").json()
    assert (media["kind"], media["width"], media["height"]) == ("video", 0, 0)
    assert media["renditions"][0]["format"] == "mp4"
    assert client.get(media["renditions"][0]["url"]).headers["content-type"] == "video/mp4"


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
    url_a = alice.get(f"/v1/media/{a}").json()["renditions"][0]["url"]
    url_b = bob.get(f"/v1/media/{b}").json()["renditions"][0]["url"]
    assert url_a == url_b
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
    assert client.get(f"/media/{bad}.png").status_code == 404
    assert client.get("/media/" + "0" * 64 + ".png").status_code == 404  # well-formed, never uploaded
    assert client.get("/media/" + "0" * 64 + ".exe").status_code == 404


def test_erasing_an_account_stops_serving_and_deletes_unshared_blobs(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice, bob = User(client), User(client)
    own, shared = png(), png()
    own_id, shared_id = media_id(alice, own), media_id(alice, shared)
    media_id(bob, shared)
    own_url = alice.get(f"/v1/media/{own_id}").json()["renditions"][0]["url"]
    shared_url = alice.get(f"/v1/media/{shared_id}").json()["renditions"][0]["url"]
    assert alice.delete("/v1/me").status_code == 204
    assert client.get(own_url).status_code == 404
    assert not container.media.exists(storage_key_for(hashlib.sha256(own).hexdigest(), "image/png"))
    assert client.get(shared_url).status_code == 200  # bob uploaded the same bytes
    assert bob.get(f"/v1/media/{own_id}").status_code == 404
