"""Query route: the home feed, newest first, the same whichever strategy built it.

A page (`feed_page`) takes entries from the strategy's source (projections/feed/
timelines.py: the durable feed, cached in Redis in the scale stack, merged with the
followed celebrities' posts above the feed's horizon and with the followees' own
posts below it; or, for pull, the followees' posts alone) and keeps those the viewer
may see now: the post exists, the viewer follows (or is) its author, and Privacy
allows it. So an entry that a block, an unfollow, a deletion or a private switch has
made stale, or that a rebuild copied in while it raced such a change, never shows.
Paging is by post id (`before`), so posts arriving while someone scrolls never shift
or repeat the pages below.

In the hybrid strategy the read first records the viewer's activity; if the fan-out
skipped them meanwhile (or never saw them), their durable feed is rebuilt from their
followees' posts and written back (`FeedRuntime.repair`: the durable table, and the
cache in the scale stack) before the page is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter

from infra.http.deps import Actor, C, Consistent
from infra.http.paging import Cursor, Limit, decode_int_cursor, page
from projections.feed import FeedPolicy, rebuild_ops
from projections.feed.activity import ActivityStore
from projections.feed.timelines import Source, hybrid_feed, pull_feed
from projections.privacy import Privacy
from projections.store import Op, ReadModel, Row
from query_api.post_views import PostPage, load_visible_post, post_views, prefetch_posts
from query_api.request_reads import RequestReads

router = APIRouter(tags=["feed"], dependencies=[Consistent])


def feed_source(read: ReadModel, viewer: int, policy: FeedPolicy) -> Source:
    return pull_feed(read, viewer) if policy.strategy == "pull" else hybrid_feed(read, viewer)


def feed_page(
    read: ReadModel, viewer: int, policy: FeedPolicy, limit: int, before: int | None
) -> tuple[list[Row], int | None]:
    """Up to `limit` visible POSTS rows below `before`, and the cursor of the next page.

    Like `post_views.collect_visible`: a page scans a bounded number of entries; if that
    runs out first it comes back short with a cursor past everything scanned, so a page
    is never wrong, only sometimes shorter than asked.
    """
    read = RequestReads.of(read)
    privacy = Privacy(read)
    source = feed_source(read, viewer, policy)
    followed: dict[int, bool] = {viewer: True}
    budget = max(10 * limit, 200)
    kept: list[Row] = []
    cursor, scanned = before, 0
    while True:
        want = limit + 1 - len(kept)
        batch = source(cursor, want)
        prefetch_posts(read, viewer, [post_id for post_id, _ in batch], follows=True)
        for post_id, author_id in batch:
            cursor, scanned = post_id, scanned + 1
            if author_id not in followed:
                followed[author_id] = privacy.follows(viewer, author_id)
            post = load_visible_post(read, privacy, post_id, viewer) if followed[author_id] else None
            if post is None:
                continue
            kept.append(post)
            if len(kept) > limit:
                return kept[:limit], int(kept[limit - 1]["post_id"])
        if len(batch) < want:
            return kept, None
        if scanned >= budget:
            return kept, cursor


def refresh_if_stale(
    read: ReadModel,
    activity: ActivityStore,
    repair: Callable[[Sequence[Op]], None],
    viewer: int,
    policy: FeedPolicy,
    now_ms: int,
) -> list[Op]:
    """Hybrid: record the read; rebuild the durable feed if the fan-out skipped the viewer.

    `repair(ops)` writes the rebuilt entries; returns them (empty if nothing needed writing).
    """
    if policy.strategy != "hybrid" or not activity.record_read(viewer, now_ms):
        return []
    ops = rebuild_ops(read, viewer, policy)
    if ops:
        repair(ops)
    activity.clear_missed(viewer)  # only once the rebuilt feed is written: a failure retries next read
    return ops


@router.get("/v1/feed", response_model=PostPage)
async def home_feed(viewer: Actor, c: C, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    before = decode_int_cursor(cursor)
    runtime = c.feed
    policy = runtime.policy if runtime is not None else FeedPolicy(strategy=c.settings.feed_strategy)
    if runtime is not None and runtime.activity is not None:
        refresh_if_stale(c.read, runtime.activity, runtime.repair, viewer, policy, int(c.clock().timestamp() * 1000))
    read = RequestReads(c.read)
    rows, next_value = feed_page(read, viewer, policy, limit, before)
    return page(post_views(read, Privacy(read), rows, viewer), next_value)
