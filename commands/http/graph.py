"""Command routes: follow, follow requests, blocks, close friends."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from commands import graph
from infra.http.deps import Actor, C, Consistent, IdempotencyKey, run_command

router = APIRouter(tags=["graph"], dependencies=[Consistent])

Username = Annotated[str, Path(min_length=1, max_length=64, description="the other user's username")]


class FollowState(BaseModel):
    state: Literal["following", "requested", "none"]


class RequestOutcome(BaseModel):
    state: Literal["approved", "denied"]


class BlockState(BaseModel):
    blocked: bool


class CloseFriendsList(BaseModel):
    usernames: list[str]


@router.post("/v1/users/{username}/follow", response_model=FollowState)
async def follow(username: Username, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    """Follow a public account, or ask to follow a private one (`state: "requested"`)."""
    return run_command(
        c, "follow", lambda ctx: graph.follow(ctx, username), actor=actor, key=key, payload={"username": username}
    )


@router.delete("/v1/users/{username}/follow", response_model=FollowState)
async def unfollow(username: Username, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    """Unfollow, or withdraw a pending request. Answers `state: "none"` even if there was nothing to undo."""
    return run_command(
        c, "unfollow", lambda ctx: graph.unfollow(ctx, username), actor=actor, key=key, payload={"username": username}
    )


@router.post("/v1/me/follow-requests/{username}/approve", response_model=RequestOutcome)
async def approve_request(username: Username, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    """404 if that user has no pending request to you."""
    return run_command(
        c,
        "approve_follow_request",
        lambda ctx: graph.approve_request(ctx, username),
        actor=actor,
        key=key,
        payload={"username": username},
    )


@router.post("/v1/me/follow-requests/{username}/deny", response_model=RequestOutcome)
async def deny_request(username: Username, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    """404 if that user has no pending request to you."""
    return run_command(
        c,
        "deny_follow_request",
        lambda ctx: graph.deny_request(ctx, username),
        actor=actor,
        key=key,
        payload={"username": username},
    )


@router.post("/v1/users/{username}/block", response_model=BlockState)
async def block(username: Username, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    """Block: ends follows and requests both ways; each side then sees the other as absent."""
    return run_command(
        c, "block", lambda ctx: graph.block(ctx, username), actor=actor, key=key, payload={"username": username}
    )


@router.delete("/v1/users/{username}/block", response_model=BlockState)
async def unblock(username: Username, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    """Unblock; follows ended by the block stay ended."""
    return run_command(
        c, "unblock", lambda ctx: graph.unblock(ctx, username), actor=actor, key=key, payload={"username": username}
    )


@router.put("/v1/me/close-friends", response_model=CloseFriendsList)
async def set_close_friends(body: graph.SetCloseFriends, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    """Replace the whole list (deduplicated); unknown names answer 422 naming them."""
    max_friends = c.settings.max_close_friends
    return run_command(
        c,
        "set_close_friends",
        lambda ctx: graph.set_close_friends(ctx, body, max_friends),
        actor=actor,
        key=key,
        payload=body.model_dump(),
    )
