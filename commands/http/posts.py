"""Command routes: create and delete posts (likes, comments, bookmarks: http/engagement.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from commands import posts
from infra.http.deps import Actor, C, Consistent, IdempotencyKey, id_path, run_command
from query_api.post_views import PostOut

router = APIRouter(tags=["posts"], dependencies=[Consistent])


@router.post("/v1/posts", status_code=201, response_model=PostOut)
async def create_post(body: posts.CreatePost, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    s = c.settings
    limits = posts.PostLimits(
        max_caption_chars=s.max_caption_chars, max_media=s.max_media_per_post, max_mentions=s.max_mentions
    )
    return run_command(
        c,
        "create_post",
        lambda ctx: posts.create_post(ctx, body, limits),
        actor=actor,
        key=key,
        payload=body.model_dump(),
    )


@router.delete("/v1/posts/{post_id}", status_code=204)
async def delete_post(post_id: str, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    pid = id_path(post_id, "post")
    return run_command(
        c,
        "delete_post",
        lambda ctx: posts.delete_post(ctx, pid),
        actor=actor,
        key=key,
        payload={"post_id": pid},
    )
