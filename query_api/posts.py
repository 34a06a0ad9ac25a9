"""Query routes: one post, and an author's posts newest first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from commands.errors import NotFound
from infra.http.deps import C, Consistent, Viewer, id_path
from infra.http.paging import Cursor, Limit, decode_int_cursor, page
from projections.posts import USER_POSTS
from projections.privacy import Privacy
from projections.store import Row
from query_api.accounts import resolve_username
from query_api.post_views import PostOut, PostPage, collect_visible, load_visible_post, post_views
from query_api.request_reads import RequestReads

router = APIRouter(tags=["posts"], dependencies=[Consistent])


@router.get("/v1/posts/{post_id}", response_model=PostOut)
async def get_post(post_id: str, c: C, viewer: Viewer) -> dict[str, Any]:
    read = RequestReads(c.read)
    privacy = Privacy(read)
    post = load_visible_post(read, privacy, id_path(post_id, "post"), viewer)
    views = post_views(read, privacy, [post], viewer) if post is not None else []
    if not views:
        raise NotFound("no such post")
    return views[0]


@router.get("/v1/users/{username}/posts", response_model=PostPage)
async def user_posts(username: str, c: C, viewer: Viewer, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    read = RequestReads(c.read)
    privacy = Privacy(read)
    account = resolve_username(read, privacy, username, viewer)
    author_id = int(account["user_id"])
    if not privacy.can_see_content(viewer, author_id):
        # A private account's posts look absent, like its other lists; its profile says it is private.
        raise NotFound("no such user")

    def fetch(before: int | None, n: int) -> list[Row]:
        return read.scan(USER_POSTS.name, {"author_id": author_id}, before=before, desc=True, limit=n)

    rows, next_value = collect_visible(read, privacy, fetch, viewer, limit, decode_int_cursor(cursor))
    return page(post_views(read, privacy, rows, viewer), next_value)
