"""The fast way through the app (infra/http/fast_app.py, fast_routes.py, fast_json.py) answers
exactly as FastAPI does: the same status, headers and bytes, for plain requests and odd ones.

Each request is sent twice to the same app: once as it comes (the fast way, where it applies)
and once with a dependency override in place, which makes every route take FastAPI's own
handler (the compiled handlers step aside when overrides exist).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient

from infra.container import Container
from infra.http.paging import encode_cursor
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import block, follow, make_post, make_private, media_id


def _unused() -> None:  # the override that sends requests FastAPI's way
    return None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, Container, dict[str, Any]]]:
    client, container = make_client(tmp_path / "data")
    with client:
        alice, bob, carol, dave = (User(client, name) for name in ("alice", "bob", "carol", "dave"))
        follow(alice, bob)
        follow(alice, carol)
        follow(alice, dave)
        make_private(carol)
        follow(alice, carol)
        block(dave, alice)
        posts = [
            make_post(u, caption=f'hello @{v.username} é ✓ \u2028 "q" \\', media=1 + i % 2)
            for i, (u, v) in enumerate(
                [(bob, alice), (carol, bob), (bob, carol), (alice, bob), (dave, bob), (bob, dave)]
            )
        ]
        make_post(bob, audience="followers", caption="friends only")
        yield client, container, {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "posts": posts}
    container.close()


class Counted:
    """Counts FastAPI's own dependency solving: 0 for a request served the fast way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = fastapi.routing.solve_dependencies

        async def counting(**kw: Any) -> Any:
            self.calls += 1
            return await original(**kw)

        monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)


def both(client: TestClient, method: str, path: str, **kw: Any) -> tuple[Any, Any]:
    fast = client.request(method, path, **kw)
    app: Any = client.app
    app.dependency_overrides[_unused] = _unused
    try:
        standard = client.request(method, path, **kw)
    finally:
        app.dependency_overrides.clear()
    return fast, standard


def assert_same(fast: Any, standard: Any) -> None:
    assert fast.status_code == standard.status_code, (fast.text, standard.text)
    assert fast.headers.multi_items() == standard.headers.multi_items()
    assert fast.content == standard.content


def _reads(w: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    alice, bob = w["alice"], w["bob"]
    auth = alice.headers
    post_id = w["posts"][0]["id"]
    return [
        ("GET", "/v1/feed", {"headers": auth}),
        ("GET", "/v1/feed", {"headers": auth, "params": {"limit": "2"}}),
        ("GET", "/v1/feed", {"headers": auth, "params": {"limit": "2", "cursor": encode_cursor(int(post_id))}}),
        ("GET", "/v1/feed", {"headers": auth, "params": [("limit", "5"), ("limit", "1")]}),  # the last one counts
        ("GET", "/v1/feed?limit=1%30", {"headers": auth}),  # percent-encoded: starlette's parser
        ("GET", "/v1/feed?limit=+3", {"headers": auth}),
        ("GET", "/v1/feed?limit=&cursor=", {"headers": auth}),
        ("GET", "/v1/feed?&&limit=3&unknown=1&flag", {"headers": auth}),
        ("GET", "/v1/feed", {"headers": auth, "params": {"limit": "0"}}),
        ("GET", "/v1/feed", {"headers": auth, "params": {"limit": "101"}}),
        ("GET", "/v1/feed", {"headers": auth, "params": {"limit": "ten"}}),
        ("GET", "/v1/feed", {"headers": auth, "params": {"limit": "007"}}),
        ("GET", "/v1/feed", {"headers": auth, "params": {"cursor": "not-a-cursor"}}),
        ("GET", "/v1/feed", {"headers": auth, "params": {"cursor": "x" * 201}}),
        ("GET", "/v1/feed", {"headers": auth | {"X-Glimpse-Consistency": "1"}}),
        ("GET", "/v1/feed", {"headers": auth | {"X-Glimpse-Consistency": "bad token!"}}),
        ("GET", "/v1/feed", {}),
        ("GET", "/v1/feed", {"headers": {"Authorization": "Bearer nope"}}),
        ("GET", "/v1/feed", {"headers": {"Authorization": "Basic abc"}}),
        ("GET", "/v1/feed", {"headers": {"authorization": auth["Authorization"].replace("Bearer", "bearer")}}),
        ("HEAD", "/v1/feed", {"headers": auth}),
        ("PUT", "/v1/feed", {"headers": auth}),
        ("GET", "/v1/feed/", {"headers": auth}),
        ("GET", f"/v1/users/{bob.username}/posts", {"headers": auth, "params": {"limit": "3"}}),
        ("GET", f"/v1/users/{bob.username}/posts", {}),
        ("GET", "/v1/users/carol/posts", {"headers": auth}),
        ("GET", "/v1/users/carol/posts", {"headers": bob.headers}),  # private, not a follower
        ("GET", "/v1/users/dave/posts", {"headers": auth}),  # blocked
        ("GET", "/v1/users/nobody/posts", {"headers": auth}),
        ("GET", "/v1/users/b%6Fb/posts", {"headers": auth}),
        ("GET", f"/v1/posts/{post_id}", {"headers": auth}),
        ("GET", f"/v1/posts/{post_id}", {}),
        ("GET", "/v1/posts/12x", {"headers": auth}),
        ("GET", "/v1/posts/999", {"headers": auth}),
        ("DELETE", "/v1/posts/999", {"headers": auth}),
        ("GET", f"/v1/users/{bob.username}", {"headers": auth}),
        ("GET", "/v1/me", {"headers": auth}),
        ("GET", f"/v1/users/{bob.username}/followers", {"headers": auth}),
        ("GET", "/v1/notifications", {"headers": auth}),
        ("GET", "/healthz", {}),
        ("GET", "/metrics", {}),
        ("GET", "/nowhere", {}),
        ("GET", "/openapi.json", {}),
    ]


def test_reads_answer_alike(
    world: tuple[TestClient, Container, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, w = world
    counted = Counted(monkeypatch)
    for method, path, kw in _reads(w):
        fast, standard = both(client, method, path, **kw)
        assert_same(fast, standard)
    # The plain ones did take the fast way (else this test would compare FastAPI with itself).
    before = counted.calls
    for path in ("/v1/feed", f"/v1/users/{w['bob'].username}/posts", f"/v1/posts/{w['posts'][0]['id']}"):
        assert w["alice"].get(path).status_code == 200
    assert counted.calls == before


def _create(user: User, body: Any, key: str | None = None, **kw: Any) -> dict[str, Any]:
    headers = user.headers | ({"Idempotency-Key": key} if key else {})
    return {"headers": headers | kw.pop("headers", {}), **({"json": body} if body is not None else {}), **kw}


def test_bad_writes_answer_alike(world: tuple[TestClient, Container, dict[str, Any]]) -> None:
    client, _, w = world
    alice = w["alice"]
    cases = [
        _create(alice, {"caption": "x", "audience": "nobody"}),
        _create(alice, {"caption": "x", "audience": "public", "extra": 1}),
        _create(alice, {"caption": 5, "audience": "public"}),
        _create(alice, [1, 2]),
        _create(alice, None),
        _create(
            alice, None, content=b'{"caption": "x", "audience": "public"', headers={"content-type": "application/json"}
        ),
        _create(alice, None, content=b'{"caption": NaN}', headers={"content-type": "application/json"}),
        _create(alice, None, content=b'{"caption": "x", "audience": "public"}', headers={"content-type": "text/plain"}),
        _create(
            alice,
            None,
            content=b'{"caption": "x", "audience": "public"}',
            headers={"content-type": "application/json; charset=utf-8"},
        ),
        _create(alice, None, content=b"\xff\xfe", headers={"content-type": "application/json"}),
        _create(alice, {"caption": "x", "audience": "public"}, key="k" * 256),
        _create(alice, {"caption": "x", "audience": "public", "media_ids": ["1" * 30]}),
        {"json": {"caption": "x", "audience": "public"}},  # no token
    ]
    for kw in cases:
        fast, standard = both(client, "POST", "/v1/posts", **kw)
        assert_same(fast, standard)


def test_writes_answer_alike(world: tuple[TestClient, Container, dict[str, Any]]) -> None:
    client, _, w = world
    alice = w["alice"]
    media = [media_id(alice)]
    body = {"caption": "new @bob", "audience": "public", "media_ids": media}
    first = client.post("/v1/posts", **_create(alice, body, key="same-key"))
    assert first.status_code == 201
    fast, standard = both(client, "POST", "/v1/posts", **_create(alice, body, key="same-key"))  # replays
    assert_same(fast, standard)
    assert fast.content == first.content
    fast, standard = both(
        client,
        "POST",
        "/v1/posts",
        **_create(alice, {"caption": "other", "audience": "public", "media_ids": media}, key="same-key"),
    )
    assert_same(fast, standard)  # the key reused with another body
    one, two = both(
        client, "POST", "/v1/posts", **_create(alice, {"caption": "twice", "audience": "followers", "media_ids": media})
    )
    assert one.status_code == two.status_code == 201
    assert [k for k, _ in one.headers.multi_items()] == [k for k, _ in two.headers.multi_items()]
    a, b = one.json(), two.json()
    assert a["id"] != b["id"] and {k: v for k, v in a.items() if k not in ("id", "created_at")} == {
        k: v for k, v in b.items() if k not in ("id", "created_at")
    }
    assert_same(*both(client, "GET", f"/v1/posts/{a['id']}", headers=alice.headers))


def test_an_unexpected_error_answers_alike(
    world: tuple[TestClient, Container, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, container, w = world

    def broken(token: str) -> int | None:
        raise RuntimeError("boom")

    monkeypatch.setattr(container.tokens, "verify", broken)
    quiet = TestClient(client.app, raise_server_exceptions=False)
    fast, standard = both(quiet, "GET", "/v1/feed", headers=w["alice"].headers)
    assert fast.status_code == 500
    assert_same(fast, standard)
