"""Media: sniffing, probing hostile bytes, the upload decision, the read model, blob collection."""

from __future__ import annotations

import hashlib
import io
import itertools
from pathlib import Path

import pytest
from PIL import Image

from commands.context import Meta
from commands.errors import Invalid, NotFound, Unsupported
from commands.media import ProbedMedia, decide_upload, sniff
from events.media import MediaUploaded
from infra.media.collector import collect, released_keys
from infra.media.local_store import MemoryMediaStore
from infra.media.probe import probe
from projections.media import MEDIA, MEDIA_BY_KEY, USER_MEDIA, media_view, storage_key_for
from projections.media import PROJECTION as MEDIA_PROJECTION
from tests.unit.posts_world import NOW, World

IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"


def fixture(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


# -- sniffing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\nrest", "image/png"),
        (b"GIF89a...", "image/gif"),
        (b"GIF87a...", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "video/mp4"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "video/quicktime"),
    ],
)
def test_sniff_recognises_magic_bytes(data: bytes, content_type: str) -> None:
    assert sniff(data).content_type == content_type


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world, I am text",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",  # HEIF image in an ISO container
        b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00",
        b"BM\x00\x00",
    ],
)
def test_sniff_refuses_everything_else(data: bytes) -> None:
    with pytest.raises(Unsupported):
        sniff(data)


def test_sniff_ignores_names_and_headers_it_never_sees() -> None:
    png = fixture("transparent.png")
    assert sniff(png).content_type == "image/png"


# -- probing (the upload route's cheap checks) -----------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "size"),
    [
        ("transparent.png", "image/png", (200, 150)),
        ("chi.gif", "image/gif", (320, 240)),
        ("flower.webp", "image/webp", (480, 360)),
        ("Landscape_6.jpg", "image/jpeg", (1800, 1200)),  # stored 1200x1800, EXIF orientation 6
        ("DSCN0010.jpg", "image/jpeg", (640, 480)),
    ],
)
def test_probe_real_images(name: str, content_type: str, size: tuple[int, int]) -> None:
    data = fixture(name)
    probed = probe(data, max_pixels=50_000_000)
    assert probed.content_type == content_type
    assert probed.kind == "image"
    assert (probed.width, probed.height) == size
    assert probed.size_bytes == len(data)
    assert probed.sha256 == hashlib.sha256(data).hexdigest()


def test_probe_reads_only_the_header() -> None:
    """Truncation needs the pixels: that is the media worker's verdict, not the upload's."""
    assert probe(fixture("truncated_jpeg.jpg"), max_pixels=50_000_000).width == 100


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(Invalid) as err:
        probe(fixture("decompression_bomb.gif"), max_pixels=50_000_000)
    assert err.value.code == "image_too_large"


def test_our_pixel_limit_applies_below_pillows() -> None:
    data = encode(Image.new("1", (2000, 1000)), "PNG")  # tiny file, 2 Mpx
    assert probe(data, max_pixels=2_000_000).width == 2000
    with pytest.raises(Invalid) as err:
        probe(data, max_pixels=1_999_999)
    assert err.value.code == "image_too_large"


def test_a_header_that_lies_about_its_type_is_refused() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    with pytest.raises(Invalid) as err:
        probe(data, max_pixels=10_000)
    assert err.value.code == "invalid_image"


def test_video_is_stored_as_is_with_no_size() -> None:
    data = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
    probed = probe(data, max_pixels=10)
    assert (probed.kind, probed.content_type, probed.width, probed.height) == ("video", "video/mp4", 0, 0)


# -- deciding ---------------------------------------------------------------------------

PROBED = ProbedMedia("image/png", "image", 20, 10, 99, "cd" * 32)


def test_decide_upload_records_the_facts_and_answers_202_processing() -> None:
    ids = itertools.count(900)
    d = decide_upload({"user_id": 7}, PROBED, Meta(actor_id=7, now=NOW, new_id=lambda: next(ids)))
    assert (d.status, d.body) == (202, {"id": "900", "status": "processing"})
    [event] = d.events
    assert isinstance(event, MediaUploaded)
    assert (event.media_id, event.owner_id, event.aggregate_id) == (900, 7, 900)
    assert event.storage_key == "originals/cd/" + "cd" * 32 + ".png"
    assert (event.kind, event.width, event.height, event.size_bytes) == ("image", 20, 10, 99)


def test_decide_upload_needs_an_account() -> None:
    with pytest.raises(NotFound):
        decide_upload(None, PROBED, Meta(actor_id=7, now=NOW, new_id=lambda: 1))


def test_storage_keys_are_content_addressed() -> None:
    assert storage_key_for("ab" * 32, "image/jpeg") == storage_key_for("ab" * 32, "image/jpeg")
    assert storage_key_for("ab" * 32, "image/jpeg").endswith(".jpg")
    assert storage_key_for("ab" * 32, "video/quicktime").endswith(".mov")


# -- the read model and blob collection ------------------------------------------------------


def test_media_projection_and_view() -> None:
    w = World()
    alice = w.user("alice")
    m = w.media(alice)
    row = w.read.get(MEDIA.name, {"media_id": m})
    assert row is not None and row["status"] == "ready"
    assert media_view(row)["renditions"] == [
        {"url": "/media/" + "a" * 64 + ".webp", "width": 10, "height": 20, "format": "webp"}
    ]
    assert w.read.count(USER_MEDIA.name, {"owner_id": alice}) == 1


def test_account_deleted_forgets_media_and_releases_only_unshared_blobs() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    shared, own = "a" * 64, "b" * 64
    w.media(alice, sha=shared, ready=False)
    w.media(alice, sha=own, ready=False)
    w.media(bob, sha=shared, ready=False)
    store = MemoryMediaStore()
    for sha in (shared, own):
        store.put(storage_key_for(sha, "image/png"), b"bytes", "image/png")

    from events.accounts import AccountDeleted
    from tests.unit.posts_world import envelope

    event = AccountDeleted(**envelope(w.next_id(), alice, alice), user_id=alice)
    ops = MEDIA_PROJECTION.project(event, w.read)
    w.read.apply(ops)
    assert w.read.scan(USER_MEDIA.name, {"owner_id": alice}) == []
    keys = released_keys(event, MEDIA_PROJECTION.name, ops)
    assert sorted(keys) == sorted([storage_key_for(shared, "image/png"), storage_key_for(own, "image/png")])
    assert collect(w.read, store, keys) == [storage_key_for(own, "image/png")]
    assert store.exists(storage_key_for(shared, "image/png"))  # bob still uses it
    assert not store.exists(storage_key_for(own, "image/png"))
    assert w.read.count(MEDIA_BY_KEY.name, {"storage_key": storage_key_for(shared, "image/png")}) == 1
    assert released_keys(event, "posts", ops) == []
