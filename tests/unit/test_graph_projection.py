"""The graph projection: edges, requests, blocks, close friends, counts and the popularity ranking."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.accounts import AccountDeleted
from events.graph import (
    Blocked,
    CloseFriendsSet,
    Followed,
    FollowRequestApproved,
    FollowRequestDenied,
    FollowRequested,
    FollowRequestWithdrawn,
    Unblocked,
    Unfollowed,
)
from events.union import Event
from infra.storage.memory_readmodel import MemoryReadModel
from projections import graph
from projections.graph import (
    BLOCKED_BY,
    BLOCKS,
    CLOSE_FRIENDS,
    FOLLOW_REQUESTS,
    FOLLOWERS,
    FOLLOWING,
    GRAPH_COUNTS,
    POPULAR_ACCOUNTS,
    popular_bucket,
)
from projections.registry import all_tables

_ids = itertools.count(1_000_000)
A, B, C, D = 1, 2, 3, 4


def env(aggregate: int) -> dict[str, Any]:
    return {
        "event_id": next(_ids),
        "occurred_at": datetime(2025, 1, 1, tzinfo=UTC),
        "actor_id": aggregate,
        "aggregate_id": aggregate,
    }


def followed(a: int, b: int) -> Followed:
    return Followed(**env(a), follower_id=a, followee_id=b)


def unfollowed(a: int, b: int) -> Unfollowed:
    return Unfollowed(**env(a), follower_id=a, followee_id=b)


def requested(a: int, b: int) -> FollowRequested:
    return FollowRequested(**env(a), follower_id=a, followee_id=b)


def blocked(a: int, b: int) -> Blocked:
    return Blocked(**env(a), blocker_id=a, blocked_id=b)


def close_friends(user: int, *friends: int) -> CloseFriendsSet:
    return CloseFriendsSet(**env(user), user_id=user, friend_ids=friends)


def deleted(user: int) -> AccountDeleted:
    return AccountDeleted(**env(user), user_id=user)


def apply(read: MemoryReadModel, *events: Event) -> MemoryReadModel:
    for event in events:
        read.apply(graph.project(event, read))
    return read


def fresh(*events: Event) -> MemoryReadModel:
    return apply(MemoryReadModel(all_tables()), *events)


def counts(read: MemoryReadModel, user: int) -> tuple[int, int]:
    row = read.get(GRAPH_COUNTS.name, {"user_id": user}) or {}
    return (row.get("followers") or 0, row.get("following") or 0)


def ranking(read: MemoryReadModel) -> dict[int, int]:
    """user -> followers as the popularity table has it."""
    out: dict[int, int] = {}
    for row in read.scan(POPULAR_ACCOUNTS.name, {}):
        assert row["user_id"] not in out, "a user appears twice in the ranking"
        assert row["bucket"] == popular_bucket(row["user_id"])
        out[row["user_id"]] = row["followers"]
    return out


def pairs(read: MemoryReadModel, table: str) -> set[tuple[int, int]]:
    t = {tb.name: tb for tb in all_tables()}[table]
    return {(r[t.key[0]], r[t.key[1]]) for r in read.scan(table, {})}


def dump(read: MemoryReadModel) -> dict[str, list[dict[str, Any]]]:
    return {t.name: sorted(read.scan(t.name, {}), key=repr) for t in graph.PROJECTION.tables}


# -- follows ------------------------------------------------------------------


def test_followed_twice_counts_once() -> None:
    event = followed(A, B)
    read = fresh(event, event)
    assert counts(read, B) == (1, 0) and counts(read, A) == (0, 1)
    assert pairs(read, FOLLOWING.name) == {(A, B)} and pairs(read, FOLLOWERS.name) == {(B, A)}
    assert (read.get(FOLLOWING.name, {"follower_id": A, "followee_id": B}) or {}).get("since_id") == event.event_id
    assert ranking(read) == {B: 1}


def test_unfollowed_twice_counts_once() -> None:
    read = fresh(followed(A, B), followed(C, B))
    event = unfollowed(A, B)
    apply(read, event, event)
    assert counts(read, B) == (1, 0) and counts(read, A) == (0, 0)
    assert pairs(read, FOLLOWING.name) == {(C, B)}
    assert ranking(read) == {B: 1}


def test_unfollow_without_a_follow_changes_nothing() -> None:
    read = fresh(followed(C, B), unfollowed(A, B))
    assert counts(read, B) == (1, 0) and ranking(read) == {B: 1}


def test_last_follower_leaves_the_ranking() -> None:
    read = fresh(followed(A, B), unfollowed(A, B))
    assert ranking(read) == {} and counts(read, B) == (0, 0)


def test_ranking_orders_by_followers() -> None:
    read = fresh(followed(A, B), followed(C, B), followed(D, B), followed(A, C), followed(B, C), followed(A, D))
    assert ranking(read) == {B: 3, C: 2, D: 1}


# -- requests -----------------------------------------------------------------


def test_request_then_approval_moves_it_into_the_graph() -> None:
    req = requested(A, B)
    read = fresh(req, req)
    assert (read.get(FOLLOW_REQUESTS.name, {"followee_id": B, "follower_id": A}) or {}).get(
        "requested_id"
    ) == req.event_id
    apply(
        read,
        FollowRequestApproved(**env(A), follower_id=A, followee_id=B),
        followed(A, B),
    )
    assert pairs(read, FOLLOW_REQUESTS.name) == set()
    assert counts(read, B) == (1, 0)


def test_denied_and_withdrawn_requests_disappear() -> None:
    read = fresh(requested(A, B), requested(C, B))
    apply(read, FollowRequestDenied(**env(A), follower_id=A, followee_id=B))
    apply(read, FollowRequestWithdrawn(**env(C), follower_id=C, followee_id=B))
    assert pairs(read, FOLLOW_REQUESTS.name) == set()
    assert counts(read, B) == (0, 0)


# -- blocks -------------------------------------------------------------------


def test_block_records_both_directions_and_clears_requests_and_close_friends() -> None:
    read = fresh(requested(A, B), requested(B, A), close_friends(A, B, C), close_friends(B, A))
    event = blocked(A, B)
    apply(read, event, event)
    assert pairs(read, BLOCKS.name) == {(A, B)} and pairs(read, BLOCKED_BY.name) == {(B, A)}
    assert pairs(read, FOLLOW_REQUESTS.name) == set()
    assert pairs(read, CLOSE_FRIENDS.name) == {(A, C)}


def test_unblock() -> None:
    read = fresh(blocked(A, B), blocked(B, A))
    apply(read, Unblocked(**env(A), blocker_id=A, blocked_id=B))
    assert pairs(read, BLOCKS.name) == {(B, A)} and pairs(read, BLOCKED_BY.name) == {(A, B)}


# -- close friends --------------------------------------------------------------


def test_close_friends_replace_the_whole_list() -> None:
    read = fresh(close_friends(A, B, C))
    apply(read, close_friends(A, C, D))
    assert pairs(read, CLOSE_FRIENDS.name) == {(A, C), (A, D)}
    apply(read, close_friends(A))
    assert pairs(read, CLOSE_FRIENDS.name) == set()


# -- account deletion -----------------------------------------------------------


def test_deleting_an_account_removes_every_trace() -> None:
    read = fresh(
        followed(A, B),
        followed(B, C),
        followed(D, B),
        followed(D, C),
        requested(B, D),  # a request B sent
        requested(A, B),  # a request B received
        blocked(B, A),
        blocked(C, B),
        close_friends(B, C),
        close_friends(C, B, D),  # a list B is on
    )
    apply(read, deleted(B))
    for table in graph.PROJECTION.tables:
        for row in read.scan(table.name, {}):
            assert B not in {row.get(c) for c in table.key if c != "bucket"}, (table.name, row)
    assert pairs(read, FOLLOWING.name) == {(D, C)}
    assert pairs(read, CLOSE_FRIENDS.name) == {(C, D)}
    assert counts(read, A) == (0, 0) and counts(read, C) == (1, 0) and counts(read, D) == (0, 1)
    assert ranking(read) == {C: 1}


# -- properties -----------------------------------------------------------------

USERS = st.sampled_from([A, B, C, D])


def _event(kind: str, a: int, b: int, friends: list[int]) -> Event:
    match kind:
        case "follow":
            return followed(a, b)
        case "unfollow":
            return unfollowed(a, b)
        case "request":
            return requested(a, b)
        case "withdraw":
            return FollowRequestWithdrawn(**env(a), follower_id=a, followee_id=b)
        case "block":
            return blocked(a, b)
        case "unblock":
            return Unblocked(**env(a), blocker_id=a, blocked_id=b)
        case "close":
            return close_friends(a, *friends)
        case _:
            return deleted(a)


def _not_with_self(e: Event) -> bool:
    a = getattr(e, "follower_id", None) or getattr(e, "blocker_id", None)
    b = getattr(e, "followee_id", None) or getattr(e, "blocked_id", None)
    return a is None or a != b


EVENTS = st.lists(
    st.builds(
        _event,
        st.sampled_from(["follow", "follow", "follow", "unfollow", "request", "withdraw", "block", "unblock", "close"]),
        USERS,
        USERS,
        st.lists(USERS, max_size=3, unique=True),
    ).filter(_not_with_self),
    max_size=30,
)


@given(EVENTS, st.lists(st.booleans(), min_size=30, max_size=30))
def test_redelivery_changes_nothing(events: list[Event], repeat: list[bool]) -> None:
    once = fresh(*events)
    twice = MemoryReadModel(all_tables())
    for event, again in zip(events, repeat, strict=False):
        apply(twice, *([event, event] if again else [event]))
    assert dump(once) == dump(twice)


@given(EVENTS, st.sampled_from([A, B, C, D]))
def test_counts_and_ranking_agree_with_the_edges(events: list[Event], gone: int) -> None:
    read = fresh(*events)
    for final in ([], [deleted(gone)]):
        apply(read, *final)
        edges = pairs(read, FOLLOWING.name)
        assert {(b, a) for a, b in edges} == pairs(read, FOLLOWERS.name)
        for user in (A, B, C, D):
            followers = sum(1 for _, b in edges if b == user)
            following = sum(1 for a, _ in edges if a == user)
            if final and user == gone:
                assert read.get(GRAPH_COUNTS.name, {"user_id": user}) is None
                continue
            assert counts(read, user) == (followers, following)
        assert ranking(read) == {u: n for u in (A, B, C, D) if (n := sum(1 for _, b in edges if b == u))}
