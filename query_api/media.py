"""Query routes: media metadata, and the bytes behind rendition URLs.

Metadata (GET /v1/media/{id}) is shown to the owner, and to anyone who may see a
live post that shows the media; an upload not posted yet stays the owner's. The
bytes are served by content address (`/media/<sha256>.<ext>`): the URL is only
learned through a response that passed Privacy, never changes meaning, and so can
be cached by anyone forever. A blob is served only while a live media row uses it,
so erasing an account stops its URLs at once, before the blob itself is collected.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from commands.errors import NotFound
from infra.http.deps import C, Consistent, Viewer, id_path
from projections.media import MEDIA, MEDIA_BY_KEY, MEDIA_URL_PREFIX, media_view, storage_key_of_name
from projections.posts import MEDIA_POSTS
from projections.privacy import Privacy
from projections.store import ReadModel, Row
from query_api.post_views import MediaDetail, load_visible_post

router = APIRouter(tags=["media"], dependencies=[Consistent])

IMMUTABLE = "public, max-age=31536000, immutable"
PUBLIC_NAME_RE = re.compile(r"[0-9a-f]{64}\.(jpg|png|gif|webp|mp4|mov)")
# How many posts showing one media item are tried before answering "not visible".
POSTS_CHECKED = 50


def can_see_media(read: ReadModel, privacy: Privacy, media: Row, viewer: int | None) -> bool:
    if viewer is not None and viewer == int(media["owner_id"]):
        return True
    uses = read.scan(MEDIA_POSTS.name, {"media_id": media["media_id"]}, desc=True, limit=POSTS_CHECKED)
    return any(load_visible_post(read, privacy, int(u["post_id"]), viewer) is not None for u in uses)


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: W/"x" matches "x"."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get("/v1/media/{media_id}", response_model=MediaDetail, response_model_exclude_none=True)
async def get_media(media_id: str, c: C, viewer: Viewer) -> dict[str, Any]:
    row = c.read.get(MEDIA.name, {"media_id": id_path(media_id, "media")})
    if row is None or not can_see_media(c.read, c.privacy, row, viewer):
        raise NotFound("no such media")
    return media_view(row)


@router.get(MEDIA_URL_PREFIX + "{name}", response_class=Response, responses={200: {"content": {"image/*": {}}}})
async def media_bytes(
    name: str,
    c: C,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=1024)] = None,
) -> Response:
    if not PUBLIC_NAME_RE.fullmatch(name):
        raise NotFound("no such media")
    key = storage_key_of_name(name)
    users = c.read.scan(MEDIA_BY_KEY.name, {"storage_key": key}, limit=1)
    if not users:
        raise NotFound("no such media")
    etag = f'"{users[0]["sha256"]}"'
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    data = c.media.get(key)
    if data is None:
        raise NotFound("no such media")
    return Response(data, media_type=users[0]["content_type"], headers=headers)
