"""The home-feed projection: fan-out on write, audience, backfill, removal, cap, redelivery."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.feed import FEED, FEED_AUTHOR_POSTS, FEED_BY_POST, insert_capped, make_projection
from projections.posts import POSTS
from projections.privacy import Privacy
from tests.unit.posts_world import World


@pytest.fixture
def w() -> World:
    return World()


def test_a_post_fans_out_to_followers_and_the_author(w: World) -> None:
    alice, bob, carol, dave = w.user("alice"), w.user("bob"), w.user("carol"), w.user("dave")
    w.follow(bob, alice)
    w.follow(carol, alice)
    p = w.post(alice)
    assert w.feed(alice) == [p]
    assert w.feed(bob) == [p]
    assert w.feed(carol) == [p]
    assert w.feed(dave) == []  # not a follower: public posts do not push to strangers


def test_feeds_are_newest_first_and_mix_authors(w: World) -> None:
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(carol, alice)
    w.follow(carol, bob)
    p1, p2, p3 = w.post(alice), w.post(bob), w.post(alice)
    assert w.feed(carol) == [p3, p2, p1]


def test_followers_only_posts_reach_followers_but_not_after_unfollow(w: World) -> None:
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    p = w.post(alice, audience="followers")
    assert w.feed(bob) == [p]
    w.unfollow(bob, alice)
    assert w.feed(bob) == []
    assert w.feed(alice) == [p]


def test_a_private_author_reaches_approved_followers(w: World) -> None:
    alice, bob = w.user("alice", private=True), w.user("bob")
    w.follow(bob, alice)  # an approved request ends in Followed
    p = w.post(alice)
    assert w.feed(bob) == [p]


def test_follow_backfills_only_posts_the_follower_may_see() -> None:
    w = World(backfill=3)
    alice, bob = w.user("alice"), w.user("bob")
    old = [w.post(alice) for _ in range(4)]
    followers_only = w.post(alice, audience="followers")
    w.follow(bob, alice)
    # The newest 3 of alice's posts, and followers-only ones count now that bob follows.
    assert w.feed(bob) == [followers_only, old[3], old[2]]


def test_backfill_skips_deleted_posts(w: World) -> None:
    alice, bob = w.user("alice"), w.user("bob")
    p1, p2 = w.post(alice), w.post(alice)
    w.delete_post(p2, alice)
    w.follow(bob, alice)
    assert w.feed(bob) == [p1]


def test_unfollow_removes_only_that_authors_posts(w: World) -> None:
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(carol, alice)
    w.follow(carol, bob)
    pa, pb = w.post(alice), w.post(bob)
    w.unfollow(carol, alice)
    assert w.feed(carol) == [pb]
    assert [r["user_id"] for r in w.read.scan(FEED_BY_POST.name, {"post_id": pa})] == [alice]


@pytest.mark.parametrize("blocker_is_author", [True, False])
def test_block_either_way_removes_the_others_posts_from_both_feeds(w: World, blocker_is_author: bool) -> None:
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    w.follow(alice, bob)
    pa, pb = w.post(alice), w.post(bob)
    assert w.feed(bob) == [pb, pa]
    if blocker_is_author:
        w.block(alice, bob)
    else:
        w.block(bob, alice)
    assert w.feed(bob) == [pb]
    assert w.feed(alice) == [pa]


def test_block_event_alone_removes_entries(w: World) -> None:
    """Even without the Unfollowed facts that usually accompany it."""
    from events.graph import Blocked
    from tests.unit.posts_world import envelope

    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    w.post(alice)
    w.apply(Blocked(**envelope(w.next_id(), alice, alice), blocker_id=alice, blocked_id=bob))
    assert w.feed(bob) == []


def test_post_deleted_leaves_every_feed_and_index(w: World) -> None:
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(bob, alice)
    w.follow(carol, alice)
    keep, gone = w.post(alice), w.post(alice)
    w.delete_post(gone, alice)
    for user in (alice, bob, carol):
        assert w.feed(user) == [keep]
    assert w.read.scan(FEED_BY_POST.name, {"post_id": gone}) == []
    assert w.read.get(FEED_AUTHOR_POSTS.name, {"author_id": alice, "post_id": gone}) is None


def test_account_deleted_removes_their_posts_everywhere_and_their_feed(w: World) -> None:
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(bob, alice)
    w.follow(alice, carol)
    w.follow(bob, carol)
    pa, pc = w.post(alice), w.post(carol)
    assert w.feed(alice) == [pc, pa]
    w.delete_account(alice)
    assert w.feed(bob) == [pc]
    assert w.feed(alice) == []
    assert w.read.scan(FEED_BY_POST.name, {"post_id": pa}) == []
    assert [r["user_id"] for r in w.read.scan(FEED_BY_POST.name, {"post_id": pc})] == [bob, carol]
    assert w.read.scan(FEED_AUTHOR_POSTS.name, {"author_id": alice}) == []


def test_posts_of_a_deleted_author_are_not_fanned_out(w: World) -> None:
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    w.delete_account(alice)
    w.apply(World.post_event(w.next_id(), alice))  # a late event from the erased account
    assert w.feed(bob) == []


def test_the_cap_keeps_the_newest_entries() -> None:
    w = World(feed_cap=3)
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    posts = [w.post(alice) for _ in range(5)]
    assert w.feed(bob) == posts[:1:-1]
    assert w.read.count(FEED.name, {"user_id": bob}) == 3
    trimmed = posts[0]
    assert w.read.scan(FEED_BY_POST.name, {"post_id": trimmed}) == []
    assert [r["post_id"] for r in w.read.scan(FEED.name, {"user_id": bob})] == posts[2:]


def test_backfill_into_a_full_feed_keeps_only_newer_posts() -> None:
    w = World(feed_cap=3)
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    old_bob = w.post(bob)
    w.follow(carol, alice)
    newer = [w.post(alice) for _ in range(3)]
    w.follow(carol, bob)  # bob's post is older than everything in carol's full feed
    assert w.feed(carol) == newer[::-1]
    assert [r["user_id"] for r in w.read.scan(FEED_BY_POST.name, {"post_id": old_bob})] == [bob]


def test_insert_capped_evicts_the_smallest_of_old_and_new() -> None:
    w = World()
    bob = w.user("bob")
    w.read.apply(insert_capped(w.read, bob, [(10, 1), (30, 1)], cap=3))
    w.read.apply(insert_capped(w.read, bob, [(20, 2), (5, 2), (40, 2)], cap=3))
    assert w.feed(bob) == [40, 30, 20]
    assert insert_capped(w.read, bob, [(40, 2)], cap=3) == []  # already there: nothing to do


def test_redelivery_leaves_the_same_state() -> None:
    once, twice = World(feed_cap=4), World(feed_cap=4)
    for world, copies in ((once, 1), (twice, 2)):
        original_apply = world.apply

        def apply_n(event, _apply=original_apply, _n=copies):  # type: ignore[no-untyped-def]
            for _ in range(_n):
                result = _apply(event)
            return result

        world.apply = apply_n  # type: ignore[method-assign]
        alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
        world.follow(bob, alice)
        for _ in range(6):
            world.post(alice)
        p = world.post(carol)
        world.follow(bob, carol)
        world.delete_post(p, carol)
        world.block(carol, bob)
        world.follow(carol, alice)
        world.delete_account(alice)
    assert once.snapshot() == twice.snapshot()


def test_make_projection_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        make_projection(cap=0)


# -- properties ---------------------------------------------------------------

Step = tuple[str, int, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["post", "private_post", "follow", "unfollow", "block", "unblock", "delete_post", "private"]),
        st.integers(0, 3),
        st.integers(0, 3),
    ),
    max_size=40,
)


def _run(world: World, users: list[int], script: list[Step], posts: list[tuple[int, int]]) -> None:
    from events.accounts import ProfileUpdated
    from tests.unit.posts_world import envelope

    for action, i, j in script:
        a, b = users[i], users[j]
        if action == "post":
            posts.append((world.post(a), a))
        elif action == "private_post":
            posts.append((world.post(a, audience="followers"), a))
        elif action == "follow" and a != b and not Privacy(world.read).blocked_either(a, b):
            world.follow(a, b)
        elif action == "unfollow":
            world.unfollow(a, b)
        elif action == "block" and a != b:
            world.block(a, b)
        elif action == "unblock":
            world.unblock(a, b)
        elif action == "delete_post" and posts:
            pid, author = posts.pop(i % len(posts))
            world.delete_post(pid, author)
        elif action == "private":
            world.apply(ProfileUpdated(**envelope(world.next_id(), a, a), user_id=a, private=bool(j % 2)))


@given(script=steps, redeliver_from=st.none() | st.integers(0, 60))
def test_feeds_only_hold_visible_live_posts_within_the_cap(script: list[Step], redeliver_from: int | None) -> None:
    w = World(feed_cap=5, backfill=3)
    users = [w.user(f"u{k}") for k in range(4)]
    _run(w, users, script, [])
    if redeliver_from is not None:  # at-least-once: a suffix of the log comes again
        before = w.snapshot()
        for event in list(w.events)[redeliver_from:]:
            for p in w.projections:
                w.read.apply(p.project(event, w.read))
        assert w.snapshot() == before
    privacy = Privacy(w.read)
    for user in users:
        entries = w.read.scan(FEED.name, {"user_id": user})
        assert len(entries) <= 5
        for entry in entries:
            post = w.read.get(POSTS.name, {"post_id": entry["post_id"]})
            assert post is not None
            assert privacy.can_see_post(user, post["author_id"], post["audience"])
            assert user == post["author_id"] or privacy.follows(user, post["author_id"])
            assert w.read.get(FEED_BY_POST.name, {"post_id": entry["post_id"], "user_id": user}) is not None
            assert entry["author_id"] == post["author_id"]
    index_rows = sum(
        len(w.read.scan(FEED_BY_POST.name, {"post_id": r["post_id"]})) for r in w.read.scan(POSTS.name, {})
    )
    assert index_rows == sum(w.read.count(FEED.name, {"user_id": u}) for u in users)
