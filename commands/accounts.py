"""Accounts: register, update the profile, delete. Pure decisions over small state."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext, Decision, Meta
from commands.errors import Conflict, Invalid, NotFound
from commands.ports import Reservation
from events.accounts import AccountDeleted, AccountRegistered, ProfileUpdated
from events.graph import Followed, FollowRequestApproved
from events.union import Event
from projections.graph import FOLLOW_REQUESTS
from projections.profile import USERNAMES
from projections.store import Row

USERNAME_RE = re.compile(r"^(?!\.)(?!.*\.\.)[a-z0-9._]{1,30}(?<!\.)$")


def normalize_username(raw: str) -> str:
    return raw.strip().lower()


def check_username(username: str) -> str:
    name = normalize_username(username)
    if not USERNAME_RE.match(name):
        raise Invalid(
            "username must be 1-30 characters of a-z, 0-9, '.' and '_', not starting or ending with '.'",
            code="invalid_username",
        )
    return name


class Register(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=30)
    password: str = Field(min_length=8, max_length=128)
    display_name: str | None = Field(default=None, max_length=64)


class UpdateProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, max_length=64)
    bio: str | None = Field(default=None, max_length=150)
    private: bool | None = None


def username_reservation(username: str, user_id: int) -> Reservation:
    return Reservation("username", username, user_id)


def decide_register(taken: bool, username: str, display_name: str, password_hash: str, meta: Meta) -> Decision:
    if taken:
        raise Conflict(f"username {username!r} is taken", code="username_taken")
    user_id = meta.new_id()
    event = AccountRegistered(
        **meta.envelope(user_id, event_id=user_id),
        user_id=user_id,
        username=username,
        password_hash=password_hash,
        display_name=display_name,
    )
    return Decision(
        [event],
        body={"id": str(user_id), "username": username},
        status=201,
        reserve=(username_reservation(username, user_id),),
    )


def register(ctx: CommandContext, cmd: Register, password_hash: str) -> Decision:
    username = check_username(cmd.username)
    taken = ctx.read.get(USERNAMES.name, {"username": username}) is not None
    display_name = (cmd.display_name or "").strip() or username
    return decide_register(taken, username, display_name, password_hash, ctx.meta)


def decide_update_profile(account: Row, pending_requests: list[int], cmd: UpdateProfile, meta: Meta) -> Decision:
    user_id = int(account["user_id"])
    changes = {
        "display_name": cmd.display_name.strip() if cmd.display_name is not None else None,
        "bio": cmd.bio.strip() if cmd.bio is not None else None,
        "private": cmd.private,
    }
    changes = {k: v for k, v in changes.items() if v is not None and v != account[k]}
    events: list[Event] = []
    if changes:
        events.append(ProfileUpdated(**meta.envelope(user_id), user_id=user_id, **changes))
    if changes.get("private") is False:
        # Going public lets everyone who asked in.
        for follower in pending_requests:
            pair = {"follower_id": follower, "followee_id": user_id}
            events.append(FollowRequestApproved(**meta.envelope(follower), **pair))
            events.append(Followed(**meta.envelope(follower), **pair))
    merged = {k: account[k] for k in ("display_name", "bio", "private")} | changes
    body = {"id": str(user_id), "username": account["username"], **merged}
    return Decision(events, body=body)


def update_profile(ctx: CommandContext, cmd: UpdateProfile) -> Decision:
    account = ctx.privacy.account(ctx.actor)
    if account is None:
        raise NotFound("no such account")
    pending = [int(r["follower_id"]) for r in ctx.read.scan(FOLLOW_REQUESTS.name, {"followee_id": ctx.actor})]
    return decide_update_profile(account, pending, cmd, ctx.meta)


def decide_delete_account(account: Row, meta: Meta) -> Decision:
    user_id = int(account["user_id"])
    username = str(account["username"])
    event = AccountDeleted(**meta.envelope(user_id), user_id=user_id)
    return Decision([event], status=204, release=(username_reservation(username, user_id),))


def delete_account(ctx: CommandContext) -> Decision:
    account = ctx.privacy.account(ctx.actor)
    if account is None:
        raise NotFound("no such account")
    return decide_delete_account(account, ctx.meta)
