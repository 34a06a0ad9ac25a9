"""Query routes: the story tray, a user's stories, one story, and its viewers.

Stories are for signed-in followers, so every route needs a token. A story that is
expired, absent or not for the viewer answers 404; only its author lists viewers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from commands.errors import Forbidden, Invalid, NotFound
from infra.container import Container
from infra.http.deps import Actor, C, Consistent, id_path
from infra.http.paging import Cursor, Limit, decode_int_cursor, page
from infra.http.responses import JsonResponse
from projections.posts.views import author_view
from projections.privacy import Privacy
from projections.store import ReadModel
from projections.stories import STORIES, STORY_TRAY, STORY_VIEWERS
from projections.stories.views import has_seen, live_story, render_story, visible_live_entries
from query_api.accounts import resolve_username

router = APIRouter(tags=["stories"], dependencies=[Consistent])


class UserSummary(BaseModel):
    id: str
    username: str
    display_name: str


class StoryMedia(BaseModel):
    id: str
    status: str
    kind: str
    width: int
    height: int
    renditions: list[dict[str, Any]]
    placeholder: str | None = None
    duration_ms: int | None = None


class Story(BaseModel):
    id: str
    author: UserSummary
    media: StoryMedia | None
    audience: str
    created_at: str
    expires_at: str


class StoryForViewer(Story):
    seen: bool


class StoryPage(BaseModel):
    items: list[StoryForViewer]
    next_cursor: str | None


class TrayEntry(BaseModel):
    user: UserSummary
    stories_count: int
    latest_at: str
    seen: bool


class TrayPage(BaseModel):
    items: list[TrayEntry]
    next_cursor: str | None


class StoryViewer(BaseModel):
    user: UserSummary
    viewed_at: str


class ViewerPage(BaseModel):
    items: list[StoryViewer]
    next_cursor: str | None


def _tray(c: Container, viewer: int) -> list[dict[str, Any]]:
    read, privacy, now = c.read, c.privacy, c.clock()
    entries: list[tuple[bool, int, dict[str, Any]]] = []
    for row in read.scan(STORY_TRAY.name, {"viewer_id": viewer}):
        author_id = int(row["author_id"])
        account = privacy.account(author_id)
        live = visible_live_entries(read, privacy, viewer, author_id, now) if account is not None else []
        newest = read.get(STORIES.name, {"story_id": live[-1]["story_id"]}) if live else None
        if account is None or newest is None:
            continue
        seen = author_id == viewer or all(has_seen(read, int(s["story_id"]), viewer) for s in live)
        item = {
            "user": author_view(account),
            "stories_count": len(live),
            "latest_at": newest["created_at"],
            "seen": seen,
        }
        entries.append((seen, int(newest["story_id"]), item))
    entries.sort(key=lambda e: (e[0], -e[1]))
    return [item for _, _, item in entries]


@router.get(
    "/v1/stories",
    response_model=TrayPage,
    description="The tray: users I follow (and I) with live stories I may see; unseen first, then newest. "
    "`seen` is true once I have viewed every one of them; my own entry always counts as seen (an author's "
    "own looks are not recorded). The cursor is a position in this order.",
)
async def get_tray(c: C, viewer: Actor, limit: Limit = 20, cursor: Cursor = None) -> JsonResponse:
    offset = decode_int_cursor(cursor) or 0
    if offset < 0:
        raise Invalid("cursor is not one this API gave out", code="invalid_cursor")
    tray = _tray(c, viewer)
    more = offset + limit < len(tray)
    return JsonResponse(page(tray[offset : offset + limit], offset + limit if more else None))


@router.get(
    "/v1/users/{username}/stories",
    response_model=StoryPage,
    description="The user's live stories I may see, oldest first, each with `seen`.",
)
async def get_user_stories(
    username: str, c: C, viewer: Actor, limit: Limit = 20, cursor: Cursor = None
) -> JsonResponse:
    read, privacy = c.read, c.privacy
    account = resolve_username(read, privacy, username, viewer)
    author_id = int(account["user_id"])
    if not privacy.can_see_content(viewer, author_id):
        raise NotFound("no such user")
    entries = visible_live_entries(read, privacy, viewer, author_id, c.clock(), after=decode_int_cursor(cursor))
    items = []
    for entry in entries[:limit]:
        story = read.get(STORIES.name, {"story_id": entry["story_id"]})
        view = render_story(read, privacy, story, viewer) if story is not None else None
        if view is not None:
            items.append(view)
    more = len(entries) > limit
    return JsonResponse(page(items, int(entries[limit - 1]["story_id"]) if more else None))


@router.get("/v1/stories/{story_id}", response_model=StoryForViewer, description="One live story I may see.")
async def get_story(story_id: str, c: C, viewer: Actor) -> JsonResponse:
    story = live_story(c.read, c.privacy, viewer, id_path(story_id, "story"), c.clock())
    view = render_story(c.read, c.privacy, story, viewer) if story is not None else None
    if view is None:
        raise NotFound("no such story")
    return JsonResponse(view)


def _viewer_page(
    read: ReadModel, privacy: Privacy, story_id: int, author_id: int, before: int | None, limit: int
) -> dict[str, Any]:
    """Newest first, skipping viewers who are gone or blocked either way since."""
    items: list[dict[str, Any]] = []
    positions: list[int] = []
    while True:
        rows = read.scan(STORY_VIEWERS.name, {"story_id": story_id}, before=before, desc=True, limit=limit + 1)
        for row in rows:
            before = int(row["view_id"])
            account = privacy.account(int(row["viewer_id"]))
            if account is None or privacy.blocked_either(author_id, int(row["viewer_id"])):
                continue
            items.append({"user": author_view(account), "viewed_at": row["viewed_at"]})
            positions.append(before)
            if len(items) > limit:
                return page(items[:limit], positions[limit - 1])
        if len(rows) < limit + 1:
            return page(items, None)


@router.get(
    "/v1/stories/{story_id}/viewers",
    response_model=ViewerPage,
    description="Who saw my live story, newest first. Author only (403 to others who can see the story); "
    "viewers blocked since are left out.",
)
async def get_viewers(story_id: str, c: C, viewer: Actor, limit: Limit = 20, cursor: Cursor = None) -> JsonResponse:
    read, privacy = c.read, c.privacy
    sid = id_path(story_id, "story")
    story = live_story(read, privacy, viewer, sid, c.clock())
    if story is None:
        raise NotFound("no such story")
    author_id = int(story["author_id"])
    if viewer != author_id:
        raise Forbidden("only the author sees who viewed a story", code="not_author")
    return JsonResponse(_viewer_page(read, privacy, sid, author_id, decode_int_cursor(cursor), limit))
