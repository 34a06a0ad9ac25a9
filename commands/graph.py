"""The social graph: follow, unfollow, follow requests, blocks, close friends.

Every command loads one `Pair` (how the actor and one other user stand towards each
other) and hands it to a pure `decide_*`. Repeating a command that is already in
effect answers the same and appends nothing, so clients may retry without a key.

A user who blocked the actor is invisible to them: every command answers 404 as if
the account did not exist, so a block cannot be detected by probing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from commands.accounts import normalize_username
from commands.context import CommandContext, Decision, Meta
from commands.errors import Invalid, NotFound
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
from projections.graph import BLOCKS, CLOSE_FRIENDS, FOLLOW_REQUESTS, FOLLOWING
from projections.profile import USERNAMES
from projections.store import ReadModel, Row


@dataclass(frozen=True)
class Pair:
    """The actor and one other user (`target`, None if there is no such account)."""

    actor_id: int
    target: Row | None
    i_block: bool = False
    blocks_me: bool = False
    following: bool = False  # actor -> target
    followed_by: bool = False  # target -> actor
    requested: bool = False  # actor asked to follow target
    requested_by: bool = False  # target asked to follow actor

    @property
    def target_id(self) -> int:
        if self.target is None:
            raise NotFound("no such user")
        return int(self.target["user_id"])

    @property
    def is_self(self) -> bool:
        return self.target is not None and self.target_id == self.actor_id


class SetCloseFriends(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usernames: list[Annotated[str, Field(min_length=1, max_length=30)]] = Field(
        description="the whole list, replacing the previous one"
    )


# -- loaders ------------------------------------------------------------------


def account_by_username(ctx: CommandContext, username: str) -> Row | None:
    entry = ctx.read.get(USERNAMES.name, {"username": normalize_username(username)})
    return ctx.privacy.account(int(entry["user_id"])) if entry else None


def _edge(read: ReadModel, follower: int, followee: int) -> bool:
    return read.get(FOLLOWING.name, {"follower_id": follower, "followee_id": followee}) is not None


def _request(read: ReadModel, follower: int, followee: int) -> bool:
    return read.get(FOLLOW_REQUESTS.name, {"followee_id": followee, "follower_id": follower}) is not None


def _blocks(read: ReadModel, blocker: int, blocked: int) -> bool:
    return read.get(BLOCKS.name, {"blocker_id": blocker, "blocked_id": blocked}) is not None


def load_pair(ctx: CommandContext, username: str) -> Pair:
    me = ctx.actor
    target = account_by_username(ctx, username)
    if target is None:
        return Pair(me, None)
    other = int(target["user_id"])
    if other == me:
        return Pair(me, target)
    read = ctx.read
    return Pair(
        me,
        target,
        i_block=_blocks(read, me, other),
        blocks_me=_blocks(read, other, me),
        following=_edge(read, me, other),
        followed_by=_edge(read, other, me),
        requested=_request(read, me, other),
        requested_by=_request(read, other, me),
    )


# -- decisions ----------------------------------------------------------------


def _visible(pair: Pair) -> Row:
    """The target's account if the actor may act on them at all; 404 otherwise (as privacy.can_see_account)."""
    if pair.target is None or pair.blocks_me or pair.i_block:
        raise NotFound("no such user")
    return pair.target


def _not_self(pair: Pair, what: str) -> None:
    if pair.is_self:
        raise Invalid(f"you cannot {what} yourself", code=f"cannot_{what}_self")


def decide_follow(pair: Pair, meta: Meta) -> Decision:
    _not_self(pair, "follow")
    target = _visible(pair)
    if pair.following:
        return Decision([], body={"state": "following"})
    if pair.requested:
        return Decision([], body={"state": "requested"})
    edge = {"follower_id": pair.actor_id, "followee_id": int(target["user_id"])}
    if target["private"]:
        return Decision([FollowRequested(**meta.envelope(pair.actor_id), **edge)], body={"state": "requested"})
    return Decision([Followed(**meta.envelope(pair.actor_id), **edge)], body={"state": "following"})


def decide_unfollow(pair: Pair, meta: Meta) -> Decision:
    """Unfollow, or withdraw a pending request; nothing to undo is still a success."""
    _not_self(pair, "unfollow")
    target = _visible(pair)
    edge = {"follower_id": pair.actor_id, "followee_id": int(target["user_id"])}
    events: list[Event] = []
    if pair.following:
        events.append(Unfollowed(**meta.envelope(pair.actor_id), **edge))
    if pair.requested:
        events.append(FollowRequestWithdrawn(**meta.envelope(pair.actor_id), **edge))
    return Decision(events, body={"state": "none"})


def _pending_request_from(pair: Pair) -> int:
    """The requester's id, if the target has a pending request to the actor."""
    if pair.target is None or pair.is_self or pair.blocks_me or pair.i_block or not pair.requested_by:
        raise NotFound("no pending follow request from this user")
    return pair.target_id


def decide_approve(pair: Pair, meta: Meta) -> Decision:
    requester = _pending_request_from(pair)
    edge = {"follower_id": requester, "followee_id": pair.actor_id}
    events: list[Event] = [
        FollowRequestApproved(**meta.envelope(requester), **edge),
        Followed(**meta.envelope(requester), **edge),
    ]
    return Decision(events, body={"state": "approved"})


def decide_deny(pair: Pair, meta: Meta) -> Decision:
    requester = _pending_request_from(pair)
    edge = {"follower_id": requester, "followee_id": pair.actor_id}
    return Decision([FollowRequestDenied(**meta.envelope(requester), **edge)], body={"state": "denied"})


def decide_block(pair: Pair, meta: Meta) -> Decision:
    """Blocked, then every follow and request between the two undone as explicit facts."""
    _not_self(pair, "block")
    if pair.target is None or (pair.blocks_me and not pair.i_block):
        raise NotFound("no such user")
    if pair.i_block:
        return Decision([], body={"blocked": True})
    me, other = pair.actor_id, pair.target_id
    mine = {"follower_id": me, "followee_id": other}
    theirs = {"follower_id": other, "followee_id": me}
    events: list[Event] = [Blocked(**meta.envelope(me), blocker_id=me, blocked_id=other)]
    if pair.following:
        events.append(Unfollowed(**meta.envelope(me), **mine))
    if pair.followed_by:
        events.append(Unfollowed(**meta.envelope(other), **theirs))
    if pair.requested:
        events.append(FollowRequestWithdrawn(**meta.envelope(me), **mine))
    if pair.requested_by:
        events.append(FollowRequestDenied(**meta.envelope(other), **theirs))
    return Decision(events, body={"blocked": True})


def decide_unblock(pair: Pair, meta: Meta) -> Decision:
    _not_self(pair, "unblock")
    if pair.target is None or (pair.blocks_me and not pair.i_block):
        raise NotFound("no such user")
    if not pair.i_block:
        return Decision([], body={"blocked": False})
    me, other = pair.actor_id, pair.target_id
    return Decision([Unblocked(**meta.envelope(me), blocker_id=me, blocked_id=other)], body={"blocked": False})


@dataclass(frozen=True)
class Candidate:
    """One name from a close-friends list: its account id if it may be on the list."""

    username: str
    user_id: int | None


def dedupe_usernames(raw: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in raw:
        seen.setdefault(normalize_username(name), None)
    return list(seen)


def decide_close_friends(
    actor_id: int, candidates: list[Candidate], current: set[int], max_friends: int, meta: Meta
) -> Decision:
    if len(candidates) > max_friends:
        raise Invalid(f"at most {max_friends} close friends", code="too_many_close_friends")
    if any(c.user_id == actor_id for c in candidates):
        raise Invalid("you cannot be your own close friend", code="cannot_close_friend_self")
    unknown = [c.username for c in candidates if c.user_id is None]
    if unknown:
        raise Invalid(f"no such users: {', '.join(unknown)}", code="unknown_usernames")
    friend_ids = tuple(c.user_id for c in candidates if c.user_id is not None)
    body = {"usernames": [c.username for c in candidates]}
    if set(friend_ids) == current:
        return Decision([], body=body)
    event = CloseFriendsSet(**meta.envelope(actor_id), user_id=actor_id, friend_ids=friend_ids)
    return Decision([event], body=body)


# -- handlers -----------------------------------------------------------------


def follow(ctx: CommandContext, username: str) -> Decision:
    return decide_follow(load_pair(ctx, username), ctx.meta)


def unfollow(ctx: CommandContext, username: str) -> Decision:
    return decide_unfollow(load_pair(ctx, username), ctx.meta)


def approve_request(ctx: CommandContext, username: str) -> Decision:
    return decide_approve(load_pair(ctx, username), ctx.meta)


def deny_request(ctx: CommandContext, username: str) -> Decision:
    return decide_deny(load_pair(ctx, username), ctx.meta)


def block(ctx: CommandContext, username: str) -> Decision:
    return decide_block(load_pair(ctx, username), ctx.meta)


def unblock(ctx: CommandContext, username: str) -> Decision:
    return decide_unblock(load_pair(ctx, username), ctx.meta)


def set_close_friends(ctx: CommandContext, cmd: SetCloseFriends, max_friends: int) -> Decision:
    me = ctx.actor
    names = dedupe_usernames(cmd.usernames)
    if len(names) > max_friends:  # before any lookup: the work stays bounded by the limit
        raise Invalid(f"at most {max_friends} close friends", code="too_many_close_friends")
    candidates = []
    for name in names:
        account = account_by_username(ctx, name)
        user_id = int(account["user_id"]) if account else None
        # Blocked either way reads as unknown: a block must not be detectable.
        if user_id is not None and ctx.privacy.blocked_either(me, user_id):
            user_id = None
        candidates.append(Candidate(name, user_id))
    current = {int(r["friend_id"]) for r in ctx.read.scan(CLOSE_FRIENDS.name, {"user_id": me})}
    return decide_close_friends(me, candidates, current, max_friends, ctx.meta)
