"""Steps shared by the media, posts and feed HTTP tests."""

from __future__ import annotations

import io
import itertools
import time
from pathlib import Path
from typing import Any

from PIL import Image

from tests.apphelpers import User

IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
_colors = itertools.count(1)


def fixture(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def png(width: int = 32, height: int = 24, color: tuple[int, int, int] | None = None) -> bytes:
    """A small PNG; distinct bytes on every call unless a color is given."""
    if color is None:
        n = next(_colors)
        color = (n % 256, (n // 256) % 256, (n // 65536) % 256)
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def upload(user: User, data: bytes, filename: str = "photo.png", content_type: str = "image/png", **kw: Any) -> Any:
    return user.post("/v1/media", files={"file": (filename, data, content_type)}, **kw)


def wait_for_media(user: User, mid: str, seconds: float = 20) -> dict[str, Any]:
    """Poll the owner's view of a media item until the media worker has settled it
    (needs the app's lifespan running: `with client:`)."""
    deadline = time.monotonic() + seconds
    while True:
        r = user.get(f"/v1/media/{mid}")
        assert r.status_code == 200, r.text
        media: dict[str, Any] = r.json()
        if media["status"] != "processing":
            return media
        assert time.monotonic() < deadline, f"media {mid} still processing after {seconds} s"
        time.sleep(0.02)


def media_id(user: User, data: bytes | None = None) -> str:
    """An upload that is ready: its renditions are made."""
    r = upload(user, data if data is not None else png())
    assert r.status_code == 202, r.text
    mid = str(r.json()["id"])
    assert wait_for_media(user, mid)["status"] == "ready"
    return mid


def make_post(user: User, audience: str = "public", caption: str = "", media: int = 1) -> dict[str, Any]:
    ids = [media_id(user) for _ in range(media)]
    r = user.post("/v1/posts", json={"caption": caption, "media_ids": ids, "audience": audience})
    assert r.status_code == 201, r.text
    post: dict[str, Any] = r.json()
    return post


def follow(follower: User, followee: User) -> None:
    """Follow, approving the request when the followee is private."""
    r = follower.post(f"/v1/users/{followee.username}/follow")
    assert r.status_code == 200, r.text
    if r.json()["state"] == "requested":
        r = followee.post(f"/v1/me/follow-requests/{follower.username}/approve")
        assert r.status_code == 200, r.text


def unfollow(follower: User, followee: User) -> None:
    r = follower.delete(f"/v1/users/{followee.username}/follow")
    assert r.status_code in (200, 204), r.text


def block(blocker: User, blocked: User) -> None:
    r = blocker.post(f"/v1/users/{blocked.username}/block")
    assert r.status_code == 200, r.text


def make_private(user: User) -> None:
    r = user.patch("/v1/me", json={"private": True})
    assert r.status_code == 200, r.text


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def all_pages(user_or_client: Any, path: str, limit: int) -> tuple[list[str], int]:
    """Every item id of a list by following next_cursor, and how many pages that took."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = user_or_client.get(path, params=params)
        assert r.status_code == 200, r.text
        pages += 1
        seen += ids(r.json())
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 100
