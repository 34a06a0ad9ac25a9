"""Pure story decisions: post, view, expire."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from commands.context import Meta
from commands.errors import Conflict, NotFound
from commands.stories import PostStory, decide_expire_stories, decide_post_story, decide_view_story
from events.stories import StoryExpired, StoryPosted, StoryViewed

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
AUTHOR = {"user_id": 1, "username": "alice", "display_name": "Alice"}
MEDIA = {
    "media_id": 50,
    "owner_id": 1,
    "status": "ready",
    "storage_key": "originals/ab/abc.png",
    "content_type": "image/png",
    "kind": "image",
    "width": 4,
    "height": 3,
}


def meta(actor: int | None = 1) -> Meta:
    ids = itertools.count(9000)
    return Meta(actor_id=actor, now=NOW, new_id=lambda: next(ids), idempotency_key="k")


def story_row(**overrides: Any) -> dict[str, Any]:
    return {"story_id": 77, "author_id": 1, "audience": "followers", "viewer_count": 0} | overrides


def test_post_story_emits_story_posted_with_expiry_and_answers_the_story() -> None:
    cmd = PostStory(media_id="50", audience="close_friends")
    decision = decide_post_story(AUTHOR, MEDIA, cmd, 3600, meta())
    assert decision.status == 201
    [event] = decision.events
    assert isinstance(event, StoryPosted)
    assert event.story_id == event.event_id == 9000
    assert (event.author_id, event.media_id, event.audience) == (1, 50, "close_friends")
    assert event.expires_at == NOW + timedelta(hours=1)
    assert decision.body["id"] == "9000"
    assert decision.body["author"] == {"id": "1", "username": "alice", "display_name": "Alice"}
    assert decision.body["media"]["id"] == "50" and decision.body["media"]["width"] == 4
    assert decision.body["expires_at"] == (NOW + timedelta(hours=1)).isoformat()
    assert decision.body["created_at"] == NOW.isoformat()


@pytest.mark.parametrize("media", [None, MEDIA | {"owner_id": 2}])
def test_post_story_needs_my_own_media(media: dict[str, Any] | None) -> None:
    with pytest.raises(NotFound):
        decide_post_story(AUTHOR, media, PostStory(media_id="50", audience="followers"), 60, meta())


def test_post_story_takes_media_still_processing_but_not_failed_media() -> None:
    cmd = PostStory(media_id="50", audience="followers")
    decision = decide_post_story(AUTHOR, MEDIA | {"status": "processing"}, cmd, 60, meta())
    assert decision.status == 201 and decision.body["media"]["status"] == "processing"
    with pytest.raises(Conflict) as err:
        decide_post_story(AUTHOR, MEDIA | {"status": "failed"}, cmd, 60, meta())
    assert err.value.code == "media_failed"


@pytest.mark.parametrize(
    "body",
    [
        {"media_id": "x1", "audience": "followers"},
        {"media_id": "1", "audience": "public"},
        {"media_id": "1" * 20, "audience": "followers"},
        {"media_id": "1", "audience": "followers", "extra": True},
    ],
)
def test_post_story_command_rejects_bad_input(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        PostStory.model_validate(body)


def test_view_records_a_first_view() -> None:
    decision = decide_view_story(story_row(), viewer=2, seen=False, viewer_limit=10, meta=meta(2))
    assert decision.status == 204
    [event] = decision.events
    assert isinstance(event, StoryViewed)
    assert (event.story_id, event.author_id, event.viewer_id, event.aggregate_id) == (77, 1, 2, 77)


@pytest.mark.parametrize(
    ("viewer", "seen", "count"),
    [(1, False, 0), (2, True, 0), (2, False, 10)],
    ids=["author", "already-seen", "viewer-limit-reached"],
)
def test_view_records_nothing_for_the_author_a_repeat_or_past_the_limit(viewer: int, seen: bool, count: int) -> None:
    decision = decide_view_story(story_row(viewer_count=count), viewer=viewer, seen=seen, viewer_limit=10, meta=meta())
    assert decision.events == [] and decision.status == 204


def test_view_of_an_invisible_story_is_not_found() -> None:
    with pytest.raises(NotFound):
        decide_view_story(None, viewer=2, seen=False, viewer_limit=10, meta=meta(2))


def test_expire_emits_only_for_stories_whose_time_has_come() -> None:
    now_ms = int(NOW.timestamp() * 1000)
    due = [
        {"story_id": 1, "author_id": 5, "expires_ms": now_ms - 1},
        {"story_id": 2, "author_id": 6, "expires_ms": now_ms},
        {"story_id": 3, "author_id": 7, "expires_ms": now_ms + 1},
    ]
    decision = decide_expire_stories(due, NOW, meta(None))
    assert [(e.story_id, e.author_id) for e in decision.events if isinstance(e, StoryExpired)] == [(1, 5), (2, 6)]
    assert len(decision.events) == 2
    assert decision.body == {"expired": 2}
