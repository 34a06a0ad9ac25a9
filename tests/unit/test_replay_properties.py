"""Replay properties over random histories written by the real commands (replay_histories.py).

- Determinism: replaying a log gives the same digests every time, and the same as the
  live read models the projector built event by event.
- Convergence: applying the log in any order that keeps each key's events in order
  (what Kafka promises: order per partition, keyed by aggregate id, nothing across)
  gives the same digests.
- Idempotency: delivering events again (a consumer that restarts from an older offset
  and replays what follows, so each event arrives one to three times) changes nothing.

Digests are per projection (infra/readmodel_digest.py), so a failure names the read
model that depends on the order or on redelivery.
"""

from __future__ import annotations

import random
from collections import defaultdict, deque
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.accounts import AccountDeleted
from events.graph import Followed
from events.posts import PostCreated
from events.union import Event
from infra.readmodel_digest import projection_digests, table_digests
from infra.replay import project_event
from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from projections.feed import TABLES as FEED_TABLES
from projections.projection import Projection
from projections.registry import PROJECTIONS
from tests.unit.replay_histories import History, Step, steps

NAMES = [p.name for p in PROJECTIONS]


def replay(events: Sequence[Event], projections: Sequence[Projection] = PROJECTIONS) -> dict[str, str]:
    store = IndexedMemoryReadModel([t for p in projections for t in p.tables])
    for position, event in enumerate(events, 1):
        project_event(store, projections, position, event)
    return projection_digests(store, projections)


def interleave(events: Sequence[Event], rnd: random.Random) -> list[Event]:
    """A random merge of the per-key queues: each key's events stay in log order."""
    queues: dict[tuple[str, int], deque[Event]] = defaultdict(deque)
    for event in events:
        queues[(event.STREAM, event.aggregate_id)].append(event)
    keys = list(queues)
    out: list[Event] = []
    while keys:
        key = rnd.choice(keys)
        out.append(queues[key].popleft())
        if not queues[key]:
            keys.remove(key)
    return out


def redeliver(events: Sequence[Event], rnd: random.Random) -> list[Event]:
    """The log as an at-least-once consumer may see it: now and then it goes back some
    events (to an older committed offset) and sees them all again, in order; no event is
    seen more than three times."""
    seen = [0] * len(events)
    out: list[Event] = []
    i = 0
    while i < len(events):
        out.append(events[i])
        seen[i] += 1
        if rnd.random() < 0.2:
            back = max(i - rnd.randint(0, 5), 0)
            while back <= i and any(seen[k] >= 3 for k in range(back, i + 1)):
                back += 1
            if back <= i:
                i = back
                continue
        i += 1
    assert all(1 <= n <= 3 for n in seen)
    return out


def _history(history: list[Step]) -> tuple[list[Event], dict[str, str]]:
    h = History().run(history)
    events = [e for _, e in h.events()]
    return events, projection_digests(h.live, PROJECTIONS)


@settings(max_examples=40, deadline=None)
@given(steps())
def test_a_replay_gives_the_live_digests_every_time(history: list[Step]) -> None:
    events, live = _history(history)
    first = replay(events)
    assert first == live
    assert replay(events) == first


@settings(max_examples=30, deadline=None)
@given(steps(), st.randoms(use_true_random=False))
def test_redelivery_changes_nothing(history: list[Step], rnd: random.Random) -> None:
    events, live = _history(history)
    assert replay(redeliver(events, rnd)) == live


# Projections whose read model depends on the order of events of different keys. None
# (the registry's feed is push; the hybrid feed's push-or-pull choice still reads the
# author's follower count as of each post, see docs/replay.md).
NOT_CONVERGENT: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=NOT_CONVERGENT[n], strict=False)) if n in NOT_CONVERGENT else n
        for n in NAMES
    ],
)
@settings(max_examples=40, deadline=None)
@given(history=steps(), rnd=st.randoms(use_true_random=False))
def test_any_interleaving_that_keeps_per_key_order_converges(
    name: str, history: list[Step], rnd: random.Random
) -> None:
    events, live = _history(history)
    assert replay(interleave(events, rnd))[name] == live[name]


def _moved_before(events: Sequence[Event], kind: type, before: type) -> list[Event]:
    """The log with the first `kind` event moved to just before the first `before` event:
    a legal interleaving when the two travel on different streams."""
    moved = next(e for e in events if isinstance(e, kind))
    rest = [e for e in events if e is not moved]
    at = next(i for i, e in enumerate(rest) if isinstance(e, before))
    return [*rest[:at], moved, *rest[at:]]


def test_feed_ignores_a_post_applied_after_its_authors_deletion() -> None:
    history: list[Step] = [("register", 0, 0, 0), ("register", 0, 0, 0), ("post", 1, 0, 2)]
    history += [("delete_account", 1, 0, 1)]
    events, live = _history(history)
    late_post = _moved_before(events, AccountDeleted, PostCreated)  # accounts stream vs posts stream
    assert replay(late_post)["posts"] == live["posts"]  # the posts projection already ignores it
    assert replay(late_post)["feed"] == live["feed"]


def test_feed_ignores_a_follow_applied_after_the_followers_deletion() -> None:
    # The per-user feeds are cache tables, left out of the digests above: compare them here.
    history: list[Step] = [("register", 0, 0, 0), ("register", 0, 0, 0), ("post", 1, 0, 2)]
    history += [("follow", 0, 1, 1), ("delete_account", 0, 0, 1)]
    h = History().run(history)
    events = [e for _, e in h.events()]
    assert any(isinstance(e, Followed) for e in events) and any(isinstance(e, AccountDeleted) for e in events)
    late_follow = _moved_before(events, AccountDeleted, Followed)  # accounts stream vs the follower's graph stream
    store = IndexedMemoryReadModel([t for p in PROJECTIONS for t in p.tables])
    for position, event in enumerate(late_follow, 1):
        project_event(store, PROJECTIONS, position, event)
    feed_tables = list(FEED_TABLES)
    assert table_digests(store, feed_tables, caches=True) == table_digests(h.live, feed_tables, caches=True)
