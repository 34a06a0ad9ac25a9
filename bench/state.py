"""Building a benchmark's starting state from real events, appended to the log in bulk.

Registering, following and posting through the HTTP API would take hours at 100K
users, so the bench writes the same facts the commands would have written
(AccountRegistered, MediaUploaded + MediaProcessed, Followed, PostCreated, with
`events.ids` ids) straight to the event log, and lets the normal projection path
derive every read model from them: the embedded projector's `catch_up`, or the
scale stack's Kafka topics and `glimpse worker`. Nothing skips a projection.

History: accounts and their media ten days ago, the follows nine days ago, then
every post at a random time over the last seven days, in time order (ids grow
with time, so feeds sort by id as they would in production). Because follows
precede posts, every post is delivered by the feed's fan-out on PostCreated, as
it would be live, not by follow backfill.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.graphs import Graph, posts_per_user
from events.accounts import AccountRegistered
from events.graph import Followed
from events.ids import compose_id, id_timestamp_ms
from events.media import MediaProcessed, MediaUploaded, Rendition
from events.posts import PostCreated
from events.union import Event

BULK_SHARD = 1000  # no API process uses this id shard, so bulk ids never collide with live ones
DAY_MS = 24 * 3600 * 1000
# A real argon2id hash of nothing anyone types: bench users never log in (the bench mints their tokens).
UNUSABLE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$YmVuY2hiZW5jaA$x1v3Z3lJm2n0v1q8b9c8d7e6f5a4b3c2d1e0f9a8b7c6"
RENDITION = Rendition(key="renditions/bench/0000000000000000.webp", width=640, height=640, format="webp")
WORDS = [
    "sunset",
    "coffee",
    "trail",
    "city",
    "morning",
    "friends",
    "beach",
    "garden",
    "concert",
    "street",
    "dinner",
    "river",
]


class _Ids:
    """Strictly increasing ids at given milliseconds (several per millisecond when needed)."""

    def __init__(self) -> None:
        self._ms = 0
        self._seq = 0

    @property
    def ms(self) -> int:
        """The millisecond of the last id given out."""
        return self._ms

    def at(self, ms: int) -> int:
        if ms > self._ms:
            self._ms, self._seq = ms, 0
        else:
            self._seq += 1
            if self._seq > 4095:
                self._ms, self._seq = self._ms + 1, 0
        return compose_id(self._ms, BULK_SHARD, self._seq)


@dataclass
class State:
    """What the bench knows about the state it builds: ids by user index, posts per user.

    The events themselves are generated on demand (`graph_events`, `post_events`), the
    same every time for a state, so a million users never sit in memory as events.
    """

    graph: Graph
    user_ids: list[int]
    media_ids: list[int]
    posts: list[list[int]]  # post ids of each user, oldest first
    t_accounts: int = 0
    t_processed: int = 0
    t_follows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    _feed_cache: dict[int, list[int]] = field(default_factory=dict)

    def username(self, index: int) -> str:
        return f"u{index}"

    def feed_ids(self, index: int, depth: int = 111) -> list[int]:
        """The newest `depth` post ids of a user's home feed (own posts and followees'), newest first.

        What a push feed holds; the bench uses it to turn a page offset into a cursor.
        """
        cached = self._feed_cache.get(index)
        if cached is None:
            sources = [self.posts[index], *(self.posts[v] for v in self.graph.following[index])]
            cached = heapq.nlargest(depth, (p for s in sources for p in s[-depth:]))
            self._feed_cache[index] = cached
        return cached

    @property
    def total_posts(self) -> int:
        return sum(len(p) for p in self.posts)


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def plan(graph: Graph, mean_posts: float, seed: int = 11, now_ms: int | None = None) -> State:
    """Ids for every user, media and post; post times spread over the last seven days."""
    rng = random.Random(seed)
    now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    ids = _Ids()
    n = graph.users
    t_accounts, t_follows, t_posts = now_ms - 10 * DAY_MS, now_ms - 9 * DAY_MS, now_ms - 7 * DAY_MS
    user_ids = [ids.at(t_accounts) for _ in range(n)]
    media_ids = [ids.at(t_accounts) for _ in range(n)]
    per_user = posts_per_user(n, mean_posts, seed=seed)
    times = sorted((rng.randrange(t_posts, now_ms - 60_000), u) for u, k in enumerate(per_user) for _ in range(k))
    posts: list[list[int]] = [[] for _ in range(n)]
    post_ids = _Ids()
    for ms, u in times:
        posts[u].append(post_ids.at(ms))
    # MediaProcessed ids start past every id above (a million users take ~500 ms of ids);
    # follows start a day later, posts two days after that: ids grow in log order.
    state = State(graph, user_ids, media_ids, posts, t_accounts=t_accounts, t_processed=ids.ms + 1, t_follows=t_follows)
    state.counts = {
        "accounts": n,
        "media": 2 * n,
        "follows": graph.edges,
        "posts": len(times),
        "events": 3 * n + graph.edges + len(times),
    }
    return state


def graph_events(state: State) -> Iterator[Event]:
    """Accounts, their media (uploaded and processed), then every follow: the log before the posts."""
    at = _when(state.t_accounts)
    for i, uid in enumerate(state.user_ids):
        yield AccountRegistered(
            event_id=uid,
            occurred_at=at,
            actor_id=uid,
            aggregate_id=uid,
            user_id=uid,
            username=f"u{i}",
            password_hash=UNUSABLE_HASH,
            display_name=f"Bench user {i}",
        )
    for uid, mid in zip(state.user_ids, state.media_ids, strict=True):
        yield MediaUploaded(
            event_id=mid,
            occurred_at=at,
            actor_id=uid,
            aggregate_id=mid,
            media_id=mid,
            owner_id=uid,
            storage_key=f"bench/{mid}.jpg",
            content_type="image/jpeg",
            kind="image",
            width=1080,
            height=1080,
            size_bytes=200_000,
            sha256="0" * 64,
        )
    processed = _Ids()
    for uid, mid in zip(state.user_ids, state.media_ids, strict=True):
        yield MediaProcessed(
            event_id=processed.at(state.t_processed),
            occurred_at=at,
            actor_id=uid,
            aggregate_id=mid,
            media_id=mid,
            owner_id=uid,
            width=1080,
            height=1080,
            renditions=(RENDITION,),
            placeholder="data:image/webp;base64,UklGRg==",
        )
    follows = _Ids()
    followed_at = _when(state.t_follows)
    for u, followees in enumerate(state.graph.following):
        follower = state.user_ids[u]
        for v in followees:
            yield Followed(
                event_id=follows.at(state.t_follows),
                occurred_at=followed_at,
                actor_id=follower,
                aggregate_id=follower,
                follower_id=follower,
                followee_id=state.user_ids[v],
            )


def post_events(state: State) -> Iterator[Event]:
    """Every post, oldest first (post ids grow with time); captions the same on every call."""
    timeline = sorted((pid, u) for u, pids in enumerate(state.posts) for pid in pids)
    for pid, u in timeline:
        caption, mentions = caption_for(random.Random(pid), state.graph, u, state.user_ids)
        yield PostCreated(
            event_id=pid,
            occurred_at=_when(id_timestamp_ms(pid)),
            actor_id=state.user_ids[u],
            aggregate_id=pid,
            post_id=pid,
            author_id=state.user_ids[u],
            caption=caption,
            media_ids=(state.media_ids[u],),
            audience="public",
            mentions=mentions,
        )


def caption_for(rng: random.Random, graph: Graph, u: int, user_ids: list[int]) -> tuple[str, tuple[int, ...]]:
    """A caption with one or two @mentions of people the author follows (DeathStarBench's compose-post)."""
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
    followees = graph.following[u]
    if not followees:
        return words, ()
    picked = rng.sample(followees, min(len(followees), rng.randint(1, 2)))
    return words + " " + " ".join(f"@u{v}" for v in picked), tuple(user_ids[v] for v in picked)


def batched(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
