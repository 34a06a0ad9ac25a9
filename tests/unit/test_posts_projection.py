"""The posts read model: rows, per-author lists, exact counts, media links, erasure."""

from __future__ import annotations

from projections.posts import MEDIA_POSTS, POSTS, USER_POST_COUNTS, USER_POSTS
from projections.posts.views import post_view
from tests.unit.posts_world import World


def count(w: World, user: int) -> int:
    row = w.read.get(USER_POST_COUNTS.name, {"user_id": user})
    return int(row["posts"] or 0) if row else 0


def test_post_created_writes_the_post_the_author_list_and_the_count() -> None:
    w = World()
    alice = w.user("alice")
    m1, m2 = w.media(alice), w.media(alice, sha="b" * 64)
    pid = w.post(alice, audience="followers", media=(m2, m1))
    post = w.read.get(POSTS.name, {"post_id": pid})
    assert post is not None
    assert post["author_id"] == alice
    assert post["media_ids"] == [m2, m1]  # the author's order is kept
    assert post["audience"] == "followers"
    assert post["created_at"] == "2025-06-01T12:00:00Z"
    assert w.read.scan(USER_POSTS.name, {"author_id": alice}) == [
        {"author_id": alice, "post_id": pid, "audience": "followers"}
    ]
    assert count(w, alice) == 1
    assert [r["post_id"] for r in w.read.scan(MEDIA_POSTS.name, {"media_id": m1})] == [pid]


def test_redelivered_events_count_once() -> None:
    w = World()
    alice = w.user("alice")
    event = World.post_event(w.next_id(), alice)
    w.apply(event)
    w.apply(event)
    assert count(w, alice) == 1
    w.delete_post(event.post_id, alice)
    w.delete_post(event.post_id, alice)
    assert count(w, alice) == 0
    assert w.read.get(POSTS.name, {"post_id": event.post_id}) is None


def test_post_deleted_removes_the_post_and_its_media_links() -> None:
    w = World()
    alice = w.user("alice")
    m = w.media(alice)
    keep, gone = w.post(alice, media=(m,)), w.post(alice, media=(m,))
    w.delete_post(gone, alice)
    assert [r["post_id"] for r in w.read.scan(USER_POSTS.name, {"author_id": alice})] == [keep]
    assert [r["post_id"] for r in w.read.scan(MEDIA_POSTS.name, {"media_id": m})] == [keep]
    assert count(w, alice) == 1


def test_account_deleted_erases_the_authors_posts_and_count_only() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    m = w.media(alice)
    w.post(alice, media=(m,))
    w.post(alice)
    theirs = w.post(bob)
    w.delete_account(alice)
    assert w.read.scan(USER_POSTS.name, {"author_id": alice}) == []
    assert w.read.get(USER_POST_COUNTS.name, {"user_id": alice}) is None
    assert w.read.scan(MEDIA_POSTS.name, {"media_id": m}) == []
    assert [r["post_id"] for r in w.read.scan(POSTS.name, {})] == [theirs]
    assert count(w, bob) == 1


def test_post_view_has_the_public_shape() -> None:
    w = World()
    alice = w.user("alice")
    m = w.media(alice)
    pid = w.post(alice, media=(m,))
    post = w.read.get(POSTS.name, {"post_id": pid})
    account = w.read.get("accounts", {"user_id": alice})
    media = w.read.get("media", {"media_id": m})
    assert post is not None and account is not None and media is not None
    view = post_view(post, account, [media])
    assert view == {
        "id": str(pid),
        "author": {"id": str(alice), "username": "alice", "display_name": "Alice"},
        "caption": f"post {pid}",
        "media": [
            {
                "id": str(m),
                "status": "ready",
                "kind": "image",
                "width": 10,
                "height": 20,
                "renditions": [{"url": "/media/" + "a" * 64 + ".webp", "width": 10, "height": 20, "format": "webp"}],
                "placeholder": "data:image/webp;base64,AAAA",
                "duration_ms": None,
            }
        ],
        "audience": "public",
        "created_at": "2025-06-01T12:00:00Z",
        "like_count": 0,
        "comment_count": 0,
        "liked": False,
        "bookmarked": False,
    }
