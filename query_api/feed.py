"""Query route: the home feed, newest first.

Entries come from the fan-out feed table; each page re-checks Privacy for every
post, so an entry left behind by a block, an unfollow or a private switch that the
projection has not removed yet is never shown. Paging is by post id (`before`), so
posts arriving while someone scrolls never shift or repeat the pages below.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from infra.http.deps import Actor, C, Consistent
from infra.http.paging import Cursor, Limit, decode_int_cursor, page
from projections.feed import FEED
from projections.store import Row
from query_api.post_views import PostPage, collect_visible, post_views

router = APIRouter(tags=["feed"], dependencies=[Consistent])


@router.get("/v1/feed", response_model=PostPage)
async def home_feed(viewer: Actor, c: C, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    privacy = c.privacy

    def fetch(before: int | None, n: int) -> list[Row]:
        return c.read.scan(FEED.name, {"user_id": viewer}, before=before, desc=True, limit=n)

    rows, next_value = collect_visible(c.read, privacy, fetch, viewer, limit, decode_int_cursor(cursor))
    return page(post_views(c.read, privacy, rows, viewer), next_value)
