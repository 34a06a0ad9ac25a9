"""The follow graph: follows both ways, pending requests, blocks, close friends, counts.

Counts are bumped only when an edge is really added or removed (SetAdd/SetRemove),
so a redelivered Followed never counts twice.
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
from projections.store import CounterRef, Delete, Op, ReadModel, SetAdd, SetRemove, Table

FOLLOWING = Table("following", partition=("follower_id",), clustering=("followee_id",), values=("since_id",))
FOLLOWERS = Table("followers", partition=("followee_id",), clustering=("follower_id",), values=("since_id",))
FOLLOW_REQUESTS = Table(
    "follow_requests", partition=("followee_id",), clustering=("follower_id",), values=("requested_id",)
)
BLOCKS = Table("blocks", partition=("blocker_id",), clustering=("blocked_id",), values=("since_id",))
BLOCKED_BY = Table("blocked_by", partition=("blocked_id",), clustering=("blocker_id",), values=("since_id",))
CLOSE_FRIENDS = Table("close_friends", partition=("user_id",), clustering=("friend_id",))
GRAPH_COUNTS = Table("graph_counts", partition=("user_id",), values=("followers", "following"))


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


def _forget_user(user_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for row in read.scan(FOLLOWING.name, {"follower_id": user_id}):
        ops += unfollow_ops(user_id, row["followee_id"])
    for row in read.scan(FOLLOWERS.name, {"followee_id": user_id}):
        ops += unfollow_ops(row["follower_id"], user_id)
    for row in read.scan(BLOCKS.name, {"blocker_id": user_id}):
        ops.append(Delete(BLOCKED_BY.name, {"blocked_id": row["blocked_id"], "blocker_id": user_id}))
    for row in read.scan(BLOCKED_BY.name, {"blocked_id": user_id}):
        ops.append(Delete(BLOCKS.name, {"blocker_id": row["blocker_id"], "blocked_id": user_id}))
    ops += [
        Delete(BLOCKS.name, {"blocker_id": user_id}),
        Delete(BLOCKED_BY.name, {"blocked_id": user_id}),
        Delete(FOLLOW_REQUESTS.name, {"followee_id": user_id}),
        Delete(CLOSE_FRIENDS.name, {"user_id": user_id}),
        Delete(GRAPH_COUNTS.name, {"user_id": user_id}),
    ]
    return ops


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case Followed():
            return _request_gone(event.follower_id, event.followee_id) + follow_ops(
                event.follower_id, event.followee_id, event.event_id
            )
        case Unfollowed():
            return unfollow_ops(event.follower_id, event.followee_id)
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
            ops: list[Op] = [Delete(CLOSE_FRIENDS.name, {"user_id": event.user_id})]
            ops += [SetAdd(CLOSE_FRIENDS.name, {"user_id": event.user_id, "friend_id": f}) for f in event.friend_ids]
            return ops
        case AccountDeleted():
            return _forget_user(event.user_id, read)
    return []


PROJECTION = Projection(
    "graph",
    1,
    (FOLLOWING, FOLLOWERS, FOLLOW_REQUESTS, BLOCKS, BLOCKED_BY, CLOSE_FRIENDS, GRAPH_COUNTS),
    project,
)
