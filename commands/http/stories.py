"""Command routes: post a story, record a view."""

from __future__ import annotations

from fastapi import APIRouter, Response

from commands import stories
from infra.http.deps import Actor, C, Consistent, IdempotencyKey, id_path, run_command
from query_api.stories import Story

router = APIRouter(tags=["stories"], dependencies=[Consistent])


@router.post("/v1/stories", status_code=201, response_model=Story)
async def post_story(body: stories.PostStory, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    ttl = c.settings.story_ttl_seconds
    return run_command(
        c,
        "post_story",
        lambda ctx: stories.post_story(ctx, body, ttl),
        actor=actor,
        key=key,
        payload=body.model_dump(),
    )


@router.post(
    "/v1/stories/{story_id}/view",
    status_code=204,
    description="Record that I saw the story: once per viewer; the author's own looks are not recorded. "
    "Past the per-story viewer limit the view is accepted but not recorded.",
)
async def view_story(story_id: str, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    sid = id_path(story_id, "story")
    limit = c.settings.story_viewer_limit
    return run_command(
        c,
        "view_story",
        lambda ctx: stories.view_story(ctx, sid, limit),
        actor=actor,
        key=key,
        payload={"story_id": sid},
    )
