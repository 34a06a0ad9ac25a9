"""The follow graph: follows both ways, pending requests, blocks, close friends, counts.

Counts are bumped only when an edge is really added or removed (SetAdd/SetRemove),
so a redelivered Followed never counts twice.

`popular_accounts` ranks users by follower count for suggestions to people who
follow nobody yet. A row moves only when the edge really changes (checked against
`following` before this event's operations apply), so it agrees with
`graph_counts` under redelivery. It is split into a few buckets by user id so no
single partition takes every follow in the scale stack; readers merge the buckets.
"""

from __future__ import annotations

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
from projections.projection import Projection
from projections.store import CounterRef, Delete, Op, Put, ReadModel, SetAdd, SetRemove, Table

FOLLOWING = Table("following", partition=("follower_id",), clustering=("followee_id",), values=("since_id",))
FOLLOWERS = Table("followers", partition=("followee_id",), clustering=("follower_id",), values=("since_id",))
FOLLOW_REQUESTS = Table(
    "follow_requests",
    partition=("followee_id",),
    clustering=("follower_id",),
    values=("requested_id",),
    indexes=(("follower_id",),),  # the requests a deleted user had sent
)
BLOCKS = Table("blocks", partition=("blocker_id",), clustering=("blocked_id",), values=("since_id",))
BLOCKED_BY = Table("blocked_by", partition=("blocked_id",), clustering=("blocker_id",), values=("since_id",))
CLOSE_FRIENDS = Table(
    "close_friends",
    partition=("user_id",),
    clustering=("friend_id",),
    indexes=(("friend_id",),),  # the lists a deleted user was on
)
GRAPH_COUNTS = Table("graph_counts", partition=("user_id",), values=("followers", "following"))
POPULAR_ACCOUNTS = Table("popular_accounts", partition=("bucket",), clustering=("followers", "user_id"))
POPULAR_BUCKETS = 8


def popular_bucket(user_id: int) -> int:
    return user_id % POPULAR_BUCKETS


def _counter(user_id: int, column: str) -> CounterRef:
    return CounterRef(GRAPH_COUNTS.name, {"user_id": user_id}, column)


def follow_ops(follower: int, followee: int, since_id: int) -> list[Op]:
    return [
        SetAdd(
            FOLLOWING.name,
            {"follower_id": follower, "followee_id": followee, "since_id": since_id},
            (_counter(follower, "following"),),
        ),
        SetAdd(
            FOLLOWERS.name,
            {"followee_id": followee, "follower_id": follower, "since_id": since_id},
            (_counter(followee, "followers"),),
        ),
    ]


def unfollow_ops(follower: int, followee: int) -> list[Op]:
    return [
        SetRemove(
            FOLLOWING.name,
            {"follower_id": follower, "followee_id": followee},
            (_counter(follower, "following"),),
        ),
        SetRemove(
            FOLLOWERS.name,
            {"followee_id": followee, "follower_id": follower},
            (_counter(followee, "followers"),),
        ),
    ]


def _request_gone(follower: int, followee: int) -> list[Op]:
    return [Delete(FOLLOW_REQUESTS.name, {"followee_id": followee, "follower_id": follower})]


def _followers_now(read: ReadModel, user_id: int) -> int:
    row = read.get(GRAPH_COUNTS.name, {"user_id": user_id})
    return int(row["followers"] or 0) if row else 0


def _rank_moves(read: ReadModel, user_id: int, delta: int) -> list[Op]:
    """Move the user's row in `popular_accounts` from its current follower count by `delta`."""
    old = _followers_now(read, user_id)
    new = old + delta
    bucket = popular_bucket(user_id)
    ops: list[Op] = []
    if old > 0:
        ops.append(Delete(POPULAR_ACCOUNTS.name, {"bucket": bucket, "followers": old, "user_id": user_id}))
    if new > 0:
        ops.append(Put(POPULAR_ACCOUNTS.name, {"bucket": bucket, "followers": new, "user_id": user_id}))
    return ops


def _edge_exists(read: ReadModel, follower: int, followee: int) -> bool:
    return read.get(FOLLOWING.name, {"follower_id": follower, "followee_id": followee}) is not None


def _forget_user(user_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = _rank_moves(read, user_id, -_followers_now(read, user_id))
    for row in read.scan(FOLLOWING.name, {"follower_id": user_id}):
        ops += unfollow_ops(user_id, row["followee_id"])
        ops += _rank_moves(read, row["followee_id"], -1)
    for row in read.scan(FOLLOWERS.name, {"followee_id": user_id}):
        ops += unfollow_ops(row["follower_id"], user_id)
    for row in read.scan(BLOCKS.name, {"blocker_id": user_id}):
        ops.append(Delete(BLOCKED_BY.name, {"blocked_id": row["blocked_id"], "blocker_id": user_id}))
    for row in read.scan(BLOCKED_BY.name, {"blocked_id": user_id}):
        ops.append(Delete(BLOCKS.name, {"blocker_id": row["blocker_id"], "blocked_id": user_id}))
    for row in read.find(FOLLOW_REQUESTS.name, {"follower_id": user_id}):
        ops += _request_gone(user_id, row["followee_id"])
    for row in read.find(CLOSE_FRIENDS.name, {"friend_id": user_id}):
        ops.append(Delete(CLOSE_FRIENDS.name, {"user_id": row["user_id"], "friend_id": user_id}))
    ops += [
        Delete(BLOCKS.name, {"blocker_id": user_id}),
        Delete(BLOCKED_BY.name, {"blocked_id": user_id}),
        Delete(FOLLOW_REQUESTS.name, {"followee_id": user_id}),
        Delete(CLOSE_FRIENDS.name, {"user_id": user_id}),
        Delete(GRAPH_COUNTS.name, {"user_id": user_id}),
    ]
    return ops


def project(event: Event, read: ReadModel) -> list[Op]:
    ops: list[Op]
    match event:
        case Followed():
            ops = _request_gone(event.follower_id, event.followee_id)
            if not _edge_exists(read, event.follower_id, event.followee_id):
                ops += _rank_moves(read, event.followee_id, +1)
            return ops + follow_ops(event.follower_id, event.followee_id, event.event_id)
        case Unfollowed():
            ops = []
            if _edge_exists(read, event.follower_id, event.followee_id):
                ops += _rank_moves(read, event.followee_id, -1)
            return ops + unfollow_ops(event.follower_id, event.followee_id)
        case FollowRequested():
            return [
                SetAdd(
                    FOLLOW_REQUESTS.name,
                    {
                        "followee_id": event.followee_id,
                        "follower_id": event.follower_id,
                        "requested_id": event.event_id,
                    },
                )
            ]
        case FollowRequestApproved() | FollowRequestDenied() | FollowRequestWithdrawn():
            return _request_gone(event.follower_id, event.followee_id)
        case Blocked():
            a, b = event.blocker_id, event.blocked_id
            return [
                SetAdd(BLOCKS.name, {"blocker_id": a, "blocked_id": b, "since_id": event.event_id}),
                SetAdd(BLOCKED_BY.name, {"blocked_id": b, "blocker_id": a, "since_id": event.event_id}),
                *_request_gone(a, b),
                *_request_gone(b, a),
                Delete(CLOSE_FRIENDS.name, {"user_id": a, "friend_id": b}),
                Delete(CLOSE_FRIENDS.name, {"user_id": b, "friend_id": a}),
            ]
        case Unblocked():
            return [
                SetRemove(BLOCKS.name, {"blocker_id": event.blocker_id, "blocked_id": event.blocked_id}),
                SetRemove(BLOCKED_BY.name, {"blocked_id": event.blocked_id, "blocker_id": event.blocker_id}),
            ]
        case CloseFriendsSet():
            ops = [Delete(CLOSE_FRIENDS.name, {"user_id": event.user_id})]
            ops += [SetAdd(CLOSE_FRIENDS.name, {"user_id": event.user_id, "friend_id": f}) for f in event.friend_ids]
            return ops
        case AccountDeleted():
            return _forget_user(event.user_id, read)
    return []


PROJECTION = Projection(
    "graph",
    2,
    (FOLLOWING, FOLLOWERS, FOLLOW_REQUESTS, BLOCKS, BLOCKED_BY, CLOSE_FRIENDS, GRAPH_COUNTS, POPULAR_ACCOUNTS),
    project,
)
