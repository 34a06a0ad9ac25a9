"""Pure engagement decisions: likes, comments, bookmarks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from commands.context import Meta
from commands.engagement import (
    CommentRef,
    PostRef,
    check_comment_text,
    decide_bookmark,
    decide_comment,
    decide_delete_comment,
    decide_like,
    decide_unbookmark,
    decide_unlike,
    like_reservation,
)
from commands.errors import Forbidden, Invalid
from events.engagement import Bookmarked, CommentDeleted, Commented, Liked, Unbookmarked, Unliked

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AUTHOR, ALICE, BOB = 1, 2, 3
POST = PostRef(post_id=100, author_id=AUTHOR)
ALICE_ACCOUNT = {"user_id": ALICE, "username": "alice", "display_name": "Alice A"}


def meta(actor: int = ALICE) -> Meta:
    return Meta(actor_id=actor, now=NOW, new_id=itertools.count(5000).__next__, idempotency_key="k1")


def test_like_appends_liked_with_the_post_author_and_reserves_the_pair() -> None:
    d = decide_like(POST, liked=False, like_count=4, user_id=ALICE, meta=meta())
    assert len(d.events) == 1
    event = d.events[0]
    assert isinstance(event, Liked)
    assert (event.post_id, event.user_id, event.post_author_id, event.aggregate_id) == (100, ALICE, AUTHOR, 100)
    assert event.idempotency_key == "k1"
    assert d.reserve == (like_reservation(100, ALICE),)
    assert like_reservation(100, ALICE).kind == "like" and like_reservation(100, ALICE).key == "100:2"
    assert d.status == 200
    assert d.body == {"post_id": "100", "liked": True, "like_count": 5}


def test_liking_again_appends_nothing_and_answers_the_same_state() -> None:
    d = decide_like(POST, liked=True, like_count=5, user_id=ALICE, meta=meta())
    assert d.events == [] and d.reserve == ()
    assert d.body == {"post_id": "100", "liked": True, "like_count": 5}


def test_unlike_appends_unliked_and_releases_the_reservation() -> None:
    d = decide_unlike(POST, liked=True, like_count=5, user_id=ALICE, meta=meta())
    assert [type(e) for e in d.events] == [Unliked]
    assert d.release == (like_reservation(100, ALICE),)
    assert d.body == {"post_id": "100", "liked": False, "like_count": 4}


def test_unliking_what_is_not_liked_appends_nothing() -> None:
    d = decide_unlike(POST, liked=False, like_count=0, user_id=ALICE, meta=meta())
    assert d.events == [] and d.release == ()
    assert d.body == {"post_id": "100", "liked": False, "like_count": 0}


def test_comment_text_is_stripped_and_bounded() -> None:
    assert check_comment_text("  hi there \n", 10) == "hi there"
    assert check_comment_text("  " + "x" * 10 + " ", 10) == "x" * 10
    with pytest.raises(Invalid) as empty:
        check_comment_text(" \n\t ", 10)
    assert empty.value.code == "empty_comment"
    with pytest.raises(Invalid) as long:
        check_comment_text("x" * 11, 10)
    assert long.value.code == "comment_too_long"


def test_decide_comment_makes_the_comment_id_the_event_id() -> None:
    d = decide_comment(POST, ALICE_ACCOUNT, "nice @bob", (BOB,), meta())
    assert d.status == 201
    [event] = d.events
    assert isinstance(event, Commented)
    assert event.comment_id == event.event_id == 5000
    assert (event.post_id, event.author_id, event.post_author_id, event.aggregate_id) == (100, ALICE, AUTHOR, 100)
    assert event.text == "nice @bob" and event.mentions == (BOB,)
    assert d.body == {
        "id": "5000",
        "post_id": "100",
        "author": {"id": str(ALICE), "username": "alice", "display_name": "Alice A"},
        "text": "nice @bob",
        "created_at": "2026-01-02T03:04:05Z",
    }


def test_comment_author_or_post_author_may_delete_a_comment() -> None:
    comment = CommentRef(comment_id=7, post_id=100, author_id=ALICE)
    for actor in (ALICE, AUTHOR):
        d = decide_delete_comment(comment, POST, actor, meta(actor))
        [event] = d.events
        assert isinstance(event, CommentDeleted)
        assert (event.comment_id, event.post_id, event.deleted_by) == (7, 100, actor)
        assert d.status == 204


def test_anyone_else_may_not_delete_a_comment() -> None:
    with pytest.raises(Forbidden):
        decide_delete_comment(CommentRef(7, 100, ALICE), POST, BOB, meta(BOB))


def test_bookmark_and_unbookmark_are_idempotent_decisions() -> None:
    d = decide_bookmark(POST, bookmarked=False, user_id=ALICE, meta=meta())
    [event] = d.events
    assert isinstance(event, Bookmarked) and event.aggregate_id == ALICE and event.post_id == 100
    assert d.body == {"post_id": "100", "bookmarked": True}
    assert decide_bookmark(POST, bookmarked=True, user_id=ALICE, meta=meta()).events == []
    d = decide_unbookmark(POST, bookmarked=True, user_id=ALICE, meta=meta())
    assert [type(e) for e in d.events] == [Unbookmarked]
    assert d.body == {"post_id": "100", "bookmarked": False}
    assert decide_unbookmark(POST, bookmarked=False, user_id=ALICE, meta=meta()).events == []
