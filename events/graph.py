"""Stream `graph`: follows, follow requests, blocks, close friends.

Follow-pair events are keyed by the follower so that one pair's history stays in
order on one partition; blocks by the blocker. A block is recorded together with
the Unfollowed / FollowRequestWithdrawn facts it causes, so projections never
have to infer them.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from events.envelope import EventBase


class GraphEvent(EventBase):
    STREAM: ClassVar[str] = "graph"


class Followed(GraphEvent):
    type: Literal["Followed"] = "Followed"
    version: Literal[1] = 1
    follower_id: int
    followee_id: int


class Unfollowed(GraphEvent):
    type: Literal["Unfollowed"] = "Unfollowed"
    version: Literal[1] = 1
    follower_id: int
    followee_id: int


class FollowRequested(GraphEvent):
    type: Literal["FollowRequested"] = "FollowRequested"
    version: Literal[1] = 1
    follower_id: int
    followee_id: int


class FollowRequestApproved(GraphEvent):
    """Always followed by a Followed event for the same pair."""

    type: Literal["FollowRequestApproved"] = "FollowRequestApproved"
    version: Literal[1] = 1
    follower_id: int
    followee_id: int


class FollowRequestDenied(GraphEvent):
    type: Literal["FollowRequestDenied"] = "FollowRequestDenied"
    version: Literal[1] = 1
    follower_id: int
    followee_id: int


class FollowRequestWithdrawn(GraphEvent):
    type: Literal["FollowRequestWithdrawn"] = "FollowRequestWithdrawn"
    version: Literal[1] = 1
    follower_id: int
    followee_id: int


class Blocked(GraphEvent):
    type: Literal["Blocked"] = "Blocked"
    version: Literal[1] = 1
    blocker_id: int
    blocked_id: int


class Unblocked(GraphEvent):
    type: Literal["Unblocked"] = "Unblocked"
    version: Literal[1] = 1
    blocker_id: int
    blocked_id: int


class CloseFriendsSet(GraphEvent):
    """The whole list, replacing the previous one."""

    type: Literal["CloseFriendsSet"] = "CloseFriendsSet"
    version: Literal[1] = 1
    user_id: int
    friend_ids: tuple[int, ...]
