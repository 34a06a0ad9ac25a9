"""HTTP: GET /v1/feed, the home feed built by fan-out on write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.container import Container
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.feed import FEED
from projections.store import Put
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import all_pages, block, follow, ids, make_post, make_private, unfollow


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    client, container = make_client(tmp_path / "data")
    with client:
        yield client, container
    container.close()


@pytest.fixture
def client(app: tuple[TestClient, Container]) -> TestClient:
    return app[0]


def feed(user: User, **params: Any) -> list[str]:
    r = user.get("/v1/feed", params=params)
    assert r.status_code == 200, r.text
    return ids(r.json())


def test_the_feed_needs_a_signed_in_user(client: TestClient) -> None:
    r = client.get("/v1/feed")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


def test_own_and_followed_posts_newest_first(client: TestClient) -> None:
    alice, bob, carol, stranger = User(client), User(client), User(client), User(client)
    follow(carol, alice)
    follow(carol, bob)
    p1 = make_post(alice)["id"]
    p2 = make_post(bob, audience="followers")["id"]
    p3 = make_post(carol)["id"]
    make_post(stranger)
    r = carol.get("/v1/feed")
    assert ids(r.json()) == [p3, p2, p1]
    assert r.json()["next_cursor"] is None
    item = r.json()["items"][1]
    assert item["author"]["username"] == bob.username
    assert item == bob.get(f"/v1/posts/{p2}").json()
    assert feed(alice) == [p1]


def test_following_backfills_recent_posts(client: TestClient) -> None:
    alice, bob = User(client), User(client)
    made = [make_post(alice)["id"] for _ in range(3)]
    assert feed(bob) == []
    follow(bob, alice)
    assert feed(bob) == made[::-1]


def test_private_accounts_reach_the_feed_only_after_approval(client: TestClient) -> None:
    alice, bob = User(client), User(client)
    make_private(alice)
    pid = make_post(alice, audience="followers")["id"]
    assert bob.post(f"/v1/users/{alice.username}/follow").json()["state"] == "requested"
    assert feed(bob) == []
    assert alice.post(f"/v1/me/follow-requests/{bob.username}/approve").status_code == 200
    assert feed(bob) == [pid]
    newer = make_post(alice)["id"]
    assert feed(bob) == [newer, pid]


def test_unfollow_removes_the_authors_posts(client: TestClient) -> None:
    alice, bob, carol = User(client), User(client), User(client)
    follow(carol, alice)
    follow(carol, bob)
    make_post(alice)
    pb = make_post(bob)["id"]
    unfollow(carol, alice)
    assert feed(carol) == [pb]


@pytest.mark.parametrize("author_blocks", [True, False])
def test_a_block_either_way_empties_both_feeds_of_the_other(client: TestClient, author_blocks: bool) -> None:
    alice, bob = User(client), User(client)
    follow(bob, alice)
    follow(alice, bob)
    pa, pb = make_post(alice)["id"], make_post(bob)["id"]
    assert feed(bob) == [pb, pa]
    if author_blocks:
        block(alice, bob)
    else:
        block(bob, alice)
    assert feed(bob) == [pb]
    assert feed(alice) == [pa]


def test_deleted_posts_leave_every_feed(client: TestClient) -> None:
    alice, bob = User(client), User(client)
    follow(bob, alice)
    keep, gone = make_post(alice)["id"], make_post(alice)["id"]
    assert alice.delete(f"/v1/posts/{gone}").status_code == 204
    assert feed(bob) == [keep]
    assert feed(alice) == [keep]


def test_a_deleted_account_leaves_every_feed(client: TestClient) -> None:
    alice, bob, carol = User(client), User(client), User(client)
    follow(bob, alice)
    follow(bob, carol)
    make_post(alice)
    pc = make_post(carol)["id"]
    assert alice.delete("/v1/me").status_code == 204
    assert feed(bob) == [pc]


def test_paging_is_stable_under_new_posts(client: TestClient) -> None:
    alice, bob = User(client), User(client)
    follow(bob, alice)
    made = [make_post(alice)["id"] for _ in range(5)]
    first = bob.get("/v1/feed", params={"limit": 2}).json()
    assert ids(first) == made[:2:-1]
    newer = make_post(alice)["id"]
    rest: list[str] = []
    cursor = first["next_cursor"]
    while cursor:
        page = bob.get("/v1/feed", params={"limit": 2, "cursor": cursor}).json()
        rest += ids(page)
        cursor = page["next_cursor"]
    assert ids(first) + rest == made[::-1]
    assert feed(bob)[0] == newer
    seen, pages = all_pages(bob, "/v1/feed", limit=3)
    assert seen == [newer, *made[::-1]]
    assert pages == 2


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "%%%"}])
def test_bad_paging_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    r = User(client).get("/v1/feed", params=params)
    assert r.status_code == 422


def test_stale_entries_never_leak_and_do_not_shorten_pages(app: tuple[TestClient, Container]) -> None:
    """The read path re-checks Privacy: plant entries the viewer must not see."""
    client, container = app
    alice, bob, secret = User(client), User(client), User(client)
    make_private(secret)
    follow(bob, alice)
    hidden = [make_post(secret, audience="followers")["id"] for _ in range(3)]
    shown = [make_post(alice)["id"] for _ in range(2)]
    hidden.append(make_post(secret)["id"])
    writer = container.read
    assert isinstance(writer, SqliteReadModel)
    writer.apply(
        [Put(FEED.name, {"user_id": int(bob.id), "post_id": int(p), "author_id": int(secret.id)}) for p in hidden]
        + [Put(FEED.name, {"user_id": int(bob.id), "post_id": 12345, "author_id": int(alice.id)})]  # post gone
    )
    assert feed(bob) == shown[::-1]
    r = bob.get("/v1/feed", params={"limit": 1})
    assert ids(r.json()) == [shown[1]]
    seen, _ = all_pages(bob, "/v1/feed", limit=1)
    assert seen == shown[::-1]
