"""Query routes: who liked a post, a post's comments, my bookmarks.

Lists are filtered by the privacy policy after reading, so a page is filled by
reading on past hidden rows (bounded by LIST_SCAN_CAP); the cursor is the
clustering value (like, comment or bookmark id) of the last row the page used.

Who liked: a like is the liker's content, so a private liker shows only to
people who may see their content (themselves, their followers), and to the
post's author, who was the one liked; blocked users either way never show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from commands.engagement import comment_body, visible_post_row
from infra.http.deps import Actor, C, Consistent, Viewer, id_path
from infra.http.paging import Cursor, Limit, decode_int_cursor, page
from projections.engagement.tables import COMMENTS, POST_LIKERS, USER_BOOKMARKS
from projections.posts.views import author_view
from projections.privacy import Privacy
from projections.store import Row
from query_api.post_views import AuthorOut, PostPage, load_visible_post, post_views

router = APIRouter(tags=["engagement"], dependencies=[Consistent])

Fetch = Callable[[int | None, int], list[Row]]
LIST_SCAN_CAP = 1000  # rows read per list page before answering short


def filtered_page(
    fetch: Fetch, show: Callable[[Row], Any | None], column: str, start: int | None, limit: int
) -> dict[str, Any]:
    """Rows past `start` that `show` renders, `limit` at most, read in growing batches.

    After LIST_SCAN_CAP rows the page answers short, its cursor past the hidden rows
    read, so the work per request stays bounded however many rows are hidden.
    """
    items: list[Any] = []
    last_shown: int | None = None
    bound, batch, seen = start, limit + 1, 0
    while True:
        rows = fetch(bound, batch)
        for row in rows:
            seen += 1
            bound = int(row[column])
            item = show(row)
            if item is None:
                continue
            if len(items) == limit:  # one more to show: there is a next page
                return page(items, last_shown)
            items.append(item)
            last_shown = bound
        if len(rows) < batch:
            return page(items, None)
        if seen >= LIST_SCAN_CAP:
            return page(items, bound)
        batch = min(batch * 2, LIST_SCAN_CAP - seen + 1)


class UserPage(BaseModel):
    items: list[AuthorOut]
    next_cursor: str | None


class CommentOut(BaseModel):
    id: str
    post_id: str
    author: AuthorOut
    text: str
    created_at: str


class CommentPage(BaseModel):
    items: list[CommentOut]
    next_cursor: str | None


def liker_visible(privacy: Privacy, viewer: int | None, post_author: int, liker: int) -> bool:
    if viewer is not None and viewer == post_author:
        return privacy.can_see_account(viewer, liker)
    return privacy.can_see_content(viewer, liker)


@router.get("/v1/posts/{post_id}/likes", response_model=UserPage)
async def list_likes(post_id: str, c: C, viewer: Viewer, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    pid = id_path(post_id, "post")
    read, privacy = c.read, c.privacy
    post_author = int(visible_post_row(read, privacy, pid, viewer)["author_id"])

    def fetch(before: int | None, n: int) -> list[Row]:
        return read.scan(POST_LIKERS.name, {"post_id": pid}, before=before, desc=True, limit=n)

    def show(row: Row) -> Any | None:
        liker = int(row["user_id"])
        if not liker_visible(privacy, viewer, post_author, liker):
            return None
        account = privacy.account(liker)
        return author_view(account) if account is not None else None

    return filtered_page(fetch, show, "like_id", decode_int_cursor(cursor), limit)


@router.get("/v1/posts/{post_id}/comments", response_model=CommentPage)
async def list_comments(post_id: str, c: C, viewer: Viewer, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    pid = id_path(post_id, "post")
    read, privacy = c.read, c.privacy
    visible_post_row(read, privacy, pid, viewer)

    def fetch(after: int | None, n: int) -> list[Row]:
        return read.scan(COMMENTS.name, {"post_id": pid}, after=after, limit=n)

    def show(row: Row) -> Any | None:
        author_id = int(row["author_id"])
        if privacy.blocked_either(viewer, author_id):
            return None
        author = privacy.account(author_id)
        if author is None:
            return None
        return comment_body(int(row["comment_id"]), pid, author, row["text"], row["created_at"])

    return filtered_page(fetch, show, "comment_id", decode_int_cursor(cursor), limit)


@router.get("/v1/me/bookmarks", response_model=PostPage)
async def list_bookmarks(c: C, me: Actor, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    """Newest bookmark first; posts since deleted or no longer visible to me are left out."""
    read, privacy = c.read, c.privacy

    def fetch(before: int | None, n: int) -> list[Row]:
        return read.scan(USER_BOOKMARKS.name, {"user_id": me}, before=before, desc=True, limit=n)

    def show(row: Row) -> Row | None:
        return load_visible_post(read, privacy, int(row["post_id"]), me)

    result = filtered_page(fetch, show, "bookmark_id", decode_int_cursor(cursor), limit)
    result["items"] = post_views(read, privacy, result["items"], me)
    return result
