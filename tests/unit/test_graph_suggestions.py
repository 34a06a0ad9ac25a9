"""Suggestion building blocks: friends of friends (bounded), ranking, reasons, the popular list."""

from __future__ import annotations

from datetime import UTC, datetime

from events.graph import Followed
from infra.storage.memory_readmodel import MemoryReadModel
from projections.graph import follow_ops
from projections.graph import project as project_graph
from projections.registry import all_tables
from query_api.graph import friends_of_friends, popular, ranked, reason

ME = 1


def graph_of(*edges: tuple[int, int]) -> MemoryReadModel:
    read = MemoryReadModel(all_tables())
    for a, b in edges:
        read.apply(follow_ops(a, b, since_id=1))
    return read


def followed(a: int, b: int, event_id: int) -> Followed:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return Followed(event_id=event_id, occurred_at=at, actor_id=a, aggregate_id=a, follower_id=a, followee_id=b)


def test_reason_wording() -> None:
    assert reason(["alice"], 1) == "followed by alice"
    assert reason(["alice", "bob"], 2) == "followed by alice and bob"
    assert reason(["alice", "bob"], 3) == "followed by alice, bob and 1 other you follow"
    assert reason(["alice", "bob"], 5) == "followed by alice, bob and 3 others you follow"
    assert reason(["alice"], 3) == "followed by alice and 2 others you follow"
    assert reason([], 1) == "followed by 1 person you follow"
    assert reason([], 4) == "followed by 4 people you follow"


def test_friends_of_friends_records_who_leads_there() -> None:
    read = graph_of((ME, 10), (ME, 11), (10, 20), (11, 20), (10, 21), (10, ME), (30, 31))
    via = friends_of_friends(read, ME, followee_scan=100, edge_scan=1000)
    assert via == {20: [10, 11], 21: [10], ME: [10]}  # exclusions are the caller's job


def test_friends_of_friends_is_bounded() -> None:
    edges = [(ME, f) for f in range(10, 20)] + [(f, c) for f in range(10, 20) for c in range(100, 150)]
    read = graph_of(*edges)
    via = friends_of_friends(read, ME, followee_scan=4, edge_scan=40)
    assert {f for through in via.values() for f in through} == {10, 11, 12, 13}
    assert sum(len(through) for through in via.values()) == 40  # 10 edges from each of 4 followees


def test_friends_of_friends_of_a_loner_is_empty() -> None:
    assert friends_of_friends(graph_of((5, 6)), ME, 10, 10) == {}


def test_ranked_by_count_then_popularity_then_id() -> None:
    via = {5: [1], 6: [1, 2], 7: [1], 8: [1, 2, 3], 9: [1]}
    followers = {5: 10, 7: 10, 9: 99}
    looked_up: list[int] = []

    def followers_of(u: int) -> int:
        looked_up.append(u)
        return followers.get(u, 0)

    order = ranked(via, followers_of)
    assert next(order) == 8 and next(order) == 6
    assert looked_up == [8, 6]  # popularity is only consulted for the groups reached
    assert list(order) == [9, 5, 7]


def test_popular_merges_buckets_most_followed_first() -> None:
    read = MemoryReadModel(all_tables())
    fans = iter(range(1000, 2000))
    # user u gets u followers; ids 11..18 land in different buckets
    for user in range(11, 19):
        for _ in range(user):
            fan = next(fans)
            read.apply(project_graph(followed(fan, user, event_id=fan), read))
    assert list(popular(read, per_bucket=5)) == list(range(18, 10, -1))
    assert list(popular(read, per_bucket=1)) == list(range(18, 10, -1))  # one per bucket here
