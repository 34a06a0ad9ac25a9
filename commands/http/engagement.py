"""Command routes: like, comment, bookmark."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from commands import engagement
from infra.http.deps import Actor, C, Consistent, IdempotencyKey, id_path, run_command
from query_api.engagement import CommentOut

router = APIRouter(tags=["engagement"], dependencies=[Consistent])


class LikeState(BaseModel):
    post_id: str
    liked: bool
    like_count: int


class BookmarkState(BaseModel):
    post_id: str
    bookmarked: bool


@router.post("/v1/posts/{post_id}/like", response_model=LikeState)
async def like(post_id: str, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    pid = id_path(post_id, "post")
    return run_command(c, "like", lambda ctx: engagement.like(ctx, pid), actor=actor, key=key, payload={"post": pid})


@router.delete("/v1/posts/{post_id}/like", response_model=LikeState)
async def unlike(post_id: str, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    pid = id_path(post_id, "post")
    return run_command(
        c, "unlike", lambda ctx: engagement.unlike(ctx, pid), actor=actor, key=key, payload={"post": pid}
    )


@router.post("/v1/posts/{post_id}/comments", status_code=201, response_model=CommentOut)
async def add_comment(
    post_id: str, body: engagement.AddComment, actor: Actor, c: C, key: IdempotencyKey = None
) -> Response:
    pid = id_path(post_id, "post")
    max_chars, max_mentions = c.settings.max_comment_chars, c.settings.max_mentions
    return run_command(
        c,
        "comment",
        lambda ctx: engagement.comment(ctx, pid, body, max_chars, max_mentions),
        actor=actor,
        key=key,
        payload={"post": pid, **body.model_dump()},
    )


@router.delete("/v1/comments/{comment_id}", status_code=204)
async def delete_comment(comment_id: str, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    cid = id_path(comment_id, "comment")
    return run_command(
        c,
        "delete_comment",
        lambda ctx: engagement.delete_comment(ctx, cid),
        actor=actor,
        key=key,
        payload={"comment": cid},
    )


@router.post("/v1/posts/{post_id}/bookmark", response_model=BookmarkState)
async def bookmark(post_id: str, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    pid = id_path(post_id, "post")
    return run_command(
        c, "bookmark", lambda ctx: engagement.bookmark(ctx, pid), actor=actor, key=key, payload={"post": pid}
    )


@router.delete("/v1/posts/{post_id}/bookmark", response_model=BookmarkState)
async def unbookmark(post_id: str, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    pid = id_path(post_id, "post")
    return run_command(
        c, "unbookmark", lambda ctx: engagement.unbookmark(ctx, pid), actor=actor, key=key, payload={"post": pid}
    )
