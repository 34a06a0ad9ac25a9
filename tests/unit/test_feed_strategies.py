"""The hybrid fan-out (DESIGN.md section 5) over the in-memory read model: celebrity posts
merged on read, inactive followers skipped and rebuilt, horizons for deep pages, and the
same logical feed whatever the strategy."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.accounts import ProfileUpdated
from events.graph import Blocked
from projections.feed import (
    FEED_BY_POST,
    FEED_PULLED_AUTHORS,
    FEED_PULLED_POSTS,
    FeedPolicy,
    make_projection,
    rebuild_ops,
    timelines,
)
from projections.feed.activity import MemoryActivityStore
from projections.feed.timelines import horizon_of, merge_desc
from projections.store import Key, Row
from query_api.feed import feed_page
from tests.unit.feed_world import FeedWorld, inactive_at
from tests.unit.posts_world import envelope

# -- celebrities -------------------------------------------------------------------


def celebrity_world(**policy: Any) -> tuple[FeedWorld, int, int, int, int]:
    """alice has 2 followers (over the threshold of 1); dave has 1 (pushed)."""
    w = FeedWorld(strategy="hybrid", celebrity_threshold=1, **policy)
    alice, bob, carol, dave = w.user("alice"), w.user("bob"), w.user("carol"), w.user("dave")
    for u in (alice, bob, carol, dave):
        w.seen(u)
    w.follow(bob, alice)
    w.follow(carol, alice)
    w.follow(bob, dave)
    return w, alice, bob, carol, dave


def test_a_celebrity_post_is_not_pushed_but_every_follower_reads_it() -> None:
    w, alice, bob, carol, dave = celebrity_world()
    p = w.post(alice)
    assert w.read.scan(FEED_BY_POST.name, {"post_id": p}) == []  # in nobody's durable feed
    assert w.read.get(FEED_PULLED_POSTS.name, {"author_id": alice, "post_id": p}) is not None
    assert w.home(bob) == [p]
    assert w.home(carol) == [p]
    assert w.home(alice) == [p]  # the author's own pulled post too
    assert w.home(dave) == []
    assert w.rebuilds == 0  # everyone was active: nothing was skipped


def test_merged_and_pushed_entries_page_in_order_and_stay_stable() -> None:
    w, alice, bob, _, dave = celebrity_world()
    made = [w.post(alice if i % 3 else dave) for i in range(9)]
    assert w.pushed(bob) == [p for i, p in enumerate(made) if i % 3 == 0][::-1]  # dave's only
    expected = made[::-1]
    assert w.home(bob) == expected
    for limit in (1, 2, 4):
        first, cursor = w.page(bob, limit)
        newer = [w.post(alice), w.post(dave)]  # arrive while bob scrolls
        rest: list[int] = []
        while cursor is not None:
            ids, cursor = w.page(bob, limit, cursor)
            rest += ids
        assert first + rest == expected, limit
        expected = newer[::-1] + expected


def test_celebrity_status_is_decided_per_post_by_the_follower_count_then() -> None:
    w = FeedWorld(strategy="hybrid", celebrity_threshold=1)
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.seen(bob)
    w.follow(bob, alice)
    early = w.post(alice)  # one follower: pushed
    w.follow(carol, alice)
    late = w.post(alice)  # two: pulled
    w.unfollow(carol, alice)
    later = w.post(alice)  # one again: pushed
    assert w.pushed(bob) == [later, early]
    assert w.home(bob) == [later, late, early]


class CountingReads:
    """A read model that counts the rows its reads return."""

    def __init__(self, read: Any) -> None:
        self.read = read
        self.rows = 0

    def get(self, table: str, key: Key) -> Row | None:
        found: Row | None = self.read.get(table, key)
        self.rows += found is not None
        return found

    def get_many(self, table: str, keys: list[Key]) -> list[Row]:
        found: list[Row] = self.read.get_many(table, keys)
        self.rows += len(found)
        return found

    def scan(self, table: str, prefix: Key, **kw: Any) -> list[Row]:
        found: list[Row] = self.read.scan(table, prefix, **kw)
        self.rows += len(found)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.read, name)


def test_a_page_reads_no_more_when_more_celebrities_exist_that_the_reader_does_not_follow() -> None:
    """A page read all pulled authors once: at a million users, 170 rows and 170 follow
    checks per page, which doubled its CPU."""
    w, alice, bob, _, _ = celebrity_world()
    w.post(alice)

    def rows_read() -> int:
        counting = CountingReads(w.read)
        assert [int(r["post_id"]) for r in feed_page(counting, bob, w.policy, 10, None)[0]]
        return counting.rows

    few = rows_read()
    fans = [w.user(f"fan{i}") for i in range(2)]
    for i in range(3 * timelines.CELEBRITIES_PEEK):
        star = w.user(f"star{i}")
        for fan in fans:
            w.follow(fan, star)
        w.post(star)
    assert len(w.read.scan(FEED_PULLED_AUTHORS.name, {"scope": 0})) > 3 * timelines.CELEBRITIES_PEEK
    assert rows_read() <= few + timelines.CELEBRITIES_PEEK + 1


@pytest.mark.parametrize("how", ["unfollow", "block_by_author", "block_by_reader", "block_event_alone", "delete"])
def test_merged_celebrity_posts_disappear_like_pushed_ones(how: str) -> None:
    w, alice, bob, carol, _ = celebrity_world()
    p = w.post(alice)
    assert w.home(bob) == [p]
    if how == "unfollow":
        w.unfollow(bob, alice)
    elif how == "block_by_author":
        w.block(alice, bob)
    elif how == "block_by_reader":
        w.block(bob, alice)
    elif how == "block_event_alone":  # the follow edge is still there: Privacy hides the post
        w.apply(Blocked(**envelope(w.next_id(), alice, alice), blocker_id=alice, blocked_id=bob))
    else:
        w.delete_post(p, alice)
        assert w.read.scan(FEED_PULLED_POSTS.name, {"author_id": alice}) == []
        assert w.read.scan(FEED_PULLED_AUTHORS.name, {"scope": 0}) == []
        assert w.home(carol) == []
    assert w.home(bob) == []


def test_an_erased_celebrity_leaves_no_pulled_rows() -> None:
    w, alice, bob, _, _ = celebrity_world()
    w.post(alice)
    w.delete_account(alice)
    assert w.read.scan(FEED_PULLED_POSTS.name, {"author_id": alice}) == []
    assert w.read.scan(FEED_PULLED_AUTHORS.name, {"scope": 0}) == []
    assert w.home(bob) == []


def test_a_private_switch_keeps_followers_and_hides_nothing_from_them() -> None:
    w, alice, bob, _, _ = celebrity_world()
    p = w.post(alice, audience="followers")
    w.apply(ProfileUpdated(**envelope(w.next_id(), alice, alice), user_id=alice, private=True))
    assert w.home(bob) == [p]


# -- active and inactive followers -----------------------------------------------------


def test_inactive_followers_are_skipped_and_rebuilt_on_their_next_read() -> None:
    w = FeedWorld(strategy="hybrid", active_window_seconds=3600)
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(bob, alice)
    w.follow(carol, alice)
    w.seen(bob, active=False)
    w.seen(carol, active=True)
    w.seen(alice, active=True)
    old = w.pushed(bob)
    p = w.post(alice)
    assert w.pushed(carol) == [p]  # active: pushed
    assert w.pushed(bob) == old == []  # inactive beyond the window: skipped
    assert bob in w.activity.missed
    assert w.page(bob, 20) == ([p], None)  # the first read rebuilds, then serves
    assert w.rebuilds == 1
    assert w.pushed(bob) == [p]  # written back: the next reads are plain
    assert w.home(bob) == [p] and w.rebuilds == 1
    newer = w.post(alice)  # bob read just now: active again
    assert w.pushed(bob) == [newer, p]


def test_a_never_seen_reader_is_rebuilt_once() -> None:
    w = FeedWorld(strategy="hybrid")
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    p = w.post(alice)  # bob never read: skipped
    assert w.pushed(bob) == []
    assert w.home(bob) == [p]
    assert w.home(bob) == [p]
    assert w.rebuilds == 1


def test_fan_out_walks_followers_in_chunks_and_asks_activity_per_chunk() -> None:
    calls: list[int] = []

    class Counting(MemoryActivityStore):
        def active_among(self, user_ids: Any, since_ms: int) -> list[int]:
            calls.append(len(user_ids))
            return super().active_among(user_ids, since_ms)

    w = FeedWorld(strategy="hybrid", chunk=2)
    w.activity = Counting()
    feed = make_projection(policy=w.policy, activity=w.activity)
    w.projections = [feed if p.name == "feed" else p for p in w.projections]
    author = w.user("author")
    w.seen(author)
    fans = [w.user(f"fan{i}") for i in range(5)]
    for i, fan in enumerate(fans):
        w.follow(fan, author)
        w.seen(fan, active=i % 2 == 0)
    p = w.post(author)
    assert calls == [3, 2, 1]  # the author and 2 followers, then 2, then 1
    assert [f for f in fans if w.pushed(f) == [p]] == fans[::2]
    assert w.activity.missed == set(fans[1::2])


def test_push_and_pull_ignore_activity() -> None:
    for strategy in ("push", "pull"):
        w = FeedWorld(strategy=strategy)
        alice, bob = w.user("alice"), w.user("bob")
        w.follow(bob, alice)
        w.seen(bob, active=False)
        p = w.post(alice)
        assert w.pushed(bob) == ([p] if strategy == "push" else [])
        assert w.home(bob) == [p]
        assert w.rebuilds == 0


# -- horizons: deep pages, backfill, rebuild depth ---------------------------------------


def test_deep_pages_past_the_cap_come_from_the_timelines() -> None:
    w = FeedWorld(strategy="push", cap=3)
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(bob, alice)
    w.follow(bob, carol)
    made = [w.post(alice if i % 2 else carol) for i in range(10)]
    assert w.pushed(bob) == made[:-4:-1]  # the durable feed holds the 3 newest
    assert horizon_of(w.read, bob) == made[-4]
    for limit in (1, 2, 3, 4, 20):
        assert w.home(bob, limit) == made[::-1], limit


def test_backfill_copies_the_newest_posts_and_raises_the_horizon_over_the_rest() -> None:
    w = FeedWorld(strategy="hybrid", backfill=2)
    alice, bob = w.user("alice"), w.user("bob")
    w.seen(bob)
    made = [w.post(alice) for _ in range(5)]
    w.follow(bob, alice)
    assert w.pushed(bob) == made[:2:-1]
    assert horizon_of(w.read, bob) == made[2]
    assert w.home(bob, 2) == made[::-1]
    w.unfollow(bob, alice)
    assert w.home(bob) == []


def test_a_rebuild_writes_its_depth_and_merges_the_rest_on_read() -> None:
    w = FeedWorld(strategy="hybrid", rebuild_depth=3)
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    w.follow(bob, alice)
    w.follow(bob, carol)
    made = [w.post(alice if i % 2 else carol) for i in range(8)]
    assert w.pushed(bob) == []
    assert w.home(bob, 3) == made[::-1]
    assert w.pushed(bob) == made[:-4:-1]
    assert horizon_of(w.read, bob) == made[-4]


def test_rebuild_ops_are_idempotent() -> None:
    w = FeedWorld(strategy="hybrid", rebuild_depth=4)
    alice, bob = w.user("alice"), w.user("bob")
    w.follow(bob, alice)
    for _ in range(6):
        w.post(alice)
    w.read.apply(rebuild_ops(w.read, bob, w.policy))
    assert rebuild_ops(w.read, bob, w.policy) == []


def test_merge_desc_merges_dedupes_and_pages() -> None:
    a = [9, 7, 5, 3, 1]
    b = [8, 7, 6, 2]
    c: list[int] = []

    def source(ids: list[int]) -> Any:
        return lambda before, n: [(i, 0) for i in ids if before is None or i < before][:n]

    sources = [source(a), source(b), source(c)]
    assert [e[0] for e in merge_desc(sources, None, 100)] == [9, 8, 7, 6, 5, 3, 2, 1]
    assert [e[0] for e in merge_desc(sources, 7, 3)] == [6, 5, 3]
    assert [e[0] for e in merge_desc(sources, None, 1)] == [9]
    assert merge_desc([], None, 5) == []


def test_policy_rejects_nonsense() -> None:
    for bad in ({"cap": 0}, {"chunk": 0}, {"rebuild_depth": 0}, {"backfill": -1}, {"celebrity_threshold": -1}):
        with pytest.raises(ValueError):
            FeedPolicy(**bad)
    with pytest.raises(ValueError):
        FeedPolicy(strategy="sideways")  # type: ignore[arg-type]


# -- the same logical feed, whatever the strategy --------------------------------------

N = 4
Step = tuple[str, int, int]
ACTIONS = ["post"] * 5 + ["follow"] * 5 + ["private_post", "unfollow", "block", "unblock", "delete_post"]
ACTIONS += ["private", "read", "read", "away", "away"]
steps = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, N - 1), st.integers(0, N - 1)), max_size=50)
# Every history starts from a small graph with two popular authors, so that celebrities,
# trims and rebuilds show up in most examples.
START: list[tuple[str, int, int]] = [("follow", f, 0) for f in (1, 2, 3)] + [("follow", f, 1) for f in (2, 3)]
START += [("post", 0, 0), ("post", 1, 0), ("post", 2, 0)]


class Model:
    """What a feed should hold, from plain sets."""

    def __init__(self) -> None:
        self.follows: set[tuple[int, int]] = set()
        self.blocks: set[tuple[int, int]] = set()
        self.posts: dict[int, int] = {}  # post -> author

    def blocked(self, a: int, b: int) -> bool:
        return (a, b) in self.blocks or (b, a) in self.blocks

    def feed(self, u: int) -> list[int]:
        return sorted(
            (p for p, a in self.posts.items() if a == u or ((u, a) in self.follows and not self.blocked(u, a))),
            reverse=True,
        )


def run(world: FeedWorld, users: list[int], script: list[Step], model: Model | None = None) -> None:
    m = model or Model()
    posts: list[tuple[int, int]] = []
    for action, i, j in script:
        a, b = users[i], users[j]
        if action in ("post", "private_post"):
            p = world.post(a, audience="public" if action == "post" else "followers")
            posts.append((p, a))
            m.posts[p] = a
        elif action == "follow" and a != b and not m.blocked(a, b):
            world.follow(a, b)
            m.follows.add((a, b))
        elif action == "unfollow":
            world.unfollow(a, b)
            m.follows.discard((a, b))
        elif action == "block" and a != b:
            world.block(a, b)
            m.blocks.add((a, b))
            m.follows -= {(a, b), (b, a)}
        elif action == "unblock":
            world.unblock(a, b)
            m.blocks.discard((a, b))
        elif action == "delete_post" and posts:
            p, author = posts.pop(j % len(posts))
            world.delete_post(p, author)
            del m.posts[p]
        elif action == "private":
            world.apply(ProfileUpdated(**envelope(world.next_id(), a, a), user_id=a, private=bool(j % 2)))
        elif action == "read":
            world.home(a, limit=j + 1)
        elif action == "away":
            world.activity.record_read(a, inactive_at(world.policy))


# (followees, celebrities) a hybrid page reads before it intersects: small values take
# each way of finding the followed celebrities (see `_followed_celebrities`).
PEEKS = st.sampled_from([(timelines.FOLLOWEES_PEEK, timelines.CELEBRITIES_PEEK), (0, 0), (1, 1), (0, 4), (4, 0)])


@given(script=steps, limit=st.integers(1, 5), threshold=st.integers(0, 2), cap=st.integers(1, 4), peeks=PEEKS)
def test_push_pull_and_hybrid_serve_the_same_feeds(
    script: list[Step], limit: int, threshold: int, cap: int, peeks: tuple[int, int]
) -> None:
    with patch.multiple(timelines, FOLLOWEES_PEEK=peeks[0], CELEBRITIES_PEEK=peeks[1]):
        same_feeds(script, limit, threshold, cap)


def same_feeds(script: list[Step], limit: int, threshold: int, cap: int) -> None:
    small = {"cap": cap, "backfill": 2, "chunk": 2, "rebuild_depth": 3}
    worlds = [
        FeedWorld(strategy="push", **small),
        FeedWorld(strategy="pull", **small),
        FeedWorld(strategy="hybrid", celebrity_threshold=threshold, active_window_seconds=3600, **small),
    ]
    model = Model()
    users = []
    for k, world in enumerate(worlds):  # the same events in each world, so the same ids
        users = [world.user(f"u{n}") for n in range(N)]
        run(world, users, START + script, model if k == 0 else None)
    for user in users:
        feeds = [world.home(user, limit) for world in worlds]
        assert feeds[0] == feeds[1] == feeds[2], (user, feeds)
        assert feeds[0] == model.feed(user), user


def test_visible_authors_leave_out_blocks_either_way_and_erased_accounts() -> None:
    from projections.feed.timelines import visible_authors
    from projections.privacy import Privacy

    w = FeedWorld(strategy="pull")
    me, a, b, c, d = (w.user(n) for n in ("me", "a", "b", "c", "d"))
    for x in (a, b, c, d):
        w.follow(me, x)
    w.apply(Blocked(**envelope(w.next_id(), a, a), blocker_id=a, blocked_id=me))  # no Unfollowed with it
    w.apply(Blocked(**envelope(w.next_id(), me, me), blocker_id=me, blocked_id=b))
    w.delete_account(c)
    privacy = Privacy(w.read)
    assert visible_authors(w.read, me) == [me, d]
    assert [x for x in (me, a, b, c, d) if privacy.can_see_account(me, x)] == [me, d]


@given(script=steps)
def test_hybrid_redelivery_leaves_the_same_state(script: list[Step]) -> None:
    once, twice = (FeedWorld(strategy="hybrid", celebrity_threshold=1, cap=3, backfill=2) for _ in range(2))
    original = twice.apply

    def apply_twice(event: Any) -> Any:
        original(event)
        return original(event)

    twice.apply = apply_twice  # type: ignore[method-assign]
    for world in (once, twice):
        users = [world.user(f"u{n}") for n in range(N)]
        run(world, users, START + script)
    assert once.snapshot() == twice.snapshot()
    assert once.activity.missed == twice.activity.missed
