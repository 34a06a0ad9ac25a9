"""Hostile and broken uploads over HTTP: each ends as a clear 4xx at upload, or as `failed` with a
reason within bounded time; the worker keeps running and nothing half-made is stored or served."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.container import Container
from infra.media import worker as worker_module
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import upload, wait_for_media
from tests.unit import media_cases as mc

MAX_UPLOAD = 2 * 1024 * 1024


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    client, container = make_client(
        tmp_path / "data", media_poll_seconds=0.05, max_upload_bytes=MAX_UPLOAD, max_video_seconds=5
    )
    with client:
        yield client, container
    container.close()


def renditions_on_disk(container: Container) -> set[str]:
    root = container.settings.data_dir / "media" / "renditions"
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")} if root.exists() else set()


def originals_on_disk(container: Container) -> set[str]:
    root = container.settings.data_dir / "media" / "originals"
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")} if root.exists() else set()


def _cut(data: bytes, share: float) -> bytes:
    return data[: int(len(data) * share)]


def _video(seconds: float, cut: float = 1.0) -> Callable[[Path], bytes]:
    def make(tmp: Path) -> bytes:
        data = mc.make_video(tmp / f"v{seconds}.mp4", seconds=seconds, size="160x120", rate=10)
        return data[: int(len(data) * cut)]

    return make


REFUSED_AT_UPLOAD: list[tuple[str, Callable[[Path], bytes], int, str]] = [
    ("empty file", lambda _: b"", 422, "empty_file"),
    ("pixel flood in a PNG header", lambda _: mc.png_pixel_flood(), 422, "image_too_large"),
    ("pixel flood in a GIF header", lambda _: mc.fixture("decompression_bomb.gif"), 422, "image_too_large"),
    ("zlib bomb in a PNG text chunk", lambda _: mc.png_text_bomb(before_pixels=True), 422, "metadata_too_large"),
    ("text sent as a JPEG", lambda _: b"I am not a picture", 415, "unsupported_media_type"),
    ("SVG with a script", lambda _: b"<svg onload='alert(1)'/>", 415, "unsupported_media_type"),
    (
        "HEIC",
        lambda _: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
        415,
        "unsupported_media_type",
    ),
    ("PNG magic, garbage after", lambda _: b"\x89PNG\r\n\x1a\n" + b"\xab" * 500, 422, "invalid_image"),
    ("huge upload", lambda _: b"\xff\xd8\xff\xe0" + b"\x00" * (MAX_UPLOAD + 10), 413, "file_too_large"),
    # libwebp needs the whole file to open it, so a cut WebP is refused before anything is stored.
    ("truncated WebP", lambda _: _cut(mc.encode(mc.photo((300, 200)), "WEBP"), 0.5), 422, "invalid_image"),
]

FAILED_BY_THE_WORKER: list[tuple[str, Callable[[Path], bytes], str]] = [
    ("frame flood: 40000 GIF frames", lambda _: mc.gif_frame_flood(40_000), "more than 1000 frames"),
    ("frame flood: 1001 APNG frames", lambda _: mc.animation("PNG", 1001, (4, 4)), "more than 1000 frames"),
    ("truncated JPEG (real)", lambda _: mc.fixture("truncated_jpeg.jpg"), "truncated"),
    ("truncated PNG", lambda _: mc.encode(mc.photo((300, 200)), "PNG")[:9000], "truncated"),
    ("truncated GIF animation", lambda _: _cut(mc.animation("GIF", 10, (80, 60)), 0.75), "truncated"),
    ("MP4 magic, no video", lambda _: b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 400, ""),
]
VIDEO_FAILURES: list[tuple[str, Callable[[Path], bytes], str]] = [
    ("truncated video", _video(2, cut=0.5), ""),
    ("video over the duration cap", _video(6), "limit is 5 s"),
]


@pytest.mark.parametrize(("name", "make", "status", "code"), REFUSED_AT_UPLOAD, ids=[c[0] for c in REFUSED_AT_UPLOAD])
def test_refused_at_upload_with_a_clear_4xx(
    app: tuple[TestClient, Container], tmp_path: Path, name: str, make: Callable[[Path], bytes], status: int, code: str
) -> None:
    client, container = app
    alice = User(client)
    started = time.monotonic()
    r = upload(alice, make(tmp_path), filename="photo.jpg", content_type="image/jpeg")
    assert time.monotonic() - started < 5
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert originals_on_disk(container) == set()


def _failed_cases() -> list[Any]:
    cases: list[Any] = [pytest.param(*c, id=c[0]) for c in FAILED_BY_THE_WORKER]
    skip = pytest.mark.skipif(not mc.have_ffmpeg(), reason="ffmpeg is not installed")
    cases += [pytest.param(*c, id=c[0], marks=skip) for c in VIDEO_FAILURES]
    return cases


@pytest.mark.parametrize(("name", "make", "says"), _failed_cases())
def test_failed_by_the_worker_with_a_reason_and_nothing_half_made(
    app: tuple[TestClient, Container], tmp_path: Path, name: str, make: Callable[[Path], bytes], says: str
) -> None:
    client, container = app
    alice = User(client)
    data = make(tmp_path)
    r = upload(alice, data, filename="upload.bin", content_type="application/octet-stream")
    assert r.status_code == 202, r.text
    started = time.monotonic()
    media = wait_for_media(alice, r.json()["id"], seconds=30)
    assert time.monotonic() - started < 30
    assert media["status"] == "failed", media
    assert media["reason"] and says in media["reason"]
    assert media["renditions"] == [] and media["placeholder"] is None
    assert renditions_on_disk(container) == set()  # nothing half-made was stored
    assert originals_on_disk(container) == set()  # and the refused original is gone
    # The worker is still there for the next upload.
    good = upload(alice, mc.encode(mc.photo((120, 90)), "JPEG"))
    ready = wait_for_media(alice, good.json()["id"])
    assert ready["status"] == "ready"
    assert renditions_on_disk(container) == {r["url"].rsplit("/", 1)[1] for r in ready["renditions"]}


def test_a_job_that_overruns_its_time_fails_and_stores_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = worker_module.process_media

    def stuck(*args: Any, **kw: Any) -> Any:
        release.wait(30)  # a decode that cannot be interrupted
        return real(*args, **kw)

    monkeypatch.setattr(worker_module, "process_media", stuck)
    monkeypatch.setattr(worker_module, "TIMEOUT_GRACE_SECONDS", 0.0)
    client, container = make_client(tmp_path / "data", media_poll_seconds=0.05, media_job_timeout_seconds=0.3)
    with client:
        alice = User(client)
        r = upload(alice, mc.encode(mc.photo((200, 150)), "JPEG"))
        media = wait_for_media(alice, r.json()["id"], seconds=10)
        assert media["status"] == "failed" and "longer than 0.3 s" in media["reason"]
        release.set()
        worker = next(j.run.__self__ for j in container.jobs if j.name == "media_worker")  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while worker.in_flight:  # the late job finishes, sees it was abandoned, and stores nothing
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert renditions_on_disk(container) == set()
        assert alice.get(f"/v1/media/{r.json()['id']}").json()["status"] == "failed"
    container.close()
