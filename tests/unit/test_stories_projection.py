"""The stories projection and its read helpers, over the in-memory read model."""

from __future__ import annotations

from datetime import timedelta

from projections.privacy import Privacy
from projections.stories import STORIES, STORY_EXPIRY, STORY_TRAY, STORY_VIEWERS, STORY_VIEWS, USER_STORIES
from projections.stories.views import has_seen, live_story, render_story, visible_live_entries
from tests.unit.stories_world import World


def tray_authors(w: World, viewer: int) -> set[int]:
    return {int(r["author_id"]) for r in w.read.scan(STORY_TRAY.name, {"viewer_id": viewer})}


def viewer_count(w: World, story_id: int) -> int:
    row = w.read.get(STORIES.name, {"story_id": story_id})
    assert row is not None
    return int(row["viewer_count"])


def test_posting_stores_the_story_and_fans_out_to_followers_and_the_author() -> None:
    w = World()
    alice, bob, carol, dave = w.user("alice"), w.user("bob"), w.user("carol"), w.user("dave")
    w.follow(bob, alice)
    w.follow(carol, alice)
    story = w.story(alice)

    row = w.read.get(STORIES.name, {"story_id": story.story_id})
    assert row is not None
    assert row["author_id"] == alice and row["audience"] == "followers" and row["viewer_count"] == 0
    assert row["expires_ms"] == int(story.expires_at.timestamp() * 1000)
    assert [r["story_id"] for r in w.read.scan(USER_STORIES.name, {"author_id": alice})] == [story.story_id]
    assert tray_authors(w, bob) == {alice}
    assert tray_authors(w, carol) == {alice}
    assert tray_authors(w, alice) == {alice}
    assert tray_authors(w, dave) == set()
    assert len(w.read.scan(STORY_EXPIRY.name, {"bucket": 0})) == 1


def test_a_view_is_recorded_once_and_counted_exactly_under_redelivery() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    story = w.story(alice)
    viewed = w.view(bob, story)
    w.redeliver(viewed)
    w.view(bob, story)  # a second StoryViewed of the same viewer (should never be written) counts nothing
    w.redeliver(story)  # nor does a redelivered StoryPosted reset the count

    assert viewer_count(w, story.story_id) == 1
    assert len(w.read.scan(STORY_VIEWERS.name, {"story_id": story.story_id})) == 1
    assert has_seen(w.read, story.story_id, bob)


def test_a_view_of_an_expired_story_leaves_no_half_row() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    story = w.story(alice)
    w.expire(story)
    w.view(bob, story)
    assert w.read.get(STORIES.name, {"story_id": story.story_id}) is None
    assert w.read.scan(STORY_VIEWS.name, {"story_id": story.story_id}) == []


def test_expiry_removes_story_views_and_tray_entries_only_with_the_last_story() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    first = w.story(alice, ttl=60)
    w.tick(10)
    second = w.story(alice, ttl=60)
    w.view(bob, first)

    w.expire(first)
    assert w.read.get(STORIES.name, {"story_id": first.story_id}) is None
    assert w.read.scan(STORY_VIEWS.name, {"story_id": first.story_id}) == []
    assert w.read.scan(STORY_VIEWERS.name, {"story_id": first.story_id}) == []
    assert [r["story_id"] for r in w.read.scan(USER_STORIES.name, {"author_id": alice})] == [second.story_id]
    assert tray_authors(w, bob) == {alice}  # alice still has a story

    expired = w.expire(second)
    w.redeliver(expired)
    assert w.read.scan(USER_STORIES.name, {"author_id": alice}) == []
    assert tray_authors(w, bob) == set() and tray_authors(w, alice) == set()
    assert w.read.scan(STORY_EXPIRY.name, {"bucket": 0}) == []


def test_follow_adds_the_tray_entry_when_the_author_has_stories_and_unfollow_removes_it() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(bob, carol)  # carol has no stories
    assert tray_authors(w, bob) == set()
    w.story(alice)
    w.follow(bob, alice)
    assert tray_authors(w, bob) == {alice}
    w.unfollow(bob, alice)
    assert tray_authors(w, bob) == set()


def test_block_clears_tray_entries_both_ways() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    w.follow(alice, bob)
    w.story(alice)
    w.story(bob)
    w.block(alice, bob)
    assert tray_authors(w, bob) == {bob}
    assert tray_authors(w, alice) == {alice}


def test_account_deletion_takes_stories_views_and_tray_entries() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(bob, alice)
    w.follow(bob, carol)
    w.follow(carol, bob)
    hers = w.story(alice)
    carols = w.story(carol)
    bobs = w.story(bob)
    w.view(bob, hers)
    w.view(bob, carols)
    w.view(carol, bobs)
    assert viewer_count(w, carols.story_id) == 1

    w.delete_account(bob)
    assert w.read.get(STORIES.name, {"story_id": bobs.story_id}) is None
    assert w.read.scan(STORY_VIEWS.name, {"story_id": bobs.story_id}) == []
    assert viewer_count(w, carols.story_id) == 0
    assert w.read.scan(STORY_VIEWERS.name, {"story_id": carols.story_id}) == []
    assert w.read.scan(STORY_TRAY.name, {"viewer_id": bob}) == []
    assert bob not in tray_authors(w, carol)
    assert w.read.find(STORY_VIEWS.name, {"viewer_id": bob}) == []


def test_read_helpers_hide_expired_and_apply_the_audience() -> None:
    w = World()
    alice, friend, follower, stranger = w.user("alice"), w.user("friend"), w.user("follower"), w.user("stranger")
    w.follow(friend, alice)
    w.follow(follower, alice)
    w.close_friends(alice, friend)
    public = w.story(alice, "followers", ttl=60)
    close = w.story(alice, "close_friends", ttl=120)
    privacy = Privacy(w.read)

    def visible(viewer: int, at_offset: float = 0) -> list[int]:
        at = w.now + timedelta(seconds=at_offset)
        return [int(r["story_id"]) for r in visible_live_entries(w.read, privacy, viewer, alice, at)]

    assert visible(friend) == [public.story_id, close.story_id]
    assert visible(follower) == [public.story_id]
    assert visible(stranger) == []
    assert visible(alice) == [public.story_id, close.story_id]
    assert visible(friend, 60) == [close.story_id]  # expires_at <= now hides it at once
    assert live_story(w.read, privacy, follower, close.story_id, w.now) is None
    assert live_story(w.read, privacy, follower, public.story_id, w.now + timedelta(seconds=60)) is None
    story = live_story(w.read, privacy, friend, close.story_id, w.now)
    assert story is not None
    view = render_story(w.read, privacy, story, friend)
    assert view is not None
    assert view["id"] == str(close.story_id) and view["seen"] is False and view["media"]["kind"] == "image"
    assert view["author"] == {"id": str(alice), "username": "alice", "display_name": "Alice"}
    own = render_story(w.read, privacy, story, alice)
    assert own is not None and own["seen"] is True


def test_private_author_stories_need_an_approved_follow() -> None:
    w = World()
    alice, bob = w.user("alice", private=True), w.user("bob")
    w.request(bob, alice)
    story = w.story(alice)
    privacy = Privacy(w.read)
    assert live_story(w.read, privacy, bob, story.story_id, w.now) is None
    w.follow(bob, alice)
    assert live_story(w.read, privacy, bob, story.story_id, w.now) is not None
