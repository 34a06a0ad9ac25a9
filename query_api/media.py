"""Query routes: media metadata, and the bytes behind rendition URLs.

Metadata (GET /v1/media/{id}) is shown to the owner in every state (with the
reason when processing failed), and to anyone else only once it is `ready` and
used by a live post they may see. Bytes are served by content address
(`/media/<sha256>.<ext>`, the sha256 of the rendition itself): the URL is only
learned through a response that passed Privacy and never changes meaning, so
any cache or CDN may keep it forever (`immutable`), revalidate it by ETag (304),
and fetch video in ranges (206). Only renditions have URLs: originals keep their
metadata and are never served. A rendition is served here only while a live
media row names it, so erasing an account stops these URLs at once, before the
blobs themselves are collected.

In the scale stack answers link renditions straight to the S3 server or a CDN in
front of it (a public-read `renditions/` prefix, or time-windowed presigned GETs;
infra/media/rendition_urls.py), which answers the cache headers, ETag/304 and
ranges itself, and a URL keeps working until its blob is collected (or a presigned
one expires): a capability, as docs/media-pipeline.md ("Serving") explains. This
route stays as a fallback there: it checks the key as above and redirects (302)
to that direct URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Protocol, runtime_checkable

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse

from commands.errors import NotFound
from infra.http.deps import C, Consistent, Viewer, id_path
from infra.http.responses import JsonResponse
from infra.media.rendition_urls import DirectUrls
from projections.media import MEDIA, MEDIA_BY_KEY, MEDIA_URL_PREFIX, READY, media_view, storage_key_of_name
from projections.posts import MEDIA_POSTS
from projections.privacy import Privacy
from projections.store import ReadModel, Row
from query_api.post_views import MediaDetail, load_visible_post

router = APIRouter(tags=["media"], dependencies=[Consistent])

IMMUTABLE = "public, max-age=31536000, immutable"
PUBLIC_NAME_RE = re.compile(r"[0-9a-f]{64}\.(webp|jpg|mp4)")
RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
# How many posts showing one media item are tried before answering "not visible".
POSTS_CHECKED = 50


@runtime_checkable
class LocalFiles(Protocol):
    """A media store whose blobs are local files (the embedded mode's disk store)."""

    def local_path(self, key: str) -> Path | None: ...


def can_see_media(read: ReadModel, privacy: Privacy, media: Row, viewer: int | None) -> bool:
    if viewer is not None and viewer == int(media["owner_id"]):
        return True
    if media["status"] != READY:
        return False
    uses = read.scan(MEDIA_POSTS.name, {"media_id": media["media_id"]}, desc=True, limit=POSTS_CHECKED)
    return any(load_visible_post(read, privacy, int(u["post_id"]), viewer) is not None for u in uses)


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: W/"x" matches "x"."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


class Unsatisfiable(Exception):
    """The range starts beyond the end: 416."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range `header` asks for, as (first, last) inclusive, or None to send
    everything (no header, several ranges, or a form we do not understand, which
    RFC 9110 lets a server ignore). Raises Unsatisfiable when it cannot be met."""
    if not header:
        return None
    m = RANGE_RE.fullmatch(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # a suffix: the last N bytes
        if not last:
            return None
        if int(last) == 0:
            raise Unsatisfiable
        return max(0, size - int(last)), size - 1
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    if last and int(last) < start:
        return None
    return start, min(int(last), size - 1) if last else size - 1


def ranged(data: bytes, content_type: str, headers: dict[str, str], range_header: str | None) -> Response:
    """Bytes held in memory, whole or as the single range asked for."""
    try:
        wanted = byte_range(range_header, len(data))
    except Unsatisfiable:
        return Response(status_code=416, headers=headers | {"Content-Range": f"bytes */{len(data)}"})
    if wanted is None:
        return Response(data, media_type=content_type, headers=headers)
    first, last = wanted
    part = headers | {"Content-Range": f"bytes {first}-{last}/{len(data)}"}
    return Response(data[first : last + 1], status_code=206, media_type=content_type, headers=part)


@router.get("/v1/media/{media_id}", response_model=MediaDetail)
async def get_media(media_id: str, c: C, viewer: Viewer) -> Response:
    row = c.read.get(MEDIA.name, {"media_id": id_path(media_id, "media")})
    if row is None or not can_see_media(c.read, c.privacy, row, viewer):
        raise NotFound("no such media")
    # The same dict posts and stories embed: `reason` only when failed.
    return JsonResponse(media_view(row))


@router.api_route(
    MEDIA_URL_PREFIX + "{name}",
    methods=["GET", "HEAD"],
    response_class=Response,
    responses={200: {"content": {"image/webp": {}, "image/jpeg": {}, "video/mp4": {}}}, 206: {}, 304: {}, 416: {}},
)
async def media_bytes(
    name: str,
    c: C,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=1024)] = None,
    if_range: Annotated[str | None, Header(alias="If-Range", max_length=1024)] = None,
    range_header: Annotated[str | None, Header(alias="Range", max_length=1024)] = None,
) -> Response:
    if not PUBLIC_NAME_RE.fullmatch(name):
        raise NotFound("no such media")
    key = storage_key_of_name(name)
    users = c.read.scan(MEDIA_BY_KEY.name, {"storage_key": key}, limit=1)
    if not users:
        raise NotFound("no such media")
    if isinstance(c.media, DirectUrls):
        # Not cached: the key may stop being served (erasure) and a presigned target expires.
        return RedirectResponse(c.media.rendition_url(key), status_code=302, headers={"Cache-Control": "no-store"})
    etag = f'"{users[0]["sha256"]}"'
    content_type = str(users[0]["content_type"])
    headers: dict[str, str] = {
        "Cache-Control": IMMUTABLE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
    }
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    if if_range is not None and if_range.strip() != etag:
        range_header = None  # the client's copy is another version: send it whole
    store = c.media
    if isinstance(store, LocalFiles):
        path = store.local_path(key)
        if path is None:
            raise NotFound("no such media")
        # FileResponse streams from disk and answers Range itself (206, 416, multipart).
        return FileResponse(path, media_type=content_type, headers=headers)
    data = await run_in_threadpool(store.get, key)
    if data is None:
        raise NotFound("no such media")
    return ranged(data, content_type, headers, range_header)
