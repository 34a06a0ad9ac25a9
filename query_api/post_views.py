"""Post responses and privacy-filtered paging, shared by every route that lists posts
(a post, an author's posts, the home feed, bookmarks).

A post may be created while its media is still being processed. The post itself
is visible at once (its caption, likes and comments follow the usual privacy
rules, as the engagement commands do), but each media item shows only once it is
`ready`: other viewers never see an item that is `processing` or `failed`, so a
post's pictures appear as they become ready. Its author sees every item with its
status, to follow the progress.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from projections.engagement import post_engagement
from projections.engagement.tables import BOOKMARKS, ENGAGEMENT_COUNTS, LIKES
from projections.graph import BLOCKS, FOLLOWING
from projections.media import MEDIA, READY
from projections.posts import POSTS
from projections.posts.views import post_view
from projections.privacy import Privacy
from projections.profile import ACCOUNTS
from projections.store import Gets, ReadModel, Row
from query_api.request_reads import RequestReads


class RenditionOut(BaseModel):
    url: str
    width: int
    height: int
    format: str


class MediaOut(BaseModel):
    id: str
    status: str
    kind: str
    width: int
    height: int
    renditions: list[RenditionOut]
    placeholder: str | None = None  # a tiny `data:` image to show while a rendition loads
    duration_ms: int | None = None  # video only


class MediaDetail(MediaOut):
    """GET /v1/media/{id}: `reason` is present only when processing failed."""

    reason: str | None = None


class AuthorOut(BaseModel):
    id: str
    username: str
    display_name: str


class PostOut(BaseModel):
    id: str
    author: AuthorOut
    caption: str
    media: list[MediaOut]
    audience: str
    created_at: str
    like_count: int
    comment_count: int
    liked: bool
    bookmarked: bool


class PostPage(BaseModel):
    items: list[PostOut]
    next_cursor: str | None


def visible(privacy: Privacy, post: Row | None, viewer: int | None) -> bool:
    return post is not None and privacy.can_see_post(viewer, int(post["author_id"]), str(post["audience"]))


def load_visible_post(read: ReadModel, privacy: Privacy, post_id: int, viewer: int | None) -> Row | None:
    post = read.get(POSTS.name, {"post_id": post_id})
    return post if visible(privacy, post, viewer) else None


# Batched reads ahead of the per-post checks. They read what Privacy, post_engagement and
# the media lookup will ask for (same tables, same keys), so that those find it in the
# request's RequestReads; over any other read model they do nothing. If those functions
# come to read something else, the prefetch only stops helping: answers come from them.
# Everything a page needs once its POSTS rows are known goes out as one batch (one round
# trip to a remote store), so a page costs two: the posts, then the rest.


def _author_gets(viewer: int | None, authors: Sequence[int], follows: bool) -> list[Gets]:
    """What Privacy.can_see_post reads about these authors for this viewer."""
    authors = list(dict.fromkeys(authors))
    gets = [Gets(ACCOUNTS.name, [{"user_id": a} for a in authors])]
    others = [a for a in authors if viewer is not None and a != viewer]
    if viewer is not None and others:
        gets.append(
            Gets(  # both directions in one read
                BLOCKS.name,
                [{"blocker_id": viewer, "blocked_id": a} for a in others]
                + [{"blocker_id": a, "blocked_id": viewer} for a in others],
            )
        )
        if follows:
            gets.append(Gets(FOLLOWING.name, [{"follower_id": viewer, "followee_id": a} for a in others]))
    return gets


def _shown_gets(viewer: int | None, posts: Sequence[Row]) -> list[Gets]:
    """What post_views reads for each post it may show: its engagement and its media."""
    post_ids = [{"post_id": int(p["post_id"])} for p in posts]
    gets = [Gets(ENGAGEMENT_COUNTS.name, post_ids)]
    if viewer is not None:
        mine = [{"post_id": int(p["post_id"]), "user_id": viewer} for p in posts]
        gets += [Gets(LIKES.name, mine), Gets(BOOKMARKS.name, mine)]
    media_ids = dict.fromkeys(m for p in posts for m in p["media_ids"])
    return [*gets, Gets(MEDIA.name, [{"media_id": m} for m in media_ids])]


def prefetch_rows(read: ReadModel, viewer: int | None, posts: Sequence[Row], follows: bool = False) -> None:
    """In one batch, everything the visibility checks and the views of these POSTS rows read."""
    if isinstance(read, RequestReads) and posts:
        read.prefetch_each(
            _author_gets(viewer, [int(p["author_id"]) for p in posts], follows) + _shown_gets(viewer, posts)
        )


def prefetch_posts(read: ReadModel, viewer: int | None, post_ids: Sequence[int], follows: bool = False) -> None:
    """The POSTS rows of `post_ids`, then (one more batch) what the checks and views of each read."""
    if isinstance(read, RequestReads) and post_ids:
        prefetch_rows(read, viewer, read.get_many(POSTS.name, [{"post_id": p} for p in post_ids]), follows)


def post_views(read: ReadModel, privacy: Privacy, rows: Sequence[Row], viewer: int | None) -> list[dict[str, Any]]:
    """Responses for POSTS `rows`, in their order, leaving out any the viewer may not see.

    Pass a `RequestReads` (and a Privacy over it) and the page costs one batched read
    (none if `prefetch_posts` read the page's posts already).
    """
    prefetch_rows(read, viewer, [r for r in rows if r is not None])
    shown = [r for r in rows if visible(privacy, r, viewer)]
    media_ids = list(dict.fromkeys(m for r in shown for m in r["media_ids"]))
    media = {int(m["media_id"]): m for m in read.get_many(MEDIA.name, [{"media_id": m} for m in media_ids])}
    engagement = post_engagement(read, [int(r["post_id"]) for r in shown], viewer)
    views = []
    for post in shown:
        author = privacy.account(int(post["author_id"]))
        if author is None:
            continue
        mine = viewer == int(post["author_id"])
        post_media = [media[m] for m in post["media_ids"] if m in media and (mine or media[m]["status"] == READY)]
        views.append(post_view(post, author, post_media, engagement[int(post["post_id"])]))
    return views


# fetch(before, n) -> up to n index rows with a "post_id", newest first, all below `before`.
Fetch = Callable[[int | None, int], list[Row]]


def collect_visible(
    read: ReadModel,
    privacy: Privacy,
    fetch: Fetch,
    viewer: int | None,
    limit: int,
    before: int | None,
) -> tuple[list[Row], int | None]:
    """Up to `limit` visible POSTS rows below `before`, and the cursor for the next page.

    Index entries the viewer may not see (or whose post is gone) are skipped, so a page
    keeps reading until it is full. A page scans a bounded number of entries; if that
    runs out first, it comes back short with a cursor past everything scanned, so a
    page is never wrong, only sometimes shorter than asked.
    """
    budget = max(10 * limit, 200)
    kept: list[Row] = []
    cursor, scanned = before, 0
    while True:
        want = limit + 1 - len(kept)
        batch = fetch(cursor, want)
        prefetch_posts(read, viewer, [int(entry["post_id"]) for entry in batch])
        for entry in batch:
            cursor, scanned = int(entry["post_id"]), scanned + 1
            post = load_visible_post(read, privacy, cursor, viewer)
            if post is None:
                continue
            kept.append(post)
            if len(kept) > limit:
                return kept[:limit], int(kept[limit - 1]["post_id"])
        if len(batch) < want:
            return kept, None
        if scanned >= budget:
            return kept, cursor
