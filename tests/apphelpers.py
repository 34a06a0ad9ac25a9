"""A test client over the embedded app, with small helpers for common steps."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from infra.app import create_app
from infra.bootstrap import build_embedded
from infra.container import Container
from infra.settings import Settings

_counter = itertools.count(1)


def make_client(data_dir: Path, **overrides: Any) -> tuple[TestClient, Container]:
    settings = Settings(
        data_dir=data_dir,
        jwt_secret="test-secret-of-enough-length-for-hs256",
        login_attempts_per_minute=overrides.pop("login_attempts_per_minute", 1000),
        writes_per_minute=overrides.pop("writes_per_minute", 100_000),
        **overrides,
    )
    container = build_embedded(settings)
    return TestClient(create_app(container)), container


class User:
    """A registered, signed-in user driving the API."""

    def __init__(self, client: TestClient, username: str | None = None, password: str = "correct horse 1") -> None:
        self.client = client
        self.username = username or f"user{next(_counter)}"
        r = client.post("/v1/accounts", json={"username": self.username, "password": password})
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        r = client.post("/v1/sessions", json={"username": self.username, "password": password})
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers | kw.pop("headers", {}), **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers=self.headers | kw.pop("headers", {}), **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch(path, headers=self.headers | kw.pop("headers", {}), **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.client.put(path, headers=self.headers | kw.pop("headers", {}), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=self.headers | kw.pop("headers", {}), **kw)
