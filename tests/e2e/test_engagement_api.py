"""Likes, comments and bookmarks over HTTP, with privacy, counts, bad input and idempotency."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from commands.ports import Reservation
from events.engagement import Commented, Liked
from infra.container import Container
from tests.apphelpers import User, make_client

IMAGE = Path("/work/shared/datasets/images/transparent.png")
IMAGE_BYTES = IMAGE.read_bytes() if IMAGE.exists() else b""
_media: dict[tuple[int, str], str] = {}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    client, container = make_client(tmp_path / "data", max_comment_chars=50)
    with client:
        yield client, container
    container.close()


@pytest.fixture
def client(app: tuple[TestClient, Container]) -> TestClient:
    return app[0]


@pytest.fixture
def container(app: tuple[TestClient, Container]) -> Container:
    return app[1]


def media_of(user: User) -> str:
    """One ready upload per user, reused by all their posts."""
    cache_key = (id(user.client), user.id)
    if cache_key not in _media:
        r = user.post("/v1/media", files={"file": ("pixel.png", IMAGE_BYTES, "image/png")})
        assert r.status_code == 202, r.text
        media_id = r.json()["id"]
        deadline = time.monotonic() + 10
        while user.get(f"/v1/media/{media_id}").json()["status"] != "ready":
            assert time.monotonic() < deadline, "media never became ready"
            time.sleep(0.05)
        _media[cache_key] = media_id
    return _media[cache_key]


def make_post(user: User, audience: str = "public", caption: str = "a post") -> str:
    r = user.post("/v1/posts", json={"caption": caption, "media_ids": [media_of(user)], "audience": audience})
    assert r.status_code == 201, r.text
    post_id: str = r.json()["id"]
    return post_id


def follow(follower: User, followee: User) -> None:
    r = follower.post(f"/v1/users/{followee.username}/follow")
    assert r.status_code == 200, r.text
    if r.json()["state"] == "requested":
        r = followee.post(f"/v1/me/follow-requests/{follower.username}/approve")
        assert r.status_code == 200, r.text


def block(blocker: User, blocked: User) -> None:
    r = blocker.post(f"/v1/users/{blocked.username}/block")
    assert r.status_code == 200, r.text


def go_private(user: User) -> None:
    r = user.patch("/v1/me", json={"private": True})
    assert r.status_code == 200, r.text


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def error_code(r: Any) -> str:
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


def events_after(container: Container, position: int) -> list[Any]:
    return [e for _, e in container.log.read(position, 1000)]


# -- likes ------------------------------------------------------------------


def test_like_and_unlike_report_state_and_liking_twice_appends_nothing(
    client: TestClient, container: Container
) -> None:
    author, alice = User(client), User(client)
    post = make_post(author)

    r = alice.post(f"/v1/posts/{post}/like")
    assert r.status_code == 200, r.text
    assert r.json() == {"post_id": post, "liked": True, "like_count": 1}
    assert r.headers["X-Glimpse-Consistency"]
    [liked] = events_after(container, int(r.headers["X-Glimpse-Consistency"]) - 1)
    assert isinstance(liked, Liked)
    assert (str(liked.user_id), str(liked.post_author_id)) == (alice.id, author.id)

    head = container.log.head()
    again = alice.post(f"/v1/posts/{post}/like")
    assert again.status_code == 200
    assert again.json() == {"post_id": post, "liked": True, "like_count": 1}
    assert container.log.head() == head

    r = alice.delete(f"/v1/posts/{post}/like")
    assert r.status_code == 200
    assert r.json() == {"post_id": post, "liked": False, "like_count": 0}
    head = container.log.head()
    r = alice.delete(f"/v1/posts/{post}/like")
    assert r.json() == {"post_id": post, "liked": False, "like_count": 0}
    assert container.log.head() == head

    # the reservation was released: liking again works
    r = alice.post(f"/v1/posts/{post}/like")
    assert r.json() == {"post_id": post, "liked": True, "like_count": 1}


def test_a_like_held_by_a_concurrent_writer_is_a_409(client: TestClient, container: Container) -> None:
    """The reservation, not only the likes table, guards one like per user and post: a
    writer whose read model has not seen the other's like yet loses with 409."""
    author, alice = User(client), User(client)
    post = make_post(author)
    container.log.append([], reserve=[Reservation("like", f"{post}:{alice.id}", int(alice.id))])
    r = alice.post(f"/v1/posts/{post}/like")
    assert r.status_code == 409 and error_code(r) == "like_taken"
    assert client.get(f"/v1/posts/{post}").json()["like_count"] == 0


def test_counts_and_flags_show_in_post_responses(client: TestClient) -> None:
    author, alice, bob = User(client), User(client), User(client)
    post = make_post(author)
    alice.post(f"/v1/posts/{post}/like")
    bob.post(f"/v1/posts/{post}/like")
    bob.post(f"/v1/posts/{post}/comments", json={"text": "one"})
    bob.post(f"/v1/posts/{post}/comments", json={"text": "two"})
    alice.post(f"/v1/posts/{post}/bookmark")

    seen = alice.get(f"/v1/posts/{post}").json()
    assert (seen["like_count"], seen["comment_count"], seen["liked"], seen["bookmarked"]) == (2, 2, True, True)
    seen = author.get(f"/v1/posts/{post}").json()
    assert (seen["like_count"], seen["comment_count"], seen["liked"], seen["bookmarked"]) == (2, 2, False, False)
    anonymous = client.get(f"/v1/posts/{post}").json()
    assert (anonymous["like_count"], anonymous["liked"]) == (2, False)

    alice.delete(f"/v1/posts/{post}/like")
    seen = alice.get(f"/v1/posts/{post}").json()
    assert (seen["like_count"], seen["liked"]) == (1, False)
    author_page = client.get(f"/v1/users/{author.username}/posts").json()
    assert (author_page["items"][0]["like_count"], author_page["items"][0]["comment_count"]) == (1, 2)


def test_likes_list_newest_first_paged_and_public(client: TestClient) -> None:
    author = User(client)
    post = make_post(author)
    likers = [User(client) for _ in range(5)]
    for u in likers:
        assert u.post(f"/v1/posts/{post}/like").status_code == 200
    newest_first = [u.id for u in reversed(likers)]

    first = client.get(f"/v1/posts/{post}/likes", params={"limit": 2}).json()
    assert ids(first) == newest_first[:2]
    assert set(first["items"][0]) == {"id", "username", "display_name"}
    assert first["items"][0]["username"] == likers[-1].username
    second = client.get(f"/v1/posts/{post}/likes", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ids(second) == newest_first[2:4]
    third = client.get(f"/v1/posts/{post}/likes", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    assert ids(third) == newest_first[4:]
    assert third["next_cursor"] is None
    assert ids(client.get(f"/v1/posts/{post}/likes").json()) == newest_first


def test_likes_list_leaves_out_users_blocked_either_way(client: TestClient) -> None:
    author, viewer, blocked_by_viewer, blocker_of_viewer, other = (User(client) for _ in range(5))
    post = make_post(author)
    for u in (blocked_by_viewer, blocker_of_viewer, other):
        u.post(f"/v1/posts/{post}/like")
    block(viewer, blocked_by_viewer)
    block(blocker_of_viewer, viewer)

    assert ids(viewer.get(f"/v1/posts/{post}/likes").json()) == [other.id]
    everyone = {blocked_by_viewer.id, blocker_of_viewer.id, other.id}
    assert set(ids(author.get(f"/v1/posts/{post}/likes").json())) == everyone
    page = viewer.get(f"/v1/posts/{post}/likes", params={"limit": 1}).json()
    assert ids(page) == [other.id] and page["next_cursor"] is None


def test_a_private_likers_like_shows_to_their_followers_and_the_post_author_only(client: TestClient) -> None:
    author, private, follower, stranger = (User(client) for _ in range(4))
    post = make_post(author)
    go_private(private)
    follow(follower, private)
    private.post(f"/v1/posts/{post}/like")

    assert ids(follower.get(f"/v1/posts/{post}/likes").json()) == [private.id]
    assert ids(private.get(f"/v1/posts/{post}/likes").json()) == [private.id]
    assert ids(author.get(f"/v1/posts/{post}/likes").json()) == [private.id]
    assert ids(stranger.get(f"/v1/posts/{post}/likes").json()) == []
    assert ids(client.get(f"/v1/posts/{post}/likes").json()) == []
    assert stranger.get(f"/v1/posts/{post}").json()["like_count"] == 1


def test_engaging_with_an_invisible_post_is_404(client: TestClient) -> None:
    author, stranger, follower = User(client), User(client), User(client)
    follow(follower, author)
    followers_only = make_post(author, audience="followers")
    public = make_post(author)

    for path in ("like", "bookmark"):
        assert stranger.post(f"/v1/posts/{followers_only}/{path}").status_code == 404
        assert stranger.delete(f"/v1/posts/{followers_only}/{path}").status_code == 404
    r = stranger.post(f"/v1/posts/{followers_only}/comments", json={"text": "hi"})
    assert r.status_code == 404 and error_code(r) == "not_found"
    assert stranger.get(f"/v1/posts/{followers_only}/likes").status_code == 404
    assert stranger.get(f"/v1/posts/{followers_only}/comments").status_code == 404
    assert client.get(f"/v1/posts/{followers_only}/comments").status_code == 404

    assert follower.post(f"/v1/posts/{followers_only}/like").json()["liked"] is True
    assert follower.post(f"/v1/posts/{followers_only}/comments", json={"text": "hi"}).status_code == 201
    assert follower.post(f"/v1/posts/{followers_only}/bookmark").json()["bookmarked"] is True

    go_private(author)
    assert stranger.post(f"/v1/posts/{public}/like").status_code == 404
    assert stranger.get(f"/v1/posts/{public}/likes").status_code == 404
    assert follower.post(f"/v1/posts/{public}/like").status_code == 200

    for missing in ("999", "not-a-number", "1" * 25):
        r = follower.post(f"/v1/posts/{missing}/like")
        assert r.status_code == 404 and error_code(r) == "not_found"


def test_blocks_either_way_hide_the_post_from_engagement(client: TestClient) -> None:
    author, blocked, blocker = User(client), User(client), User(client)
    post = make_post(author)
    block(author, blocked)
    block(blocker, author)
    for user in (blocked, blocker):
        assert user.post(f"/v1/posts/{post}/like").status_code == 404
        assert user.post(f"/v1/posts/{post}/comments", json={"text": "x"}).status_code == 404
        assert user.post(f"/v1/posts/{post}/bookmark").status_code == 404
        assert user.get(f"/v1/posts/{post}/likes").status_code == 404
        assert user.get(f"/v1/posts/{post}/comments").status_code == 404


def test_writes_need_a_token(client: TestClient) -> None:
    author = User(client)
    post = make_post(author)
    for method, path in (
        ("POST", f"/v1/posts/{post}/like"),
        ("DELETE", f"/v1/posts/{post}/like"),
        ("POST", f"/v1/posts/{post}/bookmark"),
        ("DELETE", f"/v1/posts/{post}/bookmark"),
        ("DELETE", "/v1/comments/1"),
        ("GET", "/v1/me/bookmarks"),
    ):
        r = client.request(method, path)
        assert r.status_code == 401, (method, path)
        assert error_code(r) == "unauthenticated"
    r = client.post(f"/v1/posts/{post}/comments", json={"text": "hi"})
    assert r.status_code == 401


# -- comments ---------------------------------------------------------------


def test_comment_is_created_with_its_author_and_listed_oldest_first(client: TestClient) -> None:
    author, alice = User(client), User(client)
    post = make_post(author)
    r = alice.post(f"/v1/posts/{post}/comments", json={"text": "  first!  "})
    assert r.status_code == 201, r.text
    comment = r.json()
    assert set(comment) == {"id", "post_id", "author", "text", "created_at"}
    assert comment["post_id"] == post and comment["text"] == "first!"
    assert comment["author"] == {"id": alice.id, "username": alice.username, "display_name": alice.username}
    assert isinstance(comment["id"], str) and comment["id"].isdigit()

    texts = ["second", "third", "fourth"]
    for text in texts:
        assert author.post(f"/v1/posts/{post}/comments", json={"text": text}).status_code == 201
    listed = client.get(f"/v1/posts/{post}/comments").json()
    assert [c["text"] for c in listed["items"]] == ["first!", *texts]
    assert listed["items"][0] == comment
    assert listed["next_cursor"] is None

    first = alice.get(f"/v1/posts/{post}/comments", params={"limit": 3}).json()
    assert [c["text"] for c in first["items"]] == ["first!", "second", "third"]
    rest = alice.get(f"/v1/posts/{post}/comments", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [c["text"] for c in rest["items"]] == ["fourth"] and rest["next_cursor"] is None


def test_comments_by_users_blocked_either_way_are_hidden(client: TestClient) -> None:
    author, viewer, blocked_by_viewer, blocker_of_viewer, other = (User(client) for _ in range(5))
    post = make_post(author)
    for u in (blocked_by_viewer, blocker_of_viewer, other):
        assert u.post(f"/v1/posts/{post}/comments", json={"text": f"by {u.username}"}).status_code == 201
    block(viewer, blocked_by_viewer)
    block(blocker_of_viewer, viewer)
    shown = viewer.get(f"/v1/posts/{post}/comments").json()
    assert [c["author"]["id"] for c in shown["items"]] == [other.id]
    assert len(author.get(f"/v1/posts/{post}/comments").json()["items"]) == 3


def test_bad_comment_input_is_422_with_a_reason(client: TestClient) -> None:
    author = User(client)
    post = make_post(author)
    cases = [
        ({"text": "   "}, "empty_comment"),
        ({"text": "x" * 51}, "comment_too_long"),
        ({}, "invalid"),
        ({"text": 5}, "invalid"),
        ({"text": "ok", "extra": 1}, "invalid"),
        ({"text": "x" * 20_000}, "invalid"),
    ]
    for body, code in cases:
        r = author.post(f"/v1/posts/{post}/comments", json=body)
        assert r.status_code == 422, (body, r.text)
        assert error_code(r) == code, body
    assert author.post(f"/v1/posts/{post}/comments", json={"text": " " + "x" * 50 + " "}).status_code == 201
    r = author.get(f"/v1/posts/{post}/comments", params={"limit": 0})
    assert r.status_code == 422 and error_code(r) == "invalid"
    r = author.get(f"/v1/posts/{post}/comments", params={"cursor": "garbage!"})
    assert r.status_code == 422 and error_code(r) == "invalid_cursor"
    r = author.get(f"/v1/posts/{post}/likes", params={"limit": 101})
    assert r.status_code == 422


def test_mentions_resolve_to_users_the_commenter_may_interact_with(client: TestClient, container: Container) -> None:
    # Short names, so the comment fits the test app's comment length limit however many users exist.
    author, alice, bob, blocker = User(client), User(client, "m_al"), User(client, "m_bo"), User(client, "m_bl")
    post = make_post(author)
    block(blocker, alice)
    text = f"hi @{bob.username} @{blocker.username} @nobody_here @{alice.username} @{bob.username.upper()}."
    r = alice.post(f"/v1/posts/{post}/comments", json={"text": text})
    assert r.status_code == 201
    position = int(r.headers["X-Glimpse-Consistency"])
    [event] = [e for e in events_after(container, position - 1) if isinstance(e, Commented)]
    assert event.mentions == (int(bob.id),)
    assert event.text == text and str(event.post_author_id) == author.id


def test_comment_author_or_post_author_may_delete_and_others_may_not(client: TestClient) -> None:
    author, alice, bob = User(client), User(client), User(client)
    post = make_post(author)
    c1 = alice.post(f"/v1/posts/{post}/comments", json={"text": "one"}).json()["id"]
    c2 = alice.post(f"/v1/posts/{post}/comments", json={"text": "two"}).json()["id"]
    c3 = bob.post(f"/v1/posts/{post}/comments", json={"text": "three"}).json()["id"]
    assert client.get(f"/v1/posts/{post}").json()["comment_count"] == 3

    r = bob.delete(f"/v1/comments/{c1}")
    assert r.status_code == 403 and error_code(r) == "not_comment_owner"
    assert alice.delete(f"/v1/comments/{c1}").status_code == 204
    assert author.delete(f"/v1/comments/{c2}").status_code == 204
    assert alice.delete(f"/v1/comments/{c1}").status_code == 404
    assert ids(client.get(f"/v1/posts/{post}/comments").json()) == [c3]
    assert client.get(f"/v1/posts/{post}").json()["comment_count"] == 1
    for missing in ("12345", "abc"):
        assert bob.delete(f"/v1/comments/{missing}").status_code == 404


def test_deleting_an_invisible_comment_is_404(client: TestClient) -> None:
    author, alice, stranger = User(client), User(client), User(client)
    post = make_post(author)
    comment = alice.post(f"/v1/posts/{post}/comments", json={"text": "hi"}).json()["id"]
    # the stranger would be refused (403) if they could see it...
    assert stranger.delete(f"/v1/comments/{comment}").status_code == 403
    # ...but once the post is private to them, the comment looks absent
    go_private(author)
    assert stranger.delete(f"/v1/comments/{comment}").status_code == 404
    # a post author blocked by the commenter no longer sees the comment either
    follow(alice, author)
    block(alice, author)
    assert author.delete(f"/v1/comments/{comment}").status_code == 404


# -- bookmarks --------------------------------------------------------------


def test_bookmarks_newest_first_paged_and_idempotent(client: TestClient, container: Container) -> None:
    author, alice = User(client), User(client)
    posts = [make_post(author, caption=f"p{i}") for i in range(3)]
    for post in posts:
        r = alice.post(f"/v1/posts/{post}/bookmark")
        assert r.status_code == 200 and r.json() == {"post_id": post, "bookmarked": True}
    head = container.log.head()
    assert alice.post(f"/v1/posts/{posts[0]}/bookmark").json()["bookmarked"] is True
    assert container.log.head() == head

    page = alice.get("/v1/me/bookmarks").json()
    assert ids(page) == list(reversed(posts))
    item = page["items"][0]
    assert item["bookmarked"] is True and item["author"]["id"] == author.id and item["caption"] == "p2"
    assert len(item["media"]) == 1
    first = alice.get("/v1/me/bookmarks", params={"limit": 2}).json()
    assert ids(first) == [posts[2], posts[1]]
    rest = alice.get("/v1/me/bookmarks", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ids(rest) == [posts[0]] and rest["next_cursor"] is None

    assert alice.delete(f"/v1/posts/{posts[1]}/bookmark").json() == {"post_id": posts[1], "bookmarked": False}
    head = container.log.head()
    assert alice.delete(f"/v1/posts/{posts[1]}/bookmark").json()["bookmarked"] is False
    assert container.log.head() == head
    assert ids(alice.get("/v1/me/bookmarks").json()) == [posts[2], posts[0]]
    assert alice.get(f"/v1/posts/{posts[1]}").json()["bookmarked"] is False
    assert author.get("/v1/me/bookmarks").json() == {"items": [], "next_cursor": None}


def test_bookmarks_leave_out_deleted_and_no_longer_visible_posts(client: TestClient) -> None:
    author, blocker, private_author, alice = (User(client) for _ in range(4))
    kept_old, deleted, kept_new = make_post(author), make_post(author), make_post(author)
    privatised, blocked = make_post(private_author), make_post(blocker)
    for post in (kept_old, deleted, privatised, blocked, kept_new):
        assert alice.post(f"/v1/posts/{post}/bookmark").status_code == 200
    assert author.delete(f"/v1/posts/{deleted}").status_code == 204
    block(blocker, alice)
    go_private(private_author)

    assert ids(alice.get("/v1/me/bookmarks").json()) == [kept_new, kept_old]
    page = alice.get("/v1/me/bookmarks", params={"limit": 1}).json()
    assert ids(page) == [kept_new]
    rest = alice.get("/v1/me/bookmarks", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert ids(rest) == [kept_old] and rest["next_cursor"] is None


def test_bookmarks_of_a_post_whose_author_went_private_disappear_until_followed(client: TestClient) -> None:
    author, alice = User(client), User(client)
    post = make_post(author)
    alice.post(f"/v1/posts/{post}/bookmark")
    go_private(author)
    assert ids(alice.get("/v1/me/bookmarks").json()) == []
    follow(alice, author)
    assert ids(alice.get("/v1/me/bookmarks").json()) == [post]


# -- deletion cascades ------------------------------------------------------


def test_deleting_a_post_removes_its_engagement(client: TestClient) -> None:
    author, alice = User(client), User(client)
    post, other = make_post(author), make_post(author)
    alice.post(f"/v1/posts/{post}/like")
    alice.post(f"/v1/posts/{post}/comments", json={"text": "bye"})
    alice.post(f"/v1/posts/{other}/like")
    assert author.delete(f"/v1/posts/{post}").status_code == 204
    assert alice.get(f"/v1/posts/{post}/likes").status_code == 404
    assert alice.get(f"/v1/posts/{post}/comments").status_code == 404
    assert alice.post(f"/v1/posts/{post}/like").status_code == 404
    assert alice.get(f"/v1/posts/{other}").json()["like_count"] == 1


def test_deleting_an_account_removes_its_likes_comments_and_lowers_counts(client: TestClient) -> None:
    author, alice, bob = User(client), User(client), User(client)
    post = make_post(author)
    for u in (alice, bob):
        u.post(f"/v1/posts/{post}/like")
        u.post(f"/v1/posts/{post}/comments", json={"text": f"from {u.username}"})
    assert alice.delete("/v1/me").status_code == 204
    seen = bob.get(f"/v1/posts/{post}").json()
    assert (seen["like_count"], seen["comment_count"]) == (1, 1)
    assert ids(bob.get(f"/v1/posts/{post}/likes").json()) == [bob.id]
    assert [c["author"]["id"] for c in bob.get(f"/v1/posts/{post}/comments").json()["items"]] == [bob.id]


# -- idempotency ------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer(client: TestClient, container: Container) -> None:
    author, alice = User(client), User(client)
    post, other = make_post(author), make_post(author)
    key = {"Idempotency-Key": "comment-1"}
    first = alice.post(f"/v1/posts/{post}/comments", json={"text": "once"}, headers=key)
    assert first.status_code == 201
    head = container.log.head()
    again = alice.post(f"/v1/posts/{post}/comments", json={"text": "once"}, headers=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert container.log.head() == head
    assert len(client.get(f"/v1/posts/{post}/comments").json()["items"]) == 1

    reused = alice.post(f"/v1/posts/{post}/comments", json={"text": "different"}, headers=key)
    assert reused.status_code == 422 and error_code(reused) == "idempotency_key_reused"

    like_key = {"Idempotency-Key": "like-1"}
    liked = alice.post(f"/v1/posts/{post}/like", headers=like_key)
    alice.delete(f"/v1/posts/{post}/like")
    replay = alice.post(f"/v1/posts/{post}/like", headers=like_key)
    assert replay.json() == liked.json() and replay.headers.get("Idempotent-Replayed") == "true"
    assert client.get(f"/v1/posts/{post}").json()["like_count"] == 0  # the replay appended nothing
    r = alice.post(f"/v1/posts/{other}/like", headers=like_key)
    assert r.status_code == 422 and error_code(r) == "idempotency_key_reused"

    deleting = {"Idempotency-Key": "del-1"}
    comment = first.json()["id"]
    assert alice.delete(f"/v1/comments/{comment}", headers=deleting).status_code == 204
    assert alice.delete(f"/v1/comments/{comment}", headers=deleting).status_code == 204
    assert alice.delete(f"/v1/comments/{comment}").status_code == 404
