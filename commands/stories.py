"""Stories: post one, record a view, expire the ones past their time.

Viewer limit: once a story has `story_viewer_limit` recorded viewers, further first
views answer 204 like any other view but are not recorded (no StoryViewed). Viewing
is not something a client can fix or retry, so a 409 would only surface as an error
on an ordinary tap; the cost is that such a viewer's `seen` stays false.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext, Decision, Meta
from commands.errors import Conflict, NotFound
from events.stories import StoryAudience, StoryExpired, StoryPosted, StoryViewed
from events.union import Event
from projections.media import MEDIA
from projections.store import Row
from projections.stories import EXPIRY_BUCKET, STORY_EXPIRY
from projections.stories.views import epoch_ms, has_seen, live_story, story_view

EXPIRY_BATCH = 500


class PostStory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    media_id: str = Field(min_length=1, max_length=19, pattern=r"^[0-9]+$", description="an uploaded media id of mine")
    audience: StoryAudience = Field(description='"followers" or "close_friends"')


def decide_post_story(author: Row, media: Row | None, cmd: PostStory, ttl_seconds: int, meta: Meta) -> Decision:
    author_id = int(author["user_id"])
    if media is None or int(media["owner_id"]) != author_id:
        raise NotFound("no such media", code="media_not_found")
    if media.get("status") == "failed":  # still `processing` is fine: it shows once ready
        raise Conflict("the media could not be processed", code="media_failed")
    story_id = meta.new_id()
    expires_at = meta.now + timedelta(seconds=ttl_seconds)
    event = StoryPosted(
        **meta.envelope(story_id, event_id=story_id),
        story_id=story_id,
        author_id=author_id,
        media_id=int(media["media_id"]),
        audience=cmd.audience,
        expires_at=expires_at,
    )
    story = {
        "story_id": story_id,
        "author_id": author_id,
        "media_id": event.media_id,
        "audience": cmd.audience,
        "created_at": meta.now.isoformat(),
        "expires_at": expires_at.isoformat(),
    }
    return Decision([event], body=story_view(story, author, media), status=201)


def post_story(ctx: CommandContext, cmd: PostStory, ttl_seconds: int) -> Decision:
    author = ctx.privacy.account(ctx.actor)
    if author is None:
        raise NotFound("no such account")
    media = ctx.read.get(MEDIA.name, {"media_id": int(cmd.media_id)})
    return decide_post_story(author, media, cmd, ttl_seconds, ctx.meta)


def decide_view_story(story: Row | None, viewer: int, seen: bool, viewer_limit: int, meta: Meta) -> Decision:
    """`story` is None when it is absent, expired or not visible to the viewer."""
    if story is None:
        raise NotFound("no such story")
    story_id, author_id = int(story["story_id"]), int(story["author_id"])
    recorded = int(story.get("viewer_count") or 0)
    if viewer == author_id or seen or recorded >= viewer_limit:
        return Decision([], status=204)
    event = StoryViewed(**meta.envelope(story_id), story_id=story_id, author_id=author_id, viewer_id=viewer)
    return Decision([event], status=204)


def view_story(ctx: CommandContext, story_id: int, viewer_limit: int) -> Decision:
    viewer = ctx.actor
    story = live_story(ctx.read, ctx.privacy, viewer, story_id, ctx.meta.now)
    seen = story is not None and has_seen(ctx.read, story_id, viewer)
    return decide_view_story(story, viewer, seen, viewer_limit, ctx.meta)


def decide_expire_stories(due: list[Row], now: datetime, meta: Meta) -> Decision:
    """`due` are `story_expiry` rows; only those whose time has come expire."""
    now_ms = epoch_ms(now)
    events: list[Event] = [
        StoryExpired(
            **meta.envelope(int(row["story_id"])), story_id=int(row["story_id"]), author_id=int(row["author_id"])
        )
        for row in due
        if int(row["expires_ms"]) <= now_ms
    ]
    return Decision(events, body={"expired": len(events)})


def expire_stories(ctx: CommandContext, batch: int = EXPIRY_BATCH) -> Decision:
    due = ctx.read.scan(STORY_EXPIRY.name, {"bucket": EXPIRY_BUCKET}, before=epoch_ms(ctx.meta.now) + 1, limit=batch)
    return decide_expire_stories(due, ctx.meta.now, ctx.meta)
