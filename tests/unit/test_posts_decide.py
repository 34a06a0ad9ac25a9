"""Pure post decisions: create (caption, media, mentions, limits) and delete (who may)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from commands.context import CommandContext, Meta
from commands.errors import Forbidden, Invalid, NotFound
from commands.posts import (
    CreatePost,
    PostLimits,
    decide_create_post,
    decide_delete_post,
    mention_names,
    resolve_mentions,
)
from events.posts import PostCreated, PostDeleted
from tests.unit.posts_world import NOW, World

AUTHOR: dict[str, Any] = {"user_id": 7, "username": "alice", "display_name": "Alice"}


def meta(actor: int = 7) -> Meta:
    ids = itertools.count(5000)
    return Meta(actor_id=actor, now=NOW, new_id=lambda: next(ids))


def media_row(media_id: int, owner: int = 7, status: str = "ready") -> dict[str, Any]:
    return {
        "media_id": media_id,
        "owner_id": owner,
        "status": status,
        "storage_key": "originals/ab/" + "ab" * 32 + ".jpg",
        "content_type": "image/jpeg",
        "kind": "image",
        "width": 4,
        "height": 3,
        "size_bytes": 10,
        "sha256": "ab" * 32,
    }


def create(**fields: Any) -> CreatePost:
    return CreatePost.model_validate({"media_ids": ["1"]} | fields)


def test_create_post_emits_post_created_and_answers_the_post() -> None:
    cmd = create(caption="  hello @bob  ", media_ids=["2", "1"], audience="followers")
    d = decide_create_post(AUTHOR, cmd, [media_row(1), media_row(2)], [9], PostLimits(), meta())
    assert d.status == 201
    [event] = d.events
    assert isinstance(event, PostCreated)
    assert event.post_id == event.event_id == event.aggregate_id == 5000
    assert event.caption == "hello @bob"
    assert event.media_ids == (2, 1)
    assert event.audience == "followers"
    assert event.mentions == (9,)
    assert d.body["id"] == "5000"
    assert d.body["author"] == {"id": "7", "username": "alice", "display_name": "Alice"}
    assert [m["id"] for m in d.body["media"]] == ["2", "1"]
    assert d.body["created_at"] == "2025-06-01T12:00:00Z"
    assert d.body["like_count"] == 0 and d.body["liked"] is False


def test_mentions_are_capped() -> None:
    d = decide_create_post(AUTHOR, create(), [media_row(1)], [1, 2, 3, 4], PostLimits(max_mentions=2), meta())
    assert d.events[0].mentions == (1, 2)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("cmd", "media", "limits", "code"),
    [
        (create(caption="x" * 11), [media_row(1)], PostLimits(max_caption_chars=10), "caption_too_long"),
        (
            create(media_ids=["1", "2", "3"]),
            [media_row(i) for i in (1, 2, 3)],
            PostLimits(max_media=2),
            "too_many_media",
        ),
        (create(media_ids=["1", "1"]), [media_row(1)], PostLimits(), "duplicate_media"),
        (create(media_ids=["x1"]), [], PostLimits(), "invalid_media_id"),
        (create(media_ids=["2"]), [], PostLimits(), "unknown_media"),
        (create(), [media_row(1, owner=8)], PostLimits(), "unknown_media"),
        (create(), [media_row(1, status="failed")], PostLimits(), "media_failed"),
    ],
)
def test_create_post_rejects_bad_input(cmd: CreatePost, media: list[Any], limits: PostLimits, code: str) -> None:
    with pytest.raises(Invalid) as err:
        decide_create_post(AUTHOR, cmd, media, [], limits, meta())
    assert err.value.code == code


def test_create_post_needs_an_account() -> None:
    with pytest.raises(NotFound):
        decide_create_post(None, create(), [media_row(1)], [], PostLimits(), meta())


@pytest.mark.parametrize(
    "body",
    [
        {"media_ids": []},
        {"media_ids": [str(i) for i in range(11)]},
        {"media_ids": ["1"], "audience": "close_friends"},
        {"media_ids": ["1"], "extra": 1},
        {"media_ids": ["1"], "caption": "x" * 10_001},
        {"caption": "no media"},
    ],
)
def test_the_command_model_refuses_malformed_bodies(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CreatePost.model_validate(body)


def test_mention_names() -> None:
    caption = "hi @Bob, @bob again, @carol.smith. mail me at x@alice.com @_x @.bad @toolong" + "x" * 30
    assert mention_names(caption) == ["bob", "carol.smith", "_x"]
    assert mention_names("@a@b") == ["a"]
    assert mention_names("(@dave)\n@eve!") == ["dave", "eve"]


def test_resolve_mentions_keeps_known_interactable_users_only() -> None:
    w = World()
    alice, bob, carol, dave = w.user("alice"), w.user("bob"), w.user("carol"), w.user("dave")
    w.block(dave, alice)
    ctx = CommandContext(meta=meta(alice), read=w.read)
    caption = "@bob @ghost @dave @alice @carol @bob"
    assert resolve_mentions(ctx, alice, caption, limit=10) == [bob, carol]
    assert resolve_mentions(ctx, alice, caption, limit=1) == [bob]


def test_delete_post_by_its_author() -> None:
    post = {"post_id": 42, "author_id": 7, "audience": "public"}
    d = decide_delete_post(post, 7, True, meta())
    assert d.status == 204
    [event] = d.events
    assert isinstance(event, PostDeleted)
    assert (event.post_id, event.author_id, event.aggregate_id) == (42, 7, 42)


def test_delete_post_by_someone_else() -> None:
    post = {"post_id": 42, "author_id": 7, "audience": "public"}
    with pytest.raises(Forbidden):
        decide_delete_post(post, 8, True, meta(8))
    with pytest.raises(NotFound):  # they cannot even see it: it looks absent
        decide_delete_post(post, 8, False, meta(8))
    with pytest.raises(NotFound):
        decide_delete_post(None, 7, False, meta())
