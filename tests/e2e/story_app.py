"""An embedded app with a clock the test moves, and steps shared by the story and
notification API tests (upload a picture, follow, block, post, like)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from infra.app import create_app
from infra.bootstrap import build_embedded
from infra.container import Container
from infra.settings import Settings
from tests.apphelpers import User


class Clock:
    """The container's clock: starts at the real time and moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def app_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        jwt_secret="test-secret-of-enough-length-for-hs256",
        login_attempts_per_minute=1000,
        writes_per_minute=100_000,
        **overrides,
    )


def make_app(data_dir: Path, **overrides: Any) -> tuple[TestClient, Container, Clock]:
    clock = Clock()
    container = build_embedded(app_settings(data_dir, **overrides), clock=clock)
    return TestClient(create_app(container)), container, clock


def png(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), color).save(buf, "PNG")
    return buf.getvalue()


def upload(user: User, color: str = "red") -> str:
    r = user.post("/v1/media", files={"file": (f"{color}.png", png(color), "image/png")})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def follow(follower: User, followee: User) -> None:
    r = follower.post(f"/v1/users/{followee.username}/follow")
    assert r.status_code == 200, r.text


def approve(owner: User, follower: User) -> None:
    r = owner.post(f"/v1/me/follow-requests/{follower.username}/approve")
    assert r.status_code == 200, r.text


def block(blocker: User, blocked: User) -> None:
    r = blocker.post(f"/v1/users/{blocked.username}/block")
    assert r.status_code == 200, r.text


def go_private(user: User) -> None:
    assert user.patch("/v1/me", json={"private": True}).status_code == 200


def error(response: Any, status: int, code: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"code", "message"} and body["message"]
    if code is not None:
        assert body["code"] == code
    return dict(body)


def items(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    return list(body["items"])
