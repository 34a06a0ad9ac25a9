"""HTTP: POST /v1/posts, GET /v1/posts/{id}, DELETE /v1/posts/{id}, GET /v1/users/{username}/posts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.container import Container
from projections.posts import POSTS
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import all_pages, block, follow, ids, make_post, make_private, media_id


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    client, container = make_client(tmp_path / "data", max_caption_chars=50, max_mentions=2)
    with client:
        yield client, container
    container.close()


@pytest.fixture
def client(app: tuple[TestClient, Container]) -> TestClient:
    return app[0]


def error_code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def create(user: User, **body: Any) -> Any:
    payload = {"caption": "", "audience": "public"} | body
    headers = {"Idempotency-Key": payload.pop("key")} if "key" in payload else {}
    return user.post("/v1/posts", json=payload, headers=headers)


# -- create -----------------------------------------------------------------------------


def test_create_answers_201_with_the_post_and_get_returns_the_same(client: TestClient) -> None:
    alice = User(client)
    m1, m2 = media_id(alice), media_id(alice)
    r = create(alice, caption="  sunset  ", media_ids=[m2, m1], audience="followers")
    assert r.status_code == 201, r.text
    assert r.headers["X-Glimpse-Consistency"]
    post = r.json()
    assert set(post) == {
        "id",
        "author",
        "caption",
        "media",
        "audience",
        "created_at",
        "like_count",
        "comment_count",
        "liked",
        "bookmarked",
    }
    assert post["id"].isdigit()
    assert post["author"] == {"id": alice.id, "username": alice.username, "display_name": alice.username}
    assert post["caption"] == "sunset"
    assert [m["id"] for m in post["media"]] == [m2, m1]
    assert post["media"][0] == alice.get(f"/v1/media/{m2}").json()
    assert post["audience"] == "followers"
    assert post["created_at"].endswith("Z")
    assert (post["like_count"], post["comment_count"], post["liked"], post["bookmarked"]) == (0, 0, False, False)
    assert alice.get(f"/v1/posts/{post['id']}").json() == post


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"media_ids": []}, "invalid"),
        ({"media_ids": ["1"] * 11}, "invalid"),
        ({"media_ids": ["123"]}, "unknown_media"),
        ({"media_ids": ["abc"]}, "invalid_media_id"),
        ({"audience": "everyone"}, "invalid"),
        ({"caption": "x" * 51}, "caption_too_long"),
        ({"surprise": True}, "invalid"),
    ],
)
def test_create_refuses_bad_input(client: TestClient, body: dict[str, Any], code: str) -> None:
    alice = User(client)
    payload = {"media_ids": [media_id(alice)]} | body
    r = create(alice, **payload)
    assert r.status_code == 422, r.text
    assert error_code(r) == code


def test_media_must_be_the_authors(client: TestClient) -> None:
    alice, bob = User(client), User(client)
    theirs = media_id(bob)
    r = create(alice, media_ids=[theirs])
    assert r.status_code == 422
    assert error_code(r) == "unknown_media"
    mine = [media_id(alice) for _ in range(3)]
    r = create(alice, media_ids=mine)
    assert r.status_code == 201
    assert [m["id"] for m in r.json()["media"]] == mine


def test_create_needs_a_signed_in_user(client: TestClient) -> None:
    r = client.post("/v1/posts", json={"caption": "", "media_ids": ["1"], "audience": "public"})
    assert r.status_code == 401


def test_mentions_resolve_to_users_the_author_may_interact_with(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice, bob, carol, dave = User(client), User(client), User(client), User(client)
    block(dave, alice)
    caption = f"with @{bob.username.upper()} @nobody_here @{dave.username} @{carol.username}"
    post = make_post(alice, caption=caption)
    assert post["caption"] == caption  # unknown and blocked names stay text
    row = container.read.get(POSTS.name, {"post_id": int(post["id"])})
    assert row is not None
    assert row["mentions"] == [int(bob.id), int(carol.id)]
    many = " ".join(f"@{u.username}" for u in (bob, carol, alice, bob))
    row = container.read.get(POSTS.name, {"post_id": int(make_post(alice, caption=many)["id"])})
    assert row is not None
    assert row["mentions"] == [int(bob.id), int(carol.id)]  # capped by max_mentions=2, no self


def test_create_is_idempotent(client: TestClient) -> None:
    alice = User(client)
    m = media_id(alice)
    first = create(alice, media_ids=[m], key="post-1")
    again = create(alice, media_ids=[m], key="post-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert ids(alice.get(f"/v1/users/{alice.username}/posts").json()) == [first.json()["id"]]
    assert alice.get(f"/v1/users/{alice.username}").json()["counts"]["posts"] == 1
    changed = create(alice, media_ids=[m], caption="different", key="post-1")
    assert changed.status_code == 422
    assert error_code(changed) == "idempotency_key_reused"


# -- read one -------------------------------------------------------------------------------


def test_get_post_follows_audience_private_accounts_and_blocks(client: TestClient) -> None:
    alice, follower, stranger = User(client), User(client), User(client)
    follow(follower, alice)
    public = make_post(alice)["id"]
    followers_only = make_post(alice, audience="followers")["id"]

    def status(user: User | None, pid: str) -> int:
        return int((user.get if user else client.get)(f"/v1/posts/{pid}").status_code)

    assert [status(u, public) for u in (None, stranger, follower, alice)] == [200, 200, 200, 200]
    assert [status(u, followers_only) for u in (None, stranger, follower, alice)] == [404, 404, 200, 200]
    make_private(alice)
    assert [status(u, public) for u in (None, stranger, follower, alice)] == [404, 404, 200, 200]
    block(follower, alice)  # the blocker loses sight too: blocks are two-way
    assert [status(u, public) for u in (follower, alice)] == [404, 200]
    r = stranger.get(f"/v1/posts/{public}")
    assert r.json() == {"error": {"code": "not_found", "message": "no such post"}}


def test_blocked_by_the_author_cannot_see_a_public_post(client: TestClient) -> None:
    alice, bob = User(client), User(client)
    pid = make_post(alice)["id"]
    block(alice, bob)
    assert bob.get(f"/v1/posts/{pid}").status_code == 404
    assert client.get(f"/v1/posts/{pid}").status_code == 200


@pytest.mark.parametrize("bad", ["x", "12a", "9" * 25, "0"])
def test_unknown_or_malformed_post_ids_are_404(client: TestClient, bad: str) -> None:
    assert client.get(f"/v1/posts/{bad}").status_code == 404
    assert User(client).delete(f"/v1/posts/{bad}").status_code == 404


# -- delete -------------------------------------------------------------------------------------


def test_only_the_author_deletes(client: TestClient) -> None:
    alice, follower, stranger = User(client), User(client), User(client)
    follow(follower, alice)
    pid = make_post(alice, audience="followers")["id"]
    r = follower.delete(f"/v1/posts/{pid}")
    assert r.status_code == 403
    assert error_code(r) == "not_author"
    assert stranger.delete(f"/v1/posts/{pid}").status_code == 404  # cannot see it, so it is not there
    assert client.delete(f"/v1/posts/{pid}").status_code == 401
    assert alice.get(f"/v1/users/{alice.username}").json()["counts"]["posts"] == 1
    r = alice.delete(f"/v1/posts/{pid}", headers={"Idempotency-Key": "del-1"})
    assert r.status_code == 204
    assert r.headers["X-Glimpse-Consistency"]
    replay = alice.delete(f"/v1/posts/{pid}", headers={"Idempotency-Key": "del-1"})
    assert replay.status_code == 204
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert alice.delete(f"/v1/posts/{pid}").status_code == 404
    assert alice.get(f"/v1/posts/{pid}").status_code == 404
    assert follower.get(f"/v1/posts/{pid}").status_code == 404
    assert alice.get(f"/v1/users/{alice.username}/posts").json()["items"] == []
    assert alice.get(f"/v1/users/{alice.username}").json()["counts"]["posts"] == 0


# -- an author's posts -----------------------------------------------------------------------------


def test_user_posts_are_newest_first_and_page_by_cursor(client: TestClient) -> None:
    alice = User(client)
    made = [make_post(alice)["id"] for _ in range(5)]
    seen, pages = all_pages(client, f"/v1/users/{alice.username}/posts", limit=2)
    assert seen == made[::-1]
    assert pages == 3
    r = client.get(f"/v1/users/{alice.username}/posts", params={"limit": 5})
    assert ids(r.json()) == made[::-1]
    assert r.json()["next_cursor"] is None
    r = client.get(f"/v1/users/{alice.username}/posts")  # default limit
    assert len(r.json()["items"]) == 5


def test_paging_is_stable_when_posts_arrive_meanwhile(client: TestClient) -> None:
    alice = User(client)
    made = [make_post(alice)["id"] for _ in range(4)]
    first = client.get(f"/v1/users/{alice.username}/posts", params={"limit": 2}).json()
    newer = make_post(alice)["id"]
    second = client.get(f"/v1/users/{alice.username}/posts", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ids(first) + ids(second) == made[::-1]
    assert newer not in ids(second)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor!"}, {"cursor": "czp4"}])
def test_bad_paging_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    alice = User(client)
    r = client.get(f"/v1/users/{alice.username}/posts", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in ("invalid", "invalid_cursor")


def test_user_posts_show_only_what_the_viewer_may_see(client: TestClient) -> None:
    alice, follower, stranger = User(client), User(client), User(client)
    follow(follower, alice)
    public = make_post(alice)["id"]
    followers_only = make_post(alice, audience="followers")["id"]
    path = f"/v1/users/{alice.username}/posts"
    assert ids(client.get(path).json()) == [public]
    assert ids(stranger.get(path).json()) == [public]
    assert ids(follower.get(path).json()) == [followers_only, public]
    assert ids(alice.get(path).json()) == [followers_only, public]


def test_followers_only_posts_do_not_shorten_pages(client: TestClient) -> None:
    alice = User(client)
    visible = []
    for i in range(6):
        make_post(alice, audience="followers")
        if i % 2 == 0:
            visible.append(make_post(alice)["id"])
    seen, _ = all_pages(client, f"/v1/users/{alice.username}/posts", limit=2)
    assert seen == visible[::-1]
    r = client.get(f"/v1/users/{alice.username}/posts", params={"limit": 3})
    assert ids(r.json()) == visible[::-1]


def test_private_accounts_posts_need_a_follow(client: TestClient) -> None:
    alice, follower, stranger = User(client), User(client), User(client)
    make_private(alice)
    pid = make_post(alice)["id"]
    path = f"/v1/users/{alice.username}/posts"
    r = stranger.get(path)
    assert r.status_code == 404
    assert error_code(r) == "not_found"
    assert client.get(path).status_code == 404
    follow(follower, alice)
    assert ids(follower.get(path).json()) == [pid]


def test_blocks_hide_user_posts_both_ways(client: TestClient) -> None:
    alice, bob = User(client), User(client)
    make_post(alice)
    make_post(bob)
    block(alice, bob)
    assert bob.get(f"/v1/users/{alice.username}/posts").status_code == 404
    assert alice.get(f"/v1/users/{bob.username}/posts").status_code == 404
    assert client.get(f"/v1/users/{alice.username}/posts").status_code == 200


def test_unknown_user_posts_are_404(client: TestClient) -> None:
    assert client.get("/v1/users/nobody_at_all/posts").status_code == 404


def test_a_deleted_accounts_posts_are_gone(client: TestClient) -> None:
    alice, bob = User(client), User(client)
    pid = make_post(alice)["id"]
    assert alice.delete("/v1/me").status_code == 204
    assert bob.get(f"/v1/posts/{pid}").status_code == 404
    assert bob.get(f"/v1/users/{alice.username}/posts").status_code == 404
