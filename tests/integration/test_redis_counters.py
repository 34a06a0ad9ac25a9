"""Hot counters against the real Redis: read-through caching, invalidation by the listener,
and never a stale count once the worker applied a change (including a read that raced it)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from events.engagement import Liked, Unliked
from events.ids import IdGenerator
from events.union import Event
from infra.redis_adapters import sync_client
from infra.redis_adapters.counters import CachedCountersReadModel, CounterInvalidator
from infra.redis_adapters.wiring import Listener
from projections.engagement.tables import ENGAGEMENT_COUNTS, LIKES
from projections.graph import GRAPH_COUNTS
from projections.posts import USER_POST_COUNTS
from projections.store import Gets, Increment, Key, Row, get_each
from tests.integration.redis_env import delete_prefixed, prefix, redis_url  # noqa: F401 - fixtures
from tests.unit.posts_world import World, envelope

pytestmark = pytest.mark.integration


class CountingWorld(World):
    def __init__(self, client: redis.Redis, prefix: str) -> None:  # noqa: F811
        super().__init__()
        self.ids = iter(IdGenerator(shard=9), None)  # type: ignore[assignment]
        self.invalidator = CounterInvalidator(client, prefix=prefix)
        self.cached = CachedCountersReadModel(self.read, client, prefix=prefix)
        self.listeners: list[Listener] = [self.invalidator]

    def apply(self, event: Event) -> Event:
        emitted = []
        for p in self.projections:
            ops = p.project(event, self.read)
            self.read.apply(ops)
            emitted.append((p.name, ops))
        for name, ops in emitted:  # after the durable write, before positions would be saved
            for listener in self.listeners:
                listener(event, name, ops)
        return event

    def like(self, user: int, post: int, author: int) -> None:
        self.apply(Liked(**envelope(self.next_id(), post, user), post_id=post, user_id=user, post_author_id=author))

    def unlike(self, user: int, post: int, author: int) -> None:
        self.apply(Unliked(**envelope(self.next_id(), post, user), post_id=post, user_id=user, post_author_id=author))

    def likes(self, post: int, model: Any = None) -> int:
        row = (model or self.cached).get(ENGAGEMENT_COUNTS.name, {"post_id": post})
        return int(row["like_count"]) if row else 0


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url())
    yield c
    c.close()


@pytest.fixture
def world(client: redis.Redis, prefix: str) -> Iterator[CountingWorld]:  # noqa: F811
    yield CountingWorld(client, prefix)
    delete_prefixed(client, prefix)


def test_a_counter_row_is_read_through_then_served_from_redis(world: CountingWorld, client: redis.Redis) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    post = world.post(alice)
    world.like(bob, post, alice)
    assert world.likes(post) == 1
    assert world.cached.stats == {"hits": 0, "misses": 1, "errors": 0}
    assert world.likes(post) == 1
    assert world.cached.stats["hits"] == 1
    key = world.cached.keys.row(ENGAGEMENT_COUNTS.name, {"post_id": post})
    assert key is not None
    assert 0 < client.ttl(key) <= world.cached.ttl_seconds


def test_an_absent_row_is_cached_as_absent(world: CountingWorld) -> None:
    alice = world.user("alice")
    post = world.post(alice)
    assert world.cached.get(ENGAGEMENT_COUNTS.name, {"post_id": post}) is None
    assert world.cached.get(ENGAGEMENT_COUNTS.name, {"post_id": post}) is None
    assert world.cached.stats["hits"] == 1


def test_a_change_invalidates_before_anyone_reads_again(world: CountingWorld) -> None:
    alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
    post = world.post(alice)
    assert world.likes(post) == 0  # cached: absent
    world.like(bob, post, alice)
    assert world.likes(post) == 1
    world.like(carol, post, alice)
    assert world.likes(post) == 2
    world.like(carol, post, alice)  # redelivered: the count does not move, the cache agrees
    assert world.likes(post) == 2
    world.unlike(bob, post, alice)
    assert world.likes(post) == 1
    world.follow(bob, alice)
    assert world.cached.get(GRAPH_COUNTS.name, {"user_id": alice}) == world.read.get(
        GRAPH_COUNTS.name, {"user_id": alice}
    )
    world.follow(carol, alice)
    assert world.cached.get(GRAPH_COUNTS.name, {"user_id": alice})["followers"] == 2  # type: ignore[index]
    assert world.cached.get(USER_POST_COUNTS.name, {"user_id": alice}) == {"user_id": alice, "posts": 1}
    world.post(alice)
    assert world.cached.get(USER_POST_COUNTS.name, {"user_id": alice}) == {"user_id": alice, "posts": 2}


def test_counters_asked_with_other_tables_answer_as_each_alone(world: CountingWorld) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    posts = [world.post(alice) for _ in range(3)]
    world.like(bob, posts[0], alice)
    world.like(bob, posts[2], alice)
    counts = [{"post_id": p} for p in posts]
    likes = [{"post_id": p, "user_id": bob} for p in posts]
    gets = [Gets(ENGAGEMENT_COUNTS.name, counts), Gets(LIKES.name, likes), Gets(ENGAGEMENT_COUNTS.name, counts[:1])]
    expected = [world.read.get_many(g.table, g.keys) for g in gets]
    assert get_each(world.cached, gets) == expected  # counts read through Redis...
    assert world.cached.stats["misses"] == 3
    assert get_each(world.cached, gets) == expected  # ...then served from it
    assert world.cached.stats["hits"] == 1 + 3 + 1
    world.unlike(bob, posts[0], alice)
    world.like(alice, posts[1], alice)
    assert get_each(world.cached, gets) == [world.read.get_many(g.table, g.keys) for g in gets] != expected


def test_an_erased_account_forgets_its_counters(world: CountingWorld) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    world.follow(bob, alice)
    assert world.cached.get(GRAPH_COUNTS.name, {"user_id": alice}) is not None
    world.delete_account(alice)
    assert world.read.get(GRAPH_COUNTS.name, {"user_id": alice}) is None
    assert world.cached.get(GRAPH_COUNTS.name, {"user_id": alice}) is None


class SlowCounters:
    """A durable read model whose counter reads let the worker apply a change right after them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.meanwhile: Callable[[], None] | None = None

    def get(self, table: str, key: Key) -> Row | None:
        row = self.inner.get(table, key)
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return row  # type: ignore[no-any-return]

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        rows: list[Row] = self.inner.get_many(table, keys)
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_read_that_raced_a_change_never_caches_the_old_count(
    world: CountingWorld,
    client: redis.Redis,
    prefix: str,  # noqa: F811
) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    post = world.post(alice)
    slow = SlowCounters(world.read)
    cached = CachedCountersReadModel(slow, client, prefix=prefix)
    slow.meanwhile = lambda: world.like(bob, post, alice)
    assert world.likes(post, cached) == 0  # read before the like was applied: the old count, once
    assert world.likes(post, cached) == 1  # the old count was not kept
    assert world.likes(post, cached) == 1
    assert cached.stats["hits"] == 1


def test_a_batched_read_that_raced_a_change_never_caches_the_old_counts(
    world: CountingWorld,
    client: redis.Redis,
    prefix: str,  # noqa: F811
) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    first, second = world.post(alice), world.post(alice)
    slow = SlowCounters(world.read)
    cached = CachedCountersReadModel(slow, client, prefix=prefix)
    keys = [{"post_id": first}, {"post_id": second}, {"post_id": 1}]
    world.like(bob, first, alice)

    def likes() -> dict[int, int]:
        return {int(r["post_id"]): int(r["like_count"]) for r in cached.get_many(ENGAGEMENT_COUNTS.name, keys)}

    slow.meanwhile = lambda: world.like(bob, second, alice)
    assert likes().get(second, 0) == 0  # one round trip for the three, one durable read: the old count, once
    assert cached.stats == {"hits": 0, "misses": 3, "errors": 0}
    assert likes() == {first: 1, second: 1}  # the raced row's old count was not kept
    assert cached.stats["hits"] == 2  # the untouched row and the absent one were kept


def test_while_another_reader_fills_a_row_reads_go_to_the_table(world: CountingWorld, client: redis.Redis) -> None:
    alice = world.user("alice")
    post = world.post(alice)
    key = world.cached.keys.row(ENGAGEMENT_COUNTS.name, {"post_id": post})
    assert key is not None
    client.set(key, b"lease:someone-else", px=10_000)
    assert world.likes(post) == 0
    assert client.get(key) == b"lease:someone-else"  # not ours to fill
    world.like(world.user("bob"), post, alice)  # the change takes the lease away too
    assert client.get(key) is None
    assert world.likes(post) == 1


def test_other_tables_are_not_cached(world: CountingWorld, client: redis.Redis) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    post = world.post(alice)
    world.like(bob, post, alice)
    assert world.cached.get(LIKES.name, {"post_id": post, "user_id": bob}) is not None
    assert world.cached.scan(LIKES.name, {"post_id": post}) == world.read.scan(LIKES.name, {"post_id": post})
    assert world.cached.count(LIKES.name, {"post_id": post}) == 1
    assert world.cached.stats == {"hits": 0, "misses": 0, "errors": 0}
    assert world.cached.get_many(ENGAGEMENT_COUNTS.name, [{"post_id": post}, {"post_id": 1}]) == [
        world.read.get(ENGAGEMENT_COUNTS.name, {"post_id": post})
    ]


def test_without_redis_reads_fall_back_to_the_table(world: CountingWorld) -> None:
    dead = sync_client("redis://127.0.0.1:9/11")  # nothing listens there
    alice, bob = world.user("alice"), world.user("bob")
    post = world.post(alice)
    world.like(bob, post, alice)
    cached = CachedCountersReadModel(world.read, dead, prefix="x:")
    started = time.monotonic()
    for _ in range(20):
        assert world.likes(post, cached) == 1
    assert time.monotonic() - started < 2
    assert cached.stats["errors"] == 1  # then the breaker skips Redis for a while
    with pytest.raises(redis.ConnectionError):  # the worker must retry, not leave a stale count
        CounterInvalidator(dead, prefix="x:").apply(
            [Increment(ENGAGEMENT_COUNTS.name, {"post_id": post}, "like_count", 1)]
        )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["like", "unlike", "follow", "unfollow", "read"]), st.integers(0, 3), st.integers(0, 3)
        ),
        min_size=1,
        max_size=40,
    )
)
def test_cached_counts_always_equal_the_table(client: redis.Redis, steps: list[tuple[str, int, int]]) -> None:
    key_prefix = f"t{uuid.uuid4().hex[:12]}:"
    w = CountingWorld(client, key_prefix)
    try:
        users = [w.user(f"u{n}") for n in range(4)]
        posts = [(w.post(u), u) for u in users]
        for kind, a, b in steps:
            post, author = posts[b]
            if kind == "like":
                w.like(users[a], post, author)
            elif kind == "unlike":
                w.unlike(users[a], post, author)
            elif kind in ("follow", "unfollow") and a != b:
                getattr(w, kind)(users[a], users[b])
            for p, _ in posts:
                assert w.cached.get(ENGAGEMENT_COUNTS.name, {"post_id": p}) == w.read.get(
                    ENGAGEMENT_COUNTS.name, {"post_id": p}
                )
            for u in users:
                assert w.cached.get(GRAPH_COUNTS.name, {"user_id": u}) == w.read.get(GRAPH_COUNTS.name, {"user_id": u})
    finally:
        delete_prefixed(client, key_prefix)


def test_the_wired_caches_stack_and_stay_exact(client: redis.Redis, prefix: str) -> None:  # noqa: F811
    from infra.redis_adapters.wiring import cache_listeners, cached_read_model
    from infra.settings import Settings
    from projections.feed import FEED

    settings = Settings(redis_prefix=prefix, feed_cache_cap=3)
    w = CountingWorld(client, prefix)
    w.listeners = cache_listeners(client, settings)
    read = cached_read_model(w.read, client, settings)
    try:
        alice, bob = w.user("alice"), w.user("bob")
        w.follow(bob, alice)
        posts = [w.post(alice) for _ in range(5)]
        for p in posts[:2]:
            w.like(bob, p, alice)
        for _ in range(2):  # cold, then from Redis
            page = read.scan(FEED.name, {"user_id": bob}, desc=True, limit=2)
            assert page == w.read.scan(FEED.name, {"user_id": bob}, desc=True, limit=2)
            for p in posts:
                assert read.get(ENGAGEMENT_COUNTS.name, {"post_id": p}) == w.read.get(
                    ENGAGEMENT_COUNTS.name, {"post_id": p}
                )
        w.like(bob, posts[4], alice)
        newest = w.post(alice)
        assert read.scan(FEED.name, {"user_id": bob}, desc=True, limit=1)[0]["post_id"] == newest
        assert read.get(ENGAGEMENT_COUNTS.name, {"post_id": posts[4]})["like_count"] == 1  # type: ignore[index]
        assert client.zcard(f"{prefix}feed:{{{bob}}}") == 3
    finally:
        delete_prefixed(client, prefix)
