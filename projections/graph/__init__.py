"""The follow graph: follows both ways, pending requests, blocks, close friends, counts.

Counts are bumped only when an edge is really added or removed (SetAdd/SetRemove),
so a redelivered Followed never counts twice.

Order across keys: events of different keys may be applied in any order in the scale
stack (Kafka orders each key only), and the graph converges whatever that order:
- an edge, request, block or close friend naming a deleted account (profile's
  `deleted_accounts`) is ignored, as the deletion would have removed it;
- a block removes close friends entries both ways only if they were set before it:
  `graph_block_marks` keeps the newest block id of each pair (never lowered, kept
  after an unblock) and `close_friends_sets` the id of each user's current list, so
  a list and a block give the same result in either order.

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
from projections.profile import deleted
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
# The newest Blocked event id of each pair of users (low id, high id), whoever blocked.
BLOCK_MARKS = Table(
    "graph_block_marks",
    partition=("low_id",),
    clustering=("high_id",),
    values=("block_id",),
    indexes=(("high_id",),),  # the marks of a deleted account
)
# The CloseFriendsSet event id of each user's current close friends list.
CLOSE_FRIENDS_SETS = Table("close_friends_sets", partition=("user_id",), values=("set_id",))
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
    for row in read.find(BLOCK_MARKS.name, {"high_id": user_id}):
        ops.append(Delete(BLOCK_MARKS.name, {"low_id": row["low_id"], "high_id": user_id}))
    ops += [
        Delete(BLOCKS.name, {"blocker_id": user_id}),
        Delete(BLOCKED_BY.name, {"blocked_id": user_id}),
        Delete(FOLLOW_REQUESTS.name, {"followee_id": user_id}),
        Delete(CLOSE_FRIENDS.name, {"user_id": user_id}),
        Delete(CLOSE_FRIENDS_SETS.name, {"user_id": user_id}),
        Delete(BLOCK_MARKS.name, {"low_id": user_id}),
        Delete(GRAPH_COUNTS.name, {"user_id": user_id}),
    ]
    return ops


def _pair(a: int, b: int) -> dict[str, int]:
    return {"low_id": min(a, b), "high_id": max(a, b)}


def _last_block(read: ReadModel, a: int, b: int) -> int:
    row = read.get(BLOCK_MARKS.name, _pair(a, b))
    return int(row["block_id"]) if row else 0


def _list_set_before(read: ReadModel, user_id: int, block_id: int) -> bool:
    """Whether the user's close friends list (if any) was set before the block."""
    row = read.get(CLOSE_FRIENDS_SETS.name, {"user_id": user_id})
    return row is None or int(row["set_id"]) < block_id


def _blocked(event: Blocked, read: ReadModel) -> list[Op]:
    a, b, block_id = event.blocker_id, event.blocked_id, event.event_id
    if deleted(read, a, b):
        return []
    ops: list[Op] = [
        SetAdd(BLOCKS.name, {"blocker_id": a, "blocked_id": b, "since_id": block_id}),
        SetAdd(BLOCKED_BY.name, {"blocked_id": b, "blocker_id": a, "since_id": block_id}),
        *_request_gone(a, b),
        *_request_gone(b, a),
    ]
    if _last_block(read, a, b) < block_id:
        ops.append(Put(BLOCK_MARKS.name, {**_pair(a, b), "block_id": block_id}))
    for owner, friend in ((a, b), (b, a)):
        if _list_set_before(read, owner, block_id):
            ops.append(Delete(CLOSE_FRIENDS.name, {"user_id": owner, "friend_id": friend}))
    return ops


def _close_friends_set(event: CloseFriendsSet, read: ReadModel) -> list[Op]:
    me = event.user_id
    if deleted(read, me):
        return []
    ops: list[Op] = [
        Delete(CLOSE_FRIENDS.name, {"user_id": me}),
        Put(CLOSE_FRIENDS_SETS.name, {"user_id": me, "set_id": event.event_id}),
    ]
    for friend in event.friend_ids:
        # A block between us newer than this list takes the friend off it, whichever came first here.
        if not deleted(read, friend) and _last_block(read, me, friend) < event.event_id:
            ops.append(SetAdd(CLOSE_FRIENDS.name, {"user_id": me, "friend_id": friend}))
    return ops


def project(event: Event, read: ReadModel) -> list[Op]:
    ops: list[Op]
    match event:
        case Followed():
            if deleted(read, event.follower_id, event.followee_id):
                return []
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
            if deleted(read, event.follower_id, event.followee_id):
                return []
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
            return _blocked(event, read)
        case Unblocked():
            return [
                SetRemove(BLOCKS.name, {"blocker_id": event.blocker_id, "blocked_id": event.blocked_id}),
                SetRemove(BLOCKED_BY.name, {"blocked_id": event.blocked_id, "blocker_id": event.blocker_id}),
            ]
        case CloseFriendsSet():
            return _close_friends_set(event, read)
        case AccountDeleted():
            return _forget_user(event.user_id, read)
    return []


PROJECTION = Projection(
    "graph",
    3,  # 3: block marks and close-friends list ids, and deleted accounts ignored: convergence across keys
    (
        FOLLOWING,
        FOLLOWERS,
        FOLLOW_REQUESTS,
        BLOCKS,
        BLOCKED_BY,
        CLOSE_FRIENDS,
        GRAPH_COUNTS,
        POPULAR_ACCOUNTS,
        BLOCK_MARKS,
        CLOSE_FRIENDS_SETS,
    ),
    project,
)
