"""Reading stories: what is live now, what a viewer may see, and the public shape of a story.

Shared by the story commands (which answer with the same shape) and the story queries.
"Live" is decided here against the caller's clock, so an expired story disappears at
once, whether or not the expiry job has removed it yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.media import MEDIA, media_view
from projections.posts.views import author_view
from projections.privacy import Privacy
from projections.store import ReadModel, Row
from projections.stories import STORIES, STORY_VIEWS, USER_STORIES


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def is_live(story: Row, now: datetime) -> bool:
    return int(story["expires_ms"]) > epoch_ms(now)


def live_story(read: ReadModel, privacy: Privacy, viewer: int, story_id: int, now: datetime) -> Row | None:
    """The story if it exists, has not expired and the viewer may see it; else None (a 404)."""
    story = read.get(STORIES.name, {"story_id": story_id})
    if story is None or not is_live(story, now):
        return None
    if not privacy.can_see_story(viewer, int(story["author_id"]), str(story["audience"])):
        return None
    return story


def visible_live_entries(
    read: ReadModel, privacy: Privacy, viewer: int, author_id: int, now: datetime, after: int | None = None
) -> list[Row]:
    """The author's live stories the viewer may see, oldest first (`user_stories` rows)."""
    now_ms = epoch_ms(now)
    allowed: dict[str, bool] = {}
    out = []
    for entry in read.scan(USER_STORIES.name, {"author_id": author_id}, after=after):
        if int(entry["expires_ms"]) <= now_ms:
            continue
        audience = str(entry["audience"])
        if audience not in allowed:
            allowed[audience] = privacy.can_see_story(viewer, author_id, audience)
        if allowed[audience]:
            out.append(entry)
    return out


def has_seen(read: ReadModel, story_id: int, viewer: int) -> bool:
    return read.get(STORY_VIEWS.name, {"story_id": story_id, "viewer_id": viewer}) is not None


def story_view(story: Row, author: Row, media: Row | None) -> dict[str, Any]:
    return {
        "id": str(story["story_id"]),
        "author": author_view(author),
        "media": media_view(media) if media is not None else None,
        "audience": story["audience"],
        "created_at": story["created_at"],
        "expires_at": story["expires_at"],
    }


def render_story(read: ReadModel, privacy: Privacy, story: Row, viewer: int) -> dict[str, Any] | None:
    """The story as `viewer` sees it (with `seen`), or None if its author is gone."""
    author = privacy.account(int(story["author_id"]))
    if author is None:
        return None
    media = read.get(MEDIA.name, {"media_id": story["media_id"]})
    view = story_view(story, author, media)
    # The author's own looks are never recorded, so to them their stories count as seen.
    view["seen"] = viewer == int(story["author_id"]) or has_seen(read, int(story["story_id"]), viewer)
    return view
